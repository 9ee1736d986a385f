// HTTP2Session: one HTTP/2 connection on the server side, on nghttp2's session API, fed
// by and feeding an IOStream; each stream is presented to the same HTTPServerDelegate /
// HTTPMessageDelegate / HTTPConnection interfaces as an HTTP/1.1 request.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "tronada/http/http1_connection.h"
#include "tronada/http/http_connection.h"
#include "tronada/http/http_server_request.h"
#include "tronada/loop/timeout_list.h"
#include "tronada/net/iostream.h"

namespace tronada {

/// HTTP/2 settings and abuse limits. The timeouts (idle, write) are the server's
/// HTTPServerOptions ones.
struct HTTP2Options {
  /// SETTINGS_MAX_CONCURRENT_STREAMS; nghttp2 refuses streams beyond it.
  std::uint32_t max_concurrent_streams = 100;
  /// SETTINGS_MAX_HEADER_LIST_SIZE, and enforced: a request whose decoded header list
  /// (names + values + 32 per field, as RFC 9113 counts) is bigger is reset. 0: the
  /// server's HTTP/1 max_header_bytes.
  std::uint32_t max_header_list_size = 0;
  /// Per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE) and the connection's.
  std::uint32_t initial_window_size = 256 * 1024;
  std::uint32_t connection_window_size = 1024 * 1024;
  /// Our HPACK decoder's dynamic table (SETTINGS_HEADER_TABLE_SIZE) and the most our
  /// encoder uses whatever the peer allows.
  std::uint32_t header_table_size = 4096;
  /// Rapid reset (CVE-2023-44487): nghttp2's token bucket for RST_STREAM frames received
  /// (burst, tokens per second); past it the connection gets GOAWAY.
  std::uint64_t reset_burst = 200;
  std::uint64_t reset_rate = 33;
  /// And our own count: streams the peer cancels before their response finished, per
  /// `reset_interval`; more than this and the connection gets GOAWAY ENHANCE_YOUR_CALM.
  std::uint32_t max_resets_per_interval = 100;
  Duration reset_interval = std::chrono::seconds(10);
  /// SETTINGS and PING floods: ACKs we may owe at once, SETTINGS entries per frame.
  std::size_t max_outbound_ack = 100;
  std::size_t max_settings = 32;
  /// CONTINUATION frames after one HEADERS frame.
  std::size_t max_continuations = 8;
  /// Response bytes a stream may queue before drain() waits.
  std::size_t stream_high_water = 64 * 1024;
};

class HTTP2Session;

namespace detail {

/// What every HTTP/2 connection of one server shares; the HTTP/1 context carries the
/// delegate, the common options and the timeout lists.
struct HTTP2ServerContext {
  std::shared_ptr<HTTP1ServerContext> base;
  HTTP2Options options;
  std::unordered_set<HTTP2Session*> sessions;
};

struct HTTP2StreamState;

}  // namespace detail

/// One HTTP/2 connection (server side). Streams run concurrently; each becomes an
/// HTTPServerRequest whose `connection` is a per-stream HTTPConnection. Response bodies
/// go through nghttp2's data provider, so they move only as fast as both the stream's
/// and the connection's flow-control windows and the socket allow; drain() reflects
/// all three. A stream the peer resets stops its handler's output and gets
/// on_connection_close and its close callback.
///
/// Lifetime: held by shared_ptr. The stream's close callback holds one reference until
/// the socket closes; each stream's response channel holds another. The nghttp2 session
/// is owned here and deleted in the destructor.
///
/// Timeouts: the server's idle timeout while no stream is open, and its write timeout
/// while output is queued (to the socket or in a stream waiting for window) without
/// progress, which also ends zero-window stalls.
class HTTP2Session : public std::enable_shared_from_this<HTTP2Session> {
 public:
  HTTP2Session(std::shared_ptr<IOStream> stream, std::shared_ptr<detail::HTTP2ServerContext> ctx);
  ~HTTP2Session();
  HTTP2Session(const HTTP2Session&) = delete;
  HTTP2Session& operator=(const HTTP2Session&) = delete;

  /// Sends our SETTINGS and starts reading; `initial` is input already read from the
  /// stream (the client preface, when the server sniffed it).
  void start(std::string_view initial = {});
  /// start() for a connection that switched from HTTP/1.1 by `Upgrade: h2c` (RFC 7540
  /// 3.2), after our 101: applies the client's HTTP2-Settings (decoded) and serves
  /// `request`, already read whole, as stream 1. `initial` is what the client sent after
  /// its request (the start of its connection preface). Settings nghttp2 refuses end the
  /// connection with GOAWAY.
  void start_upgraded(std::string_view settings, std::shared_ptr<HTTPServerRequest> request,
                      std::string_view initial = {});
  /// Closes the connection now; open streams see on_connection_close.
  void close();
  /// Graceful shutdown: GOAWAY, open streams finish, then the connection closes.
  void close_when_idle();
  std::size_t open_streams() const { return open_count_; }

