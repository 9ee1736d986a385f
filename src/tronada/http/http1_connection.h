// HTTP1Connection: moves bytes between an IOStream and the sans-I/O HTTP/1 request parser
// and response writer, with the timeouts, pipelining and closing around them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tronada/http/http1_parser.h"
#include "tronada/http/http1_response_writer.h"
#include "tronada/http/http_connection.h"
#include "tronada/http/http_server_request.h"
#include "tronada/loop/timeout_list.h"
#include "tronada/net/iostream.h"

namespace tronada {

/// Settings of an HTTP server's connections, with nginx-like defaults. A timeout of zero
/// disables that timeout.
struct HTTPServerOptions {
  HTTP1Limits limits;  // request line 8 KiB, headers 64 KiB / 100 fields, body 1 MiB
  /// Waiting for the next request on a kept-alive connection (nginx keepalive_timeout).
  Duration idle_timeout = std::chrono::seconds(75);
  /// From a request's first byte to the end of its headers: a slowloris client that
  /// trickles a header section is cut off after this, however steadily it sends.
  Duration header_timeout = std::chrono::seconds(60);
  /// Longest gap between two reads of a request body (nginx client_body_timeout).
  Duration body_timeout = std::chrono::seconds(60);
  /// Longest time queued response bytes may wait without the client taking any.
  Duration write_timeout = std::chrono::seconds(60);
  /// After an error response (or a response sent before the request body was read) the
  /// connection stops sending, and reads and discards what the client still sends for at
  /// most this long before it closes: closing with unread input would reset the
  /// connection and could destroy the response before the client read it (nginx's
  /// lingering close).
  Duration linger_timeout = std::chrono::seconds(2);
  /// Trust X-Real-IP / X-Forwarded-For / X-Forwarded-Proto (behind a proxy you run).
  bool xheaders = false;
  /// "http" or "https"; set by the server for TLS listeners.
  std::string protocol = "http";
  /// Value of the Server header; empty sends none.
  std::string server_name = "tronada";
  /// Connections open at once; more wait in the kernel's backlog. 0: no limit.
  std::size_t max_connections = 0;
  /// Keep connections alive between requests.
  bool keep_alive = true;
};

class HTTP1Connection;

namespace detail {

/// The open connections of one server: an intrusive list through the connections' own
/// links, so that listing one costs no allocation (an unordered_set cost a 32-byte node
/// and a bucket per connection, project issue 18). Connections unlink themselves when
/// they close, detach or die; unlinking one that is not listed does nothing.
class HTTP1ConnectionList {
 public:
  void insert(HTTP1Connection* conn);
  void erase(HTTP1Connection* conn);
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  /// A copy to walk while the connections unlink themselves (closing one erases it).
  std::vector<HTTP1Connection*> snapshot() const;

