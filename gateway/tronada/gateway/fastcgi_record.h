// FastCGI 1.0 records, sans-I/O: encoders that append records to a buffer, and parsers
// fed bytes that emit records and, for a client, one request's response events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tronada::fastcgi {

inline constexpr std::uint8_t kVersion1 = 1;
inline constexpr std::size_t kHeaderSize = 8;
inline constexpr std::size_t kMaxContentLength = 65535;
/// FCGI_KEEP_CONN in BEGIN_REQUEST's flags: the responder keeps the connection open.
inline constexpr std::uint8_t kKeepConn = 1;

enum class RecordType : std::uint8_t {
  begin_request = 1,
  abort_request = 2,
  end_request = 3,
  params = 4,
  stdin_ = 5,
  stdout_ = 6,
  stderr_ = 7,
  data = 8,
  get_values = 9,
  get_values_result = 10,
  unknown_type = 11,
};

enum class Role : std::uint16_t { responder = 1, authorizer = 2, filter = 3 };

enum class ProtocolStatus : std::uint8_t {
  request_complete = 0,
  cant_mpx_conn = 1,
  overloaded = 2,
  unknown_role = 3,
};

using NameValuePairs = std::vector<std::pair<std::string, std::string>>;
/// Pairs that borrow their text (a request's fields, a config's strings) while encoded.
using NameValueViews = std::vector<std::pair<std::string_view, std::string_view>>;

/// Malformed or unexpected input from the peer; the connection cannot be trusted after it.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// --- encoding (each appends to `out`) ---

/// One or more records of `type` carrying `content` (split at 65535 bytes), each padded
/// to a multiple of 8 bytes. Empty content writes one empty record: for the stream types
/// (PARAMS, STDIN, STDOUT, STDERR, DATA) that is the end-of-stream marker.
void append_record(std::string& out, RecordType type, std::uint16_t request_id,
                   std::string_view content);
void append_begin_request(std::string& out, std::uint16_t request_id, Role role, bool keep_conn);
void append_end_request(std::string& out, std::uint16_t request_id, std::uint32_t app_status,
                        ProtocolStatus status);
void append_abort_request(std::string& out, std::uint16_t request_id);
/// One name-value pair in FastCGI's encoding (1-byte lengths below 128, else 4 bytes).
/// Throws std::length_error for a name or value longer than 2^31-1.
void append_name_value(std::string& out, std::string_view name, std::string_view value);
/// The PARAMS stream: the pairs in as many records as needed, then the empty record.
void append_params(std::string& out, std::uint16_t request_id, const NameValueViews& params);
/// A STDIN/STDOUT/STDERR/DATA piece (non-empty) or, for empty `data`, the stream's end.
inline void append_stream(std::string& out, RecordType type, std::uint16_t request_id,
                          std::string_view data) {
  append_record(out, type, request_id, data);
}
/// FCGI_GET_VALUES (request id 0) asking for `names`, and its answer.
void append_get_values(std::string& out, const std::vector<std::string>& names);
void append_get_values_result(std::string& out, const NameValuePairs& values);
void append_unknown_type(std::string& out, std::uint8_t type);

/// Decodes a run of name-value pairs (PARAMS or GET_VALUES content). Throws
/// ProtocolError when a length runs past the end of `content`.
NameValuePairs parse_name_values(std::string_view content);

// --- decoding ---

/// One record as parsed; `content` is valid only during the callback.
struct Record {
  std::uint8_t type = 0;
  std::uint16_t request_id = 0;
  std::string_view content;
};

/// Splits a byte stream into records. Feed any split of the bytes; each complete record
/// goes to the callback, in order. Checks only the framing (version 1); what a record
/// may mean where is for the caller. Holds at most one record (64 KiB + padding).
class RecordParser {
 public:
  using Callback = std::function<void(const Record&)>;
  explicit RecordParser(Callback cb) : cb_(std::move(cb)) {}
  /// Throws ProtocolError for a version other than 1. Whatever the callback throws
  /// propagates; the parser must not be fed again after an exception.
  void feed(std::string_view data);
  /// True between records: no partial header or content is buffered.
  bool at_boundary() const { return buffer_.empty(); }
  /// Bytes of a partial record buffered.
  std::size_t buffered() const { return buffer_.size(); }

 private:
  /// Length of the record starting at `header` (header, content, padding).
  static std::size_t record_size(const unsigned char* header);
  void emit(const unsigned char* record);

  Callback cb_;
  std::string buffer_;
};

/// What a client receives for one request (the events a responder's records carry).
class ResponseHandler {
 public:
  virtual ~ResponseHandler() = default;
  virtual void on_stdout(std::string_view data) = 0;
  virtual void on_stderr(std::string_view data) = 0;
  /// END_REQUEST: the response is complete.
  virtual void on_end_request(std::uint32_t app_status, ProtocolStatus status) = 0;
  /// A management answer on the same connection (FCGI_GET_VALUES_RESULT).
  virtual void on_values(const NameValuePairs& values) { (void)values; }
};

/// The client side of one request on a connection: checks that every record belongs to
/// `request_id` (or is a management record), that nothing follows END_REQUEST or a
/// stream's end, and that END_REQUEST is well formed. Throws ProtocolError otherwise.
class ResponseParser {
 public:
  ResponseParser(std::uint16_t request_id, ResponseHandler& handler);
  void feed(std::string_view data);
  /// The peer closed the connection: throws ProtocolError unless END_REQUEST came.
  void feed_eof();
  bool complete() const { return ended_; }
  /// True once any record of this request arrived (nothing may be retried after it).
  bool started() const { return started_; }
  /// Bytes past END_REQUEST: a keep-alive connection must not carry any.
  bool clean() const { return parser_.at_boundary(); }

 private:
  void on_record(const Record& r);

  std::uint16_t request_id_;
  ResponseHandler& handler_;
  RecordParser parser_;
  bool started_ = false;
  bool ended_ = false;
  bool stdout_closed_ = false;
  bool stderr_closed_ = false;
};

}  // namespace tronada::fastcgi