  // The response side, called through a stream's HTTPConnection.
  void write_headers(detail::HTTP2StreamState& s, int status, const HTTPHeaders& headers);
  void write_head(detail::HTTP2StreamState& s, int status, std::span<const HeaderRef> fields);
  void write_response(detail::HTTP2StreamState& s, int status, const HTTPHeaders& headers,
                      std::string_view body);
  void write_whole_response(detail::HTTP2StreamState& s, int status,
                            std::span<const HeaderRef> fields, std::string_view body);
  void write_body(detail::HTTP2StreamState& s, std::string_view chunk);
  void write_file(detail::HTTP2StreamState& s, FileRegion region);
  void finish_response(detail::HTTP2StreamState& s);
  void abort_response(detail::HTTP2StreamState& s);
  Future<void> drain(detail::HTTP2StreamState& s);
  void pause_body(detail::HTTP2StreamState& s);
  void resume_body(detail::HTTP2StreamState& s);
  std::pair<std::string, int> local_address() const;

 private:
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t namelen, const std::uint8_t* value, std::size_t valuelen,
                       std::uint8_t flags, void* user);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_data_chunk_recv(nghttp2_session*, std::uint8_t flags, std::int32_t stream_id,
                                const std::uint8_t* data, std::size_t len, void* user);
  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code,
                             void* user);
  static ssize_t read_body(nghttp2_session*, std::int32_t stream_id, std::uint8_t* buf,
                           std::size_t length, std::uint32_t* data_flags,
                           nghttp2_data_source* source, void* user);

  template <typename Fields>
  void write_head_fields(detail::HTTP2StreamState& s, int status, const Fields& fields);
  template <typename Fields>
  void write_response_fields(detail::HTTP2StreamState& s, int status, const Fields& fields,
                             std::string_view body);

  void add_open(std::shared_ptr<detail::HTTP2StreamState> s);
  std::shared_ptr<detail::HTTP2StreamState> remove_open(detail::HTTP2StreamState& s);
  void on_data(std::string_view data);
  void dispatch_request(detail::HTTP2StreamState& s);
  void request_complete(detail::HTTP2StreamState& s);
  void submit_headers(detail::HTTP2StreamState& s, bool with_body);
  void reject(detail::HTTP2StreamState& s, int status);
  void delegate_failed(detail::HTTP2StreamState& s, const char* where);
  void count_reset();
  void flush();
  void schedule_flush();
  void on_write_done();
  void update_timeouts();
  void wake_drainers(detail::HTTP2StreamState& s);
  void close_after_flush();
  void on_stream_closed();
  static void on_idle_timeout(void* self);
  static void on_write_timeout(void* self);

  std::shared_ptr<IOStream> stream_;
  std::shared_ptr<detail::HTTP2ServerContext> ctx_;
  nghttp2_session* session_ = nullptr;
  // Open streams, most recent first (linked through the states themselves).
  detail::HTTP2StreamState* open_streams_ = nullptr;
  std::size_t open_count_ = 0;
  std::vector<std::shared_ptr<detail::HTTP2StreamState>>
      headers_due_;                                     // write_headers, not submitted
  std::shared_ptr<detail::HTTP2StreamState> upgraded_;  // stream 1 of an h2c Upgrade, until start
  // The stream whose request head is being received: on_header finds it without asking
  // nghttp2 (a hash lookup per field). Reset when that stream closes.
  detail::HTTP2StreamState* receiving_ = nullptr;
  std::string remote_ip_;
  int remote_port_ = 0;
  TimeoutEntry idle_timeout_;
  TimeoutEntry write_timeout_;
  std::uint64_t bytes_sent_ = 0;  // given to the socket, ever
  std::uint64_t write_mark_ = 0;  // bytes_sent_ when the write timeout was armed
  std::size_t queued_body_ = 0;   // response bytes waiting in streams
  std::uint32_t resets_ = 0;      // in the current interval
  TimePoint reset_window_start_{};
  std::size_t header_list_limit_ = 0;
  bool flush_scheduled_ = false;
  bool in_flush_ = false;
  bool waiting_for_socket_ = false;  // output stopped until the socket drains
  bool closing_ = false;
  bool close_after_flush_ = false;
  bool goaway_sent_ = false;
  bool in_recv_ = false;
};

}  // namespace tronada
