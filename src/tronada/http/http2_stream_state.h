// The state of one HTTP/2 stream, shared by HTTP2Session's request side
// (http2_session.cpp) and its response side (http2_response.cpp). Internal to them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/async/detail/frame_pool.h"
#include "tronada/async/future.h"
#include "tronada/http/http_connection.h"
#include "tronada/http/http_headers.h"
#include "tronada/http/http_server_request.h"
#include "tronada/net/file_region.h"

namespace tronada {

class HTTP2Session;

namespace detail {

struct HTTP2StreamState;

/// One stream's response channel: what a handler sees as request->connection. Part of
/// the stream's state, whose ownership request->connection shares (an aliasing
/// shared_ptr), so a request allocates nothing for it. Holds the session for as long as
/// a handler keeps it.
class HTTP2StreamConnection final : public HTTPConnection {
 public:
  explicit HTTP2StreamConnection(HTTP2StreamState& state) : state_(state) {}
  HTTP2StreamConnection(const HTTP2StreamConnection&) = delete;
  HTTP2StreamConnection& operator=(const HTTP2StreamConnection&) = delete;

  void write_headers(int status, const HTTPHeaders& headers) override;
  void write_head(int status, std::span<const HeaderRef> fields) override;
  void write_response(int status, const HTTPHeaders& headers, std::string_view body) override;
  void write_whole_response(int status, std::span<const HeaderRef> fields,
                            std::string_view body) override;
  void write(std::string_view chunk) override;
  bool can_write_file() const override { return true; }
  void write_file(FileRegion region) override;
  void finish() override;
  void abort() override;
  Future<void> drain() override;
  bool closed() const override;
  void set_close_callback(std::function<void()> cb) override;
  void pause_reading() override;
  void resume_reading() override;
  std::pair<std::string, int> local_address() const override;

  std::shared_ptr<HTTP2Session> session;  // set when the request is dispatched

 private:
  HTTP2StreamState& state_;
};

/// A block of bytes from the thread's pool (frame_pool.h), freed when it is reset or
/// destroyed.
class PooledBytes {
 public:
  PooledBytes() = default;
  PooledBytes(const PooledBytes&) = delete;
  PooledBytes& operator=(const PooledBytes&) = delete;
  ~PooledBytes() { reset(); }

  char* allocate(std::size_t size) {
    reset();
    data_ = static_cast<char*>(allocate_frame(size));
    size_ = size;
    return data_;
  }
  void reset() noexcept {
    if (data_) free_frame(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }

 private:
  char* data_ = nullptr;
  std::size_t size_ = 0;
};

/// One stream's request and response state. Owned by itself (open_ref) while the stream
/// is open, and by its response channel for as long as the handler keeps it.
struct HTTP2StreamState {
  std::int32_t id = 0;
  HTTP2StreamConnection connection{*this};
  // While the stream is open: the session's reference to it and its place in the
  // session's list of open streams, intrusive so that opening a stream allocates nothing
  // more and closing one finds it without a lookup.
  std::shared_ptr<HTTP2StreamState> open_ref;
  HTTP2StreamState* open_prev = nullptr;
  HTTP2StreamState* open_next = nullptr;
  std::shared_ptr<HTTPServerRequest> request;
  std::unique_ptr<HTTPMessageDelegate> message;
  std::function<void()> close_callback;
  std::string authority;
  std::string cookies;  // "cookie" fields joined with "; " (RFC 9113 8.2.3)
  std::size_t header_bytes = 0;
  std::size_t header_count = 0;
  // Where on_header put the first "host" field among the request's, or -1: a search by
  // name when the request is dispatched compared every field.
  int host_field = -1;
  // The response head nghttp2 encodes: its fields point into these (no copies), so they
  // are kept until END_STREAM is sent or the stream closes, whichever comes first. Either
  // fields (names lowercased) from write_headers, or one block of names and values from
  // write_whole_response.
  std::vector<HeaderField> response_fields;
  std::string status;
  PooledBytes head_block;
  // Response body not yet taken by nghttp2: bytes [out_pos, size).
  std::string out;
  std::size_t out_pos = 0;
  // What follows `out` once a file region was written (write_file): regions, and the
  // bytes written between them, in order. Empty unless the handler sends files.
  struct Segment {
    FileRegion file;    // a region (file set), or
    std::string bytes;  // bytes written after one
  };
  std::vector<Segment> segments;
  std::size_t segment_bytes = 0;  // memory held in `segments`
  // Body bytes nghttp2 has not taken yet, in memory or in files (the session's
  // queued_body_ is the sum over its streams).
  std::uint64_t queued = 0;
  // Streamed request body held while the handler paused it (not yet consumed, so the
  // peer's window stays shut).
  std::string held;
  std::uint64_t body_received = 0;
  std::uint64_t max_body = 0;
  std::vector<Promise<void>> drainers;
  bool headers_too_big = false;
  bool dispatched = false;    // start_request ran
  bool request_done = false;  // END_STREAM received
  bool stream_body = false;
  bool head = false;
  bool headers_written = false;
  bool headers_submitted = false;
  bool no_body = false;
  bool finished = false;       // the handler called finish()
  bool response_done = false;  // END_STREAM sent
  bool deferred = false;       // the data provider waits for write/finish
  bool closed = false;
  bool paused = false;
  bool finish_held = false;
  bool rejected = false;  // answered by the session (4xx); the rest is dropped

  std::size_t pending() const { return out.size() - out_pos; }
  // Body bytes held in memory, for drain().
  std::size_t buffered() const { return pending() + segment_bytes; }
};

}  // namespace detail

}  // namespace tronada