 private:
  HTTP1Connection* head_ = nullptr;
  std::size_t size_ = 0;
};

/// What every connection of one server shares. Owned by a shared_ptr that connections
/// hold too, so a connection that outlives its server still finds its settings.
struct HTTP1ServerContext {
  HTTP1ServerContext(IOLoop& loop, HTTPServerOptions opts, HTTPServerDelegate* delegate);
  HTTPServerOptions options;
  HTTPServerDelegate* delegate;  // nulled when the server goes away
  /// Set by the server on clear-text listeners with HTTP/2 on: takes over a connection
  /// that switched to h2c (the stream after the 101, with the bytes read past the request),
  /// the decoded HTTP2-Settings and the upgrading request, which becomes stream 1.
  std::function<void(DetachedConnection, std::string settings, std::shared_ptr<HTTPServerRequest>)>
      h2c_upgrade;
  TimeoutList idle_timeouts;
  TimeoutList header_timeouts;
  TimeoutList body_timeouts;
  TimeoutList write_timeouts;
  TimeoutList linger_timeouts;
  HTTP1ConnectionList connections;
  /// Accepted connections whose protocol is not known yet (HTTPServer's sniffers): the
  /// drain must wait for them too, their first request may be on the wire.
  std::size_t sniffing = 0;
  /// Set by HTTPServer::close_all_connections: connections that start afterwards answer
  /// one request and close.
  bool draining = false;
};

}  // namespace detail

/// One HTTP/1.x connection on the server side: keep-alive, pipelining (one request at a
/// time, responses in order), chunked bodies both ways, 100-continue, timeouts, and
/// rejections with the parser's status and a closed connection.
///
/// Upgrades: an Upgrade request is delivered like any other; parsing stops after it. A
/// handler that answers normally keeps the connection on HTTP/1; one that writes a 101
/// head and calls detach() takes the stream (and the bytes read past the request) and
/// the connection lets go of it, for good.
///
/// Lifetime: held by shared_ptr. The connection holds itself (self_) from start() until
/// its stream closes or it detaches; each request's response channel holds another
/// reference, so a handler that answers late finds the connection (closed, perhaps)
/// rather than freed memory.
///
/// Timeouts: one entry for the reading side (idle, header, body, lingering, by phase)
/// and one that watches queued response bytes (write timeout), each on a list of the
/// server's context, so that arming one costs a few pointer writes.
class HTTP1Connection : public std::enable_shared_from_this<HTTP1Connection>,
                        private HTTP1ParserDelegate {
 public:
  HTTP1Connection(std::shared_ptr<IOStream> stream,
                  std::shared_ptr<detail::HTTP1ServerContext> context);
  ~HTTP1Connection() override;

  /// Starts reading requests. `initial` is what arrived before us (the bytes the server
  /// looked at to choose HTTP/1): parsed now, in this call, without a copy.
  void start(std::string_view initial = {});
  /// Closes the connection now; an active request sees on_connection_close.
  void close();
  /// Closes once the current response (if any) is done; idle connections close now.
  void close_when_idle();
  bool idle() const { return !request_active_; }

  // The response side, called through the request's HTTPConnection (HTTP1Stream).
  /// `reason`: the status line's phrase as given; unset for the standard one.
  void write_headers(std::uint64_t seq, int status, const HTTPHeaders& headers,
                     std::optional<std::string_view> reason = std::nullopt);
  void write_body(std::uint64_t seq, std::string_view chunk);
  void finish_response(std::uint64_t seq);
  void abort_response(std::uint64_t seq);
  void write_response(std::uint64_t seq, int status, const HTTPHeaders& headers,
                      std::string_view body, std::optional<std::string_view> reason = std::nullopt);
  void write_head(std::uint64_t seq, int status, std::span<const HeaderRef> fields);
  void write_whole_response(std::uint64_t seq, int status, std::span<const HeaderRef> fields,
                            std::string_view body);
  void write_file(std::uint64_t seq, FileRegion region);
  Future<void> drain(std::uint64_t seq);
  bool response_closed(std::uint64_t seq) const;
  void set_close_callback(std::uint64_t seq, std::function<void()> cb);
  DetachedConnection detach(std::uint64_t seq);
  void pause_body(std::uint64_t seq);
  void resume_body(std::uint64_t seq);
  std::pair<std::string, int> local_address() const;

 private:
  // HTTP1ParserDelegate
  HeadersAction on_headers(RequestStartLine&& start_line, HTTPHeaders&& headers,
                           const RequestInfo& info) override;
  void on_body(std::string_view chunk) override;
  void on_message_complete() override;

  enum class Phase : std::uint8_t { idle, headers, body, handling, lingering };

  // The head and whole-response writers, for HTTPHeaders and for HeaderRef views.
  // `reason`: the status line's phrase as given; unset for the standard one.
  template <typename Fields>
  void write_head_fields(std::uint64_t seq, int status, const Fields& fields,
                         std::optional<std::string_view> reason);
  template <typename Fields>
  void write_response_fields(std::uint64_t seq, int status, const Fields& fields,
                             std::string_view body, std::optional<std::string_view> reason);

  void on_data(std::string_view data);
  void on_peer_eof();
  std::size_t process(std::string_view data);
  void process_pending();
  void update_read_pause();
  void on_request_done();
  void finish_upgrade_request(std::string_view rest);
  void deliver_held_body();
  void write_switching_head(const HTTPHeaders& headers);
  void on_delegate_exception(std::exception_ptr e);
  void abort_request();
  void send_error(int status, std::string_view reason);
  void flush();
  void schedule_flush();
  void write_raw(const std::string_view* pieces, std::size_t count);
  void watch_writes();
  void mark_write_progress();
  void close_after_flush(bool linger);
  void on_stream_closed();
  void apply_xheaders(HTTPServerRequest& req);
  void arm(TimeoutList& list);
  static void on_read_timeout(void* self);
  static void on_write_timeout(void* self);

  // What only a request being read or answered needs (defined in the .cpp file).
  struct RequestState;
  struct RequestStateRecycler {
    void operator()(RequestState* state) const;
  };
  // Marks a call into the request's delegate; see http1_connection.cpp.
  class DelegateCall;

  /// The request state, made (or taken from the thread's pool) on first use: when the
  /// first byte of a request arrives. Inline: a request asks for it dozens of times.
  RequestState& state() {
    if (!rs_) [[unlikely]]
      make_state();
    return *rs_;
  }
  void make_state();
  /// Gives the request state back once the connection is idle between requests (nothing
  /// read of the next request, no response bytes waiting, no delegate call running).
  void release_idle_state();
  /// Pipelined input is waiting in the request state.
  bool has_pending() const;
  /// Frees the pipelined input (the connection closes or changes hands).
  void drop_pending();

  friend class detail::HTTP1ConnectionList;

  std::shared_ptr<IOStream> stream_;
  std::shared_ptr<detail::HTTP1ServerContext> context_;
  // Ourselves, from start() until the stream's close callback ran or detach() gave the
  // stream away. Kept here rather than captured in the stream's close callback: a
  // std::function stores a captured shared_ptr on the heap (32 bytes per connection).
  std::shared_ptr<HTTP1Connection> self_;
  // Links in context_->connections while listed.
  HTTP1Connection* prev_listed_ = nullptr;
  HTTP1Connection* next_listed_ = nullptr;
  std::unique_ptr<RequestState, RequestStateRecycler> rs_;  // null while idle
  TimeoutEntry read_timeout_;
  TimeoutEntry write_timeout_;

  std::uint64_t seq_ = 0;  // numbers requests; a stale response channel can't write
  // Write progress, for the write timeout: response bytes given to the stream ever, and
  // at the last look those, the bytes written out, and the bytes not yet sent. The last
  // response may still be on its way while the connection is idle, so these stay here.
  std::uint64_t bytes_handed_ = 0;
  std::uint64_t write_mark_handed_ = 0;
  std::uint64_t write_mark_taken_ = 0;
  std::size_t write_mark_unsent_ = 0;

  std::string remote_ip_;  // the peer's address, looked up once per connection

  // The port and the flags share one word (bit-fields): every byte here is paid by each
  // open connection, idle or not. keep_alive_ stays a plain bool: the response writer
  // takes a reference to it.
  int remote_port_ = 0;
  Phase phase_ = Phase::idle;
  bool keep_alive_ = true;
  // Inside write_response: finish() flushes.
  bool defer_flush_ : 1 = false;
  // A request is being answered.
  bool request_active_ : 1 = false;
  // It ended with the connection, not with finish().
  bool request_aborted_ : 1 = false;
  // Inside on_data: it flushes and goes on parsing at the end.
  bool dispatching_ : 1 = false;
  // Inside a call to the request's delegate.
  bool in_delegate_ : 1 = false;
  bool flush_scheduled_ : 1 = false;
  bool reading_paused_ : 1 = false;
  bool closing_ : 1 = false;
  bool close_when_idle_ : 1 = false;
  // The stream belongs to someone else now.
  bool detached_ : 1 = false;
  // In context_->connections.
  bool listed_ : 1 = false;
};

}  // namespace tronada
