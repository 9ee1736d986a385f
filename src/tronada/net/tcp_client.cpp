#include "tronada/net/tcp_client.h"

#include <arpa/inet.h>
#include <sys/un.h>
#include <uv.h>

#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "tronada/base/error.h"
#include "tronada/net/ssl_iostream.h"

namespace tronada {

namespace {

void close_and_delete(uv_stream_t* stream) {
  uv_close(reinterpret_cast<uv_handle_t*>(stream), [](uv_handle_t* h) {
    if (h->type == UV_TCP) {
      delete reinterpret_cast<uv_tcp_t*>(h);
    } else {
      delete reinterpret_cast<uv_pipe_t*>(h);
    }
  });
}

/// One connect in flight (see TCPClient's lifetime note). Everything runs on the loop
/// thread, so the timeout and the libuv callbacks never run at once; `finished_`
/// settles which of them came first, and the loser only frees what it owns.
///
/// Owners: a getaddrinfo request is owned by its ResolveReq and freed in on_resolved,
/// even after uv_cancel (libuv then reports UV_EAI_CANCELED). A connect request is
/// owned by its ConnectReq and freed in on_connected. The handle being connected
/// (connecting_) is ours until it connects; then it belongs to the IOStream that adopts
/// it, and if it fails or the timeout strikes it is closed and freed in its close
/// callback (libuv first reports the pending connect with UV_ECANCELED).
class ConnectOp : public std::enable_shared_from_this<ConnectOp> {
 public:
  ConnectOp(IOLoop& loop, IOStreamOptions options)
      : loop_(loop), promise_(&loop), options_(options) {}

  Future<std::shared_ptr<IOStream>> future() const { return promise_.get_future(); }

  void start_tcp(std::string host, int port, Duration timeout, std::shared_ptr<SSLContext> ssl,
                 std::string server_hostname) {
    host_ = std::move(host);
    if (host_.size() > 2 && host_[0] == '[' && host_[host_.size() - 1] == ']') {
      host_ = host_.substr(1, host_.size() - 2);
    }
    port_ = port;
    ssl_ = std::move(ssl);
    server_hostname_ = server_hostname.empty() ? host_ : std::move(server_hostname);
    bool v6 = host_.find(':') != std::string::npos;
    target_ = (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
    if (port < 0 || port > 65535) {
      fail(std::make_exception_ptr(std::invalid_argument("connect: invalid port in " + target_)));
      return;
    }
    if (ssl_ && ssl_->is_server()) {
      fail(std::make_exception_ptr(
          std::invalid_argument("connect: TLS needs a client SSLContext, got a server one")));
      return;
    }
    arm_timeout(timeout);
    // Address literals need no resolver round trip through the thread pool.
    sockaddr_storage addr{};
    if (uv_ip4_addr(host_.c_str(), port_, reinterpret_cast<sockaddr_in*>(&addr)) == 0 ||
        uv_ip6_addr(host_.c_str(), port_, reinterpret_cast<sockaddr_in6*>(&addr)) == 0) {
      addrs_.push_back(addr);
      try_next();
      return;
    }
    resolve();
  }

  void start_unix(std::string path, Duration timeout) {
    target_ = "unix:" + path;
    if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      // libuv would silently connect to a truncated path.
      fail(std::make_exception_ptr(
          std::system_error(uv_error(UV_ENAMETOOLONG), "connect to " + target_)));
      return;
    }
    arm_timeout(timeout);
    auto* pipe = new uv_pipe_t;
    uv_pipe_init(loop_.uv(), pipe, 0);
    auto* req = new ConnectReq{{}, shared_from_this()};
    req->req.data = req;
    // Errors, even immediate ones, arrive through on_connected.
    uv_pipe_connect(&req->req, pipe, path.c_str(), &ConnectOp::on_connected);
    connecting_ = reinterpret_cast<uv_stream_t*>(pipe);
  }

 private:
  struct ResolveReq {
    uv_getaddrinfo_t req;
    std::shared_ptr<ConnectOp> op;
  };
  struct ConnectReq {
    uv_connect_t req;
    std::shared_ptr<ConnectOp> op;
  };

  void arm_timeout(Duration timeout) {
    if (timeout <= Duration::zero()) return;
    // Weak: a pending timeout must not keep a finished connect alive for 20 seconds.
    timer_ = loop_.call_later(timeout, [weak = weak_from_this()] {
      if (auto op = weak.lock()) {
        op->fail(std::make_exception_ptr(TimeoutError("connect to " + op->target_ + " timed out")));
      }
    });
  }

  void resolve() {
    auto* r = new ResolveReq{{}, shared_from_this()};
    r->req.data = r;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    // No AI_ADDRCONFIG: it hides 127.0.0.1 and ::1 on hosts with only loopback
    // addresses (containers), where "localhost" must still work.
    int rc = uv_getaddrinfo(loop_.uv(), &r->req, &ConnectOp::on_resolved, host_.c_str(), nullptr,
                            &hints);
    if (rc < 0) {
      delete r;
      fail(std::make_exception_ptr(std::system_error(uv_error(rc), "cannot resolve " + host_)));
      return;
    }
    resolving_ = &r->req;
  }

  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
    std::unique_ptr<ResolveReq> r(static_cast<ResolveReq*>(req->data));
    std::shared_ptr<ConnectOp> op = std::move(r->op);
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(res, uv_freeaddrinfo);
    op->resolving_ = nullptr;
    if (op->finished_) return;
    if (status < 0) {
      op->fail(std::make_exception_ptr(
          std::system_error(uv_error(status), "cannot resolve " + op->host_)));
      return;
    }
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
      sockaddr_storage addr{};
      if (ai->ai_family == AF_INET) {
        std::memcpy(&addr, ai->ai_addr, sizeof(sockaddr_in));
        reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(static_cast<uint16_t>(op->port_));
      } else if (ai->ai_family == AF_INET6) {
        std::memcpy(&addr, ai->ai_addr, sizeof(sockaddr_in6));
        reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(static_cast<uint16_t>(op->port_));
      } else {
        continue;
      }
      op->addrs_.push_back(addr);
    }
    op->last_error_ = uv_error(UV_EAI_NODATA);
    op->try_next();
  }

