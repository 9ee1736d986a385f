#include "tronada/http/http_server.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "tronada/async/detail/pool_allocator.h"
#include "tronada/base/log.h"
#include "tronada/net/ssl_iostream.h"

namespace tronada {

namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

void start_http1(std::shared_ptr<IOStream> stream,
                 const std::shared_ptr<detail::HTTP1ServerContext>& ctx,
                 std::string_view initial = {}) {
  auto conn = std::make_shared<HTTP1Connection>(std::move(stream), ctx);
  conn->start(initial);
}

enum class Preface { undecided, http1, http2 };

/// HTTP/2 by prior knowledge begins with the whole preface; any byte that differs from
/// it is HTTP/1 (every HTTP/1 method differs by the first byte but for POST, PUT, PATCH
/// and PRI, and those by the second or fifth).
Preface classify(std::string_view head) {
  std::size_t n = std::min(head.size(), kPreface.size());
  if (std::memcmp(head.data(), kPreface.data(), n) != 0) return Preface::http1;
  return n == kPreface.size() ? Preface::http2 : Preface::undecided;
}

void start_http2(std::shared_ptr<IOStream> stream,
                 const std::shared_ptr<detail::HTTP2ServerContext>& ctx, std::string_view initial) {
  auto session = std::make_shared<HTTP2Session>(std::move(stream), ctx);
  session->start(initial);
}

}  // namespace

/// Adapts a plain callback to the delegate interface: buffer the body, then call.
class HTTPServer::CallbackDelegate final : public HTTPServerDelegate {
 public:
  explicit CallbackDelegate(RequestCallback cb) : callback_(std::move(cb)) {}

  RequestStart start_request(const std::shared_ptr<HTTPServerRequest>& request) override {
    return RequestStart{std::make_unique<Message>(callback_, request)};
  }

 private:
  // Pooled: one per request, and the only heap block a cached static answer still made.
  class Message final : public HTTPMessageDelegate, public detail::PooledObject {
   public:
    Message(RequestCallback& cb, std::shared_ptr<HTTPServerRequest> req)
        : callback_(cb), request_(std::move(req)) {}
    void finish() override { callback_(std::move(request_)); }

   private:
    RequestCallback& callback_;
    std::shared_ptr<HTTPServerRequest> request_;
  };
  RequestCallback callback_;
};

/// A connection whose protocol is not known yet (waiting for the preface or the TLS
/// handshake), bounded by the server's idle timeout as a fresh HTTP/1 connection is. Owned by the
/// stream's data handler or the handshake's callback; dropping it disarms the timeout.
struct HTTPServer::Sniffer {
  Sniffer(std::shared_ptr<IOStream> s, const std::shared_ptr<detail::HTTP1ServerContext>& c,
          const std::shared_ptr<detail::HTTP2ServerContext>& c2)
      : stream(s), context(c), h2(c2), timeout(&Sniffer::fire, this) {
    ++c->sniffing;
  }
  ~Sniffer() { decided(); }
  Sniffer(const Sniffer&) = delete;
  Sniffer& operator=(const Sniffer&) = delete;
  static void fire(void* p) {
    auto* self = static_cast<Sniffer*>(p);
    if (auto s = self->stream.lock()) {
      // From the loop: closing drops the callback that owns this object.
      s->loop().add_callback([s] { s->close(); });
    }
  }
  /// Stops counting and timing this connection as undecided: it is the protocol's now
  /// (whose own count it joins at once, while this object may live on a little).
  void decided() {
    timeout.disarm();
    if (auto c = std::exchange(context, {}).lock()) --c->sniffing;
  }
  /// Hands the stream to the protocol `head` begins, or keeps waiting; true once handed.
  /// `head` is every byte received so far; it stays valid for the call.
  bool decide(std::string_view head);
  /// Hands the stream to `protocol`, which parses `head` (its first bytes) first.
  void hand_over(Preface protocol, std::string_view head);

  std::weak_ptr<IOStream> stream;
  std::weak_ptr<detail::HTTP1ServerContext> context;
  std::weak_ptr<detail::HTTP2ServerContext> h2;
  TimeoutEntry timeout;
  std::string seen;  // a preface's beginning that came alone (rare): at most 23 bytes
};

bool HTTPServer::Sniffer::decide(std::string_view head) {
  Preface p = classify(head);
  if (p == Preface::undecided) return false;
  hand_over(p, head);
  return true;
}

void HTTPServer::Sniffer::hand_over(Preface protocol, std::string_view head) {
  auto s = stream.lock();
  auto c1 = context.lock();
  auto c2 = h2.lock();
  decided();
  if (!s || s->closed()) return;
  if (!c1 || !c2 || !c1->delegate) {
    s->close();
  } else if (protocol == Preface::http2) {
    start_http2(std::move(s), c2, head);
  } else {
    start_http1(std::move(s), c1, head);
  }
}

HTTPServer::HTTPServer(HTTPServerDelegate& delegate, HTTPServerOptions options)
    : context_(std::make_shared<detail::HTTP1ServerContext>(IOLoop::current(), std::move(options),
                                                            &delegate)),
      h2_(std::make_shared<detail::HTTP2ServerContext>()) {
  h2_->base = context_;
  set_max_connections(context_->options.max_connections);
  set_nodelay(true);
  update_h2c();
}

