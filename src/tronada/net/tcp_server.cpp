#include "tronada/net/tcp_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "tronada/base/error.h"
#include "tronada/base/log.h"
#include "tronada/net/process.h"

namespace tronada {

namespace {

// An integer option of a TCP socket (0 if it cannot be read).
int tcp_option(int fd, int name) {
  int value = 0;
  socklen_t len = sizeof value;
  getsockopt(fd, IPPROTO_TCP, name, &value, &len);
  return value;
}

}  // namespace

struct TCPServer::Listener {
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } handle;
  TCPServer* server;  // nulled by stop(): a close in flight must not reach a dead server
  int fd;
  bool is_unix;
  bool listening = false;
  bool accept_pending = false;  // libuv holds an accepted fd we have not taken yet
  bool nodelay_each = false;    // set TCP_NODELAY per accepted socket (not inherited)
  bool read_at_accept = false;  // TCP_DEFER_ACCEPT: accepted sockets have bytes already
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&handle); }
};

/// Counts the server's open connections as they close. Streams that close after the server
/// went away find `server` null.
struct TCPServer::Counter final : StreamAcceptor {
  explicit Counter(TCPServer* s) : server(s) {}
  void accepted_stream_closed() override {
    if (server) server->on_stream_closed();
  }
  TCPServer* server;
};

TCPServer::TCPServer(IOStreamOptions stream_options)
    : stream_options_(stream_options), counter_(std::make_shared<Counter>(this)) {}

TCPServer::~TCPServer() {
  counter_->server = nullptr;
  stop();
}

void TCPServer::listen(int port, const std::string& address, const BindOptions& options) {
  add_sockets(bind_sockets(port, address, with_nodelay(options)));
}

void TCPServer::listen_unix(const std::string& path, int mode) {
  add_socket(bind_unix_socket(path, mode));
}

void TCPServer::bind(int port, const std::string& address, const BindOptions& options) {
  if (options.reuse_port) {
    reuse_port_binds_.push_back({port, address, options});
    return;
  }
  for (int fd : bind_sockets(port, address, with_nodelay(options))) pending_fds_.push_back(fd);
}

void TCPServer::bind_unix(const std::string& path, int mode) {
  pending_fds_.push_back(bind_unix_socket(path, mode));
}

void TCPServer::start(int num_processes, int max_restarts) {
  if (num_processes != 1) fork_processes(num_processes, max_restarts);
  for (auto& b : reuse_port_binds_) {
    for (int fd : bind_sockets(b.port, b.address, with_nodelay(b.options))) {
      pending_fds_.push_back(fd);
    }
  }
  reuse_port_binds_.clear();
  auto fds = std::move(pending_fds_);
  pending_fds_.clear();
  add_sockets(fds);
}

void TCPServer::add_sockets(const std::vector<int>& fds) {
  IOLoop& loop = IOLoop::current();
  for (int fd : fds) {
    auto* l = new Listener{};
    l->server = this;
    l->fd = fd;
    int domain = 0;
    socklen_t len = sizeof domain;
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
    l->is_unix = domain == AF_UNIX;
    if (!l->is_unix) {
      if (nodelay_ && !tcp_option(fd, TCP_NODELAY)) {
        // Listening before it had the option: connections queued since lack it.
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        l->nodelay_each = true;
      }
      l->read_at_accept = tcp_option(fd, TCP_DEFER_ACCEPT) > 0;
    }
    int rc = l->is_unix ? uv_pipe_init(loop.uv(), &l->handle.pipe, 0)
                        : uv_tcp_init(loop.uv(), &l->handle.tcp);
    check_uv(rc, "listener init");
    l->stream()->data = l;
    rc = l->is_unix ? uv_pipe_open(&l->handle.pipe, fd) : uv_tcp_open(&l->handle.tcp, fd);
    if (rc == 0) rc = uv_listen(l->stream(), 1024, &TCPServer::on_connection);
    if (rc < 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(l->stream()),
               [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
      check_uv(rc, "listen");
    }
    l->listening = true;
    listeners_.push_back(l);
  }
}

BindOptions TCPServer::with_nodelay(BindOptions options) const {
  options.nodelay = options.nodelay || nodelay_;
  return options;
}

void TCPServer::stop() {
  for (Listener* l : listeners_) {
    l->server = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(l->stream()),
             [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
  }
  listeners_.clear();
  for (int fd : pending_fds_) ::close(fd);
  pending_fds_.clear();
}

std::vector<int> TCPServer::ports() const {
  std::vector<int> ports;
  for (Listener* l : listeners_) {
    if (!l->is_unix) ports.push_back(socket_port(l->fd));
  }
  return ports;
}

void TCPServer::on_connection(uv_stream_t* server_handle, int status) {
  auto* l = static_cast<Listener*>(server_handle->data);
  if (!l->server) return;
  if (status < 0) {
    // EMFILE and friends: log and keep listening; the kernel keeps the connection in
    // the backlog until we can take it.
    log::warning("tcp", std::string("accept failed: ") + uv_strerror(status));
    return;
  }
  TCPServer* server = l->server;
  if (server->max_connections_ && server->connections_ >= server->max_connections_) {
    // Not calling uv_accept makes libuv stop polling this listener until we do, so
    // further connections wait in the kernel's backlog.
    l->accept_pending = true;
    server->accepting_paused_ = true;
    return;
  }
  server->accept_from(l);
}

void TCPServer::accept_from(Listener* l) {
  IOLoop& loop = *static_cast<IOLoop*>(l->stream()->loop->data);
  uv_stream_t* client;
  if (l->is_unix) {
    auto* pipe = new uv_pipe_t;
    uv_pipe_init(loop.uv(), pipe, 0);
    client = reinterpret_cast<uv_stream_t*>(pipe);
  } else {
    auto* tcp = new uv_tcp_t;
    uv_tcp_init(loop.uv(), tcp);
    client = reinterpret_cast<uv_stream_t*>(tcp);
  }
  int rc = uv_accept(l->stream(), client);
  if (rc < 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(client), [](uv_handle_t* h) {
      if (h->type == UV_TCP) {
        delete reinterpret_cast<uv_tcp_t*>(h);
      } else {
        delete reinterpret_cast<uv_pipe_t*>(h);
      }
    });
    if (rc != UV_EAGAIN) log::warning("tcp", std::string("accept failed: ") + uv_strerror(rc));
    return;
  }
  std::shared_ptr<IOStream> stream;
  try {
    stream = adopt_stream(client);
  } catch (const std::exception& e) {
    log::warning("tcp", std::string("cannot set up accepted connection: ") + e.what());
    return;
  }
  ++connections_;
  stream->set_acceptor(counter_);
  if (l->nodelay_each) stream->set_nodelay(true);
  IOLoop::invoke_logged("handle_stream", [&] { handle_stream(stream); });
  // The kernel accepted it once data came: read it now rather than a loop turn later.
  if (l->read_at_accept) stream->read_now();
}

void TCPServer::on_stream_closed() {
  --connections_;
  if (accepting_paused_ && (max_connections_ == 0 || connections_ < max_connections_)) {
    resume_accepting();
  }
}

void TCPServer::resume_accepting() {
  accepting_paused_ = false;
  auto listeners = listeners_;
  for (Listener* l : listeners) {
    if (l->accept_pending && (max_connections_ == 0 || connections_ < max_connections_)) {
      l->accept_pending = false;
      accept_from(l);
    }
  }
}

void TCPServer::handle_stream(std::shared_ptr<IOStream> stream) {
  if (handler_) {
    handler_(std::move(stream));
  } else {
    stream->close();
  }
}

}  // namespace tronada