  // Tries the remaining addresses in order until one connect is under way.
  void try_next() {
    while (!finished_) {
      if (next_ >= addrs_.size()) {
        fail(std::make_exception_ptr(std::system_error(last_error_, "connect to " + target_)));
        return;
      }
      const sockaddr_storage& addr = addrs_[next_++];
      auto* tcp = new uv_tcp_t;
      uv_tcp_init(loop_.uv(), tcp);
      auto* req = new ConnectReq{{}, shared_from_this()};
      req->req.data = req;
      int rc = uv_tcp_connect(&req->req, tcp, reinterpret_cast<const sockaddr*>(&addr),
                              &ConnectOp::on_connected);
      if (rc < 0) {
        // Refused on the spot (no IPv6 route, say): the next address may do better.
        delete req;
        close_and_delete(reinterpret_cast<uv_stream_t*>(tcp));
        last_error_ = uv_error(rc);
        continue;
      }
      connecting_ = reinterpret_cast<uv_stream_t*>(tcp);
      return;
    }
  }

  static void on_connected(uv_connect_t* req, int status) {
    std::unique_ptr<ConnectReq> r(static_cast<ConnectReq*>(req->data));
    std::shared_ptr<ConnectOp> op = std::move(r->op);
    uv_stream_t* stream = req->handle;
    if (op->connecting_ == stream) op->connecting_ = nullptr;
    if (op->finished_) {
      // The timeout won: it closed the handle, and the close callback frees it.
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(stream))) close_and_delete(stream);
      return;
    }
    if (status < 0) {
      op->last_error_ = uv_error(status);
      close_and_delete(stream);
      op->try_next();
      return;
    }
    op->connected(stream);
  }

  void connected(uv_stream_t* stream) {
    if (!ssl_) {
      succeed(IOStream::adopt(stream, options_));
      return;
    }
    std::shared_ptr<SSLIOStream> tls;
    try {
      // From here on the stream owns the handle, even if adopt throws.
      tls = SSLIOStream::adopt(stream, ssl_, false, SSLIOStreamOptions{options_, server_hostname_});
    } catch (...) {
      fail(std::current_exception());
      return;
    }
    tls_ = tls;
    handshake_ = tls->wait_for_handshake();
    // The stream's handshake waiters hold this callback and so the op; the cycle ends
    // when the handshake completes, fails, or the stream closes (the timeout closes it).
    handshake_.add_done_callback([self = shared_from_this()] { self->handshake_finished(); });
  }

  void handshake_finished() {
    std::shared_ptr<SSLIOStream> tls = std::move(tls_);
    if (finished_) return;
    if (auto e = handshake_.exception()) {
      fail(e);
      return;
    }
    succeed(std::move(tls));
  }

  void succeed(std::shared_ptr<IOStream> stream) {
    finished_ = true;
    loop_.remove_timeout(timer_);
    promise_.set_result(std::move(stream));
  }

  void fail(std::exception_ptr e) {
    if (finished_) return;
    finished_ = true;
    loop_.remove_timeout(timer_);
    // Cancel whatever is in flight; each request's callback still runs and frees it.
    if (resolving_) uv_cancel(reinterpret_cast<uv_req_t*>(resolving_));
    if (connecting_) {
      close_and_delete(connecting_);
      connecting_ = nullptr;
    }
    if (tls_) {
      std::shared_ptr<SSLIOStream> tls = std::move(tls_);
      tls->close();
    }
    promise_.set_exception(std::move(e));
  }

  IOLoop& loop_;
  Promise<std::shared_ptr<IOStream>> promise_;
  IOStreamOptions options_;
  std::string host_;
  int port_ = 0;
  std::string target_;  // "host:port" or "unix:path", for messages
  std::shared_ptr<SSLContext> ssl_;
  std::string server_hostname_;
  std::vector<sockaddr_storage> addrs_;
  std::size_t next_ = 0;
  std::error_code last_error_ = uv_error(UV_ECONNREFUSED);
  TimeoutHandle timer_;
  bool finished_ = false;
  uv_getaddrinfo_t* resolving_ = nullptr;  // in flight; owned by its ResolveReq
  uv_stream_t* connecting_ = nullptr;      // being connected; ours until it connects
  std::shared_ptr<SSLIOStream> tls_;       // handshaking
  Future<void> handshake_;
};

}  // namespace

Future<std::shared_ptr<IOStream>> TCPClient::connect(std::string host, int port, Duration timeout,
                                                     std::shared_ptr<SSLContext> ssl,
                                                     std::string server_hostname,
                                                     IOStreamOptions options) {
  auto op = std::make_shared<ConnectOp>(loop(), options);
  auto future = op->future();
  op->start_tcp(std::move(host), port, timeout, std::move(ssl), std::move(server_hostname));
  return future;
}

Future<std::shared_ptr<IOStream>> TCPClient::connect_unix(std::string path, Duration timeout,
                                                          IOStreamOptions options) {
  auto op = std::make_shared<ConnectOp>(loop(), options);
  auto future = op->future();
  op->start_unix(std::move(path), timeout);
  return future;
}

}  // namespace tronada
