// TCPClient: opens connections (TCP with optional TLS, or Unix sockets) and hands back
// an IOStream, as Tornado's tornado.tcpclient.TCPClient.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "tronada/async/future.h"
#include "tronada/loop/io_loop.h"
#include "tronada/net/iostream.h"
#include "tronada/net/ssl_context.h"

namespace tronada {

/// Opens client connections on a loop (the current one unless given).
///
/// connect() resolves `host` with uv_getaddrinfo on libuv's thread pool (address
/// literals skip it), then tries each address in the resolver's order, IPv4 and IPv6
/// alike, until one accepts. With an SSLContext it then runs the TLS handshake and
/// returns an SSLIOStream whose handshake is complete.
///
/// Errors the future can carry:
///   - TimeoutError: the whole connect (resolution, every attempt, the handshake) took
///     longer than `timeout`. Whatever was in flight is cancelled and closed.
///   - std::system_error with a uv_category code: resolution failed (UV_EAI_NONAME...),
///     or every address refused or failed; the code is the last address's
///     (UV_ECONNREFUSED, UV_ENETUNREACH...), the message names host and port.
///   - SSLHandshakeError (a StreamClosedError): the TLS handshake failed; real_error
///     says why (a tls_verify_category code for a rejected certificate).
///   - std::invalid_argument: a port outside 0..65535, a server SSLContext, or (with an
///     empty host) a verifying TLS context and no name to check.
///
/// Lifetime: each connect is an operation object owned jointly by the libuv requests
/// it has in flight (the getaddrinfo and connect requests each hold a reference, freed
/// in their callbacks) and by the handshake it waits on; the timeout holds only a weak
/// reference. The TCPClient itself owns nothing, so it may go away with connects in
/// flight; they finish on their own.
class TCPClient {
 public:
  explicit TCPClient(IOLoop* loop = nullptr) : loop_(loop) {}

  /// Connects to host:port (host: a name, an IPv4 literal or an IPv6 literal, with or
  /// without brackets). `timeout` of zero means none. With `ssl` (a client context),
  /// `server_hostname` is the name for SNI and certificate checks; empty means `host`.
  Future<std::shared_ptr<IOStream>> connect(std::string host, int port,
                                            Duration timeout = std::chrono::seconds(20),
                                            std::shared_ptr<SSLContext> ssl = nullptr,
                                            std::string server_hostname = "",
                                            IOStreamOptions options = {});
  /// Connects to the Unix domain socket at `path`. Fails with std::system_error
  /// (UV_ENOENT, UV_ECONNREFUSED, UV_ENAMETOOLONG...) or TimeoutError.
  Future<std::shared_ptr<IOStream>> connect_unix(std::string path,
                                                 Duration timeout = std::chrono::seconds(20),
                                                 IOStreamOptions options = {});

 private:
  IOLoop& loop() { return loop_ ? *loop_ : IOLoop::current(); }
  IOLoop* loop_;
};

}  // namespace tronada
