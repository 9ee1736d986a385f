// TCPServer: accepts connections on TCP and Unix sockets and hands each to
// handle_stream (Tornado's tornado.tcpserver.TCPServer).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tronada/net/bind_sockets.h"
#include "tronada/net/iostream.h"

namespace tronada {

/// A server that accepts connections and passes each new IOStream to `handle_stream`
/// (override it, or set a handler). Three ways to start, as Tornado:
///   1. `listen(port, address)`: bind and start accepting in this process.
///   2. `bind(...)` then `start(n)`: bind, fork n processes, accept in each.
///   3. `add_sockets(fds)`: accept on sockets made elsewhere (socket activation,
///      bind_sockets + fork_processes).
///
/// Lifetime: the server owns one libuv handle per listening socket (uv_tcp_t or
/// uv_pipe_t, heap-allocated, freed in its close callback). stop() closes them; the
/// destructor stops. Accepted streams are owned by whoever handle_stream gives them to.
class TCPServer {
 public:
  using StreamHandler = std::function<void(std::shared_ptr<IOStream>)>;

  explicit TCPServer(IOStreamOptions stream_options = {});
  virtual ~TCPServer();
  TCPServer(const TCPServer&) = delete;
  TCPServer& operator=(const TCPServer&) = delete;

  void listen(int port, const std::string& address = "", const BindOptions& options = {});
  void listen_unix(const std::string& path, int mode = 0600);
  /// Binds now; accepting starts with start(). With reuse_port, each process started by
  /// start(n) binds its own socket instead (the kernel balances between them).
  void bind(int port, const std::string& address = "", const BindOptions& options = {});
  void bind_unix(const std::string& path, int mode = 0600);
  /// Forks num_processes (1: no fork; 0: one per CPU) and starts accepting in each.
  void start(int num_processes = 1, int max_restarts = 100);
  /// Starts accepting on listening sockets made elsewhere; takes ownership of the fds.
  void add_sockets(const std::vector<int>& fds);
  void add_socket(int fd) { add_sockets({fd}); }
  /// Stops accepting and closes the listening sockets; open connections are untouched.
  void stop();

  void set_stream_handler(StreamHandler handler) { handler_ = std::move(handler); }
  /// Ports this server listens on, for servers started on port 0.
  std::vector<int> ports() const;
  /// Highest number of connections accepted at once; further ones wait in the backlog
  /// until accepting resumes. 0 means no limit.
  void set_max_connections(std::size_t n) { max_connections_ = n; }
  /// Accepted TCP streams get TCP_NODELAY. Sockets this server binds get it before they
  /// listen, and accepted sockets inherit it from their listener (Linux); a listener made
  /// elsewhere without it gets it too, but its connections are set one by one, since some
  /// may have been queued before. Call before listen, bind or add_sockets.
  void set_nodelay(bool on) { nodelay_ = on; }
  std::size_t connection_count() const { return connections_; }

 protected:
  /// Called for each accepted connection. The default calls the stream handler.
  virtual void handle_stream(std::shared_ptr<IOStream> stream);
  /// Wraps an accepted handle in a stream; the default is a plain IOStream (HTTPServer
  /// makes SSLIOStreams for TLS). Owns `client` even when it throws.
  virtual std::shared_ptr<IOStream> adopt_stream(uv_stream_t* client) {
    return IOStream::adopt(client, stream_options_);
  }
  IOStreamOptions stream_options_;

 private:
  struct Listener;
  struct Counter;
  static void on_connection(uv_stream_t* server, int status);
  void accept_from(Listener* l);
  void on_stream_closed();
  void resume_accepting();
  BindOptions with_nodelay(BindOptions options) const;

  std::vector<Listener*> listeners_;
  std::vector<int> pending_fds_;  // bound, not yet started
  struct PendingBind {
    int port;
    std::string address;
    BindOptions options;
  };
  std::vector<PendingBind> reuse_port_binds_;
  StreamHandler handler_;
  std::size_t max_connections_ = 0;
  std::size_t connections_ = 0;
  bool nodelay_ = false;
  bool accepting_paused_ = false;
  // Told by every accepted stream when it closes; shared with them, since they may
  // outlive the server (the destructor disconnects it).
  std::shared_ptr<Counter> counter_;
};

}  // namespace tronada