HTTPServer::HTTPServer(RequestCallback callback, HTTPServerOptions options)
    : owned_delegate_(std::make_unique<CallbackDelegate>(std::move(callback))),
      context_(std::make_shared<detail::HTTP1ServerContext>(IOLoop::current(), std::move(options),
                                                            owned_delegate_.get())),
      h2_(std::make_shared<detail::HTTP2ServerContext>()) {
  h2_->base = context_;
  set_max_connections(context_->options.max_connections);
  set_nodelay(true);
  update_h2c();
}

HTTPServer::~HTTPServer() {
  stop();
  context_->delegate = nullptr;
  std::vector<HTTP1Connection*> conns = context_->connections.snapshot();
  for (auto* c : conns) c->close();
  std::vector<HTTP2Session*> sessions(h2_->sessions.begin(), h2_->sessions.end());
  for (auto* s : sessions) s->close();
}

void HTTPServer::set_ssl_context(std::shared_ptr<SSLContext> context) {
  ssl_ = std::move(context);
  context_->options.protocol = ssl_ ? "https" : "http";
  update_h2c();
}

void HTTPServer::update_h2c() {
  if (!http2_ || ssl_) {
    context_->h2c_upgrade = nullptr;
    return;
  }
  // The context outlives neither: the HTTP/1 context holds the hook, so it holds the
  // HTTP/2 context weakly.
  std::weak_ptr<detail::HTTP2ServerContext> weak = h2_;
  context_->h2c_upgrade = [weak](DetachedConnection detached, std::string settings,
                                 std::shared_ptr<HTTPServerRequest> request) {
    auto ctx = weak.lock();
    if (!ctx) {
      detached.stream->close();
      return;
    }
    auto session = std::make_shared<HTTP2Session>(std::move(detached.stream), ctx);
    session->start_upgraded(settings, std::move(request), detached.leftover);
  };
}

void HTTPServer::set_ssl_config(SSLServerConfig config) {
  if (config.alpn_protocols.empty()) {
    if (http2_) config.alpn_protocols.push_back("h2");
    config.alpn_protocols.push_back("http/1.1");
  }
  set_ssl_context(SSLContext::server(std::move(config)));
}

void HTTPServer::close_all_connections() {
  context_->draining = true;
  std::vector<HTTP1Connection*> conns = context_->connections.snapshot();
  for (auto* c : conns) c->close_when_idle();
  std::vector<HTTP2Session*> sessions(h2_->sessions.begin(), h2_->sessions.end());
  for (auto* s : sessions) s->close_when_idle();
}

std::shared_ptr<IOStream> HTTPServer::adopt_stream(uv_stream_t* client) {
  if (!ssl_) return TCPServer::adopt_stream(client);
  SSLIOStreamOptions opts;
  opts.stream = stream_options_;
  return SSLIOStream::adopt(client, ssl_, true, std::move(opts));
}

void HTTPServer::handle_stream(std::shared_ptr<IOStream> stream) {
  if (!http2_) {
    start_http1(std::move(stream), context_);
  } else if (ssl_) {
    await_alpn(std::move(stream));
  } else {
    sniff_preface(std::move(stream));
  }
}

std::shared_ptr<HTTPServer::Sniffer> HTTPServer::make_sniffer(
    const std::shared_ptr<IOStream>& stream) {
  auto sniffer = std::make_shared<Sniffer>(stream, context_, h2_);
  if (context_->idle_timeouts.duration() > Duration::zero()) {
    context_->idle_timeouts.arm(sniffer->timeout);
  }
  return sniffer;
}

void HTTPServer::sniff_preface(std::shared_ptr<IOStream> stream) {
  // Raw mode rather than a buffered read: the first chunk is classified by one memcmp and
  // handed to the protocol in this same call, without a copy, and the socket stays
  // registered for reading throughout (a buffered read would stop reading, go through
  // the loop once more and start again: two epoll_ctl calls per connection).
  // The handler owns the sniffer; the protocol's start() replaces the handler, which
  // the stream keeps alive until this call returns.
  stream->set_data_handler([sniffer = make_sniffer(stream)](std::string_view data) {
    if (sniffer->seen.empty()) {
      if (!sniffer->decide(data)) sniffer->seen.assign(data);
      return;
    }
    std::string head = std::move(sniffer->seen);
    head.append(data);
    if (!sniffer->decide(head)) sniffer->seen = std::move(head);
  });
}

void HTTPServer::await_alpn(std::shared_ptr<IOStream> stream) {
  auto* ssl = static_cast<SSLIOStream*>(stream.get());
  ssl->wait_for_handshake([sniffer = make_sniffer(stream)] {
    auto s = sniffer->stream.lock();
    bool h2 = s && static_cast<SSLIOStream*>(s.get())->selected_alpn() == "h2";
    sniffer->hand_over(h2 ? Preface::http2 : Preface::http1, {});
  });
}

}  // namespace tronada
