// The WebSocket frame codec (RFC 6455 section 5), sans I/O: a parser fed bytes that
// yields messages and control frames, and a writer that produces frames. No sockets,
// no loop; WebSocketHandler and the client move the bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/websocket/permessage_deflate.h"
#include "tronada/websocket/utf8_validator.h"

namespace tronada::ws {

enum class Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

/// Close codes (RFC 6455 section 7.4.1).
namespace close_code {
constexpr std::uint16_t kNormal = 1000;
constexpr std::uint16_t kGoingAway = 1001;
constexpr std::uint16_t kProtocolError = 1002;
constexpr std::uint16_t kUnsupportedData = 1003;
constexpr std::uint16_t kNoStatus = 1005;  // never sent: a close frame without a code
constexpr std::uint16_t kAbnormal = 1006;  // never sent: the connection dropped
constexpr std::uint16_t kInvalidPayload = 1007;
constexpr std::uint16_t kPolicyViolation = 1008;
constexpr std::uint16_t kMessageTooBig = 1009;
constexpr std::uint16_t kMandatoryExtension = 1010;
constexpr std::uint16_t kInternalError = 1011;
}  // namespace close_code

/// True for codes an endpoint may put in a close frame (1000-1003, 1007-1011, 3000-4999).
bool is_sendable_close_code(std::uint16_t code);

/// Which end we are: servers receive masked frames and send unmasked ones, clients the
/// reverse (RFC 6455 section 5.1).
enum class Role : std::uint8_t { kServer, kClient };

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
constexpr std::size_t kMaxFrameHeader = 14;

/// Something the parser decoded.
struct Event {
  enum class Type : std::uint8_t { kText, kBinary, kPing, kPong, kClose };
  Type type = Type::kBinary;
  /// The message, the ping/pong payload, or the close reason.
  std::string data;
  /// Instead of `data` (then empty), for a message feed() unmasked into its caller's
  /// arena: valid while the arena is unchanged.
  std::string_view view;
  /// The payload, wherever it is.
  std::string_view payload() const { return view.data() ? view : std::string_view(data); }
  /// For kClose: the peer's code, close_code::kNoStatus if its frame had none.
  std::uint16_t code = 0;
};

/// Decodes frames into events: reassembles fragmented messages (control frames may come
/// between the fragments), unmasks, inflates permessage-deflate messages, validates
/// text as UTF-8 as it arrives, and enforces the message size limit.
///
/// Errors: feed() returns false and error_code() is the close code to fail the
/// connection with: 1002 for framing violations (reserved bits or opcodes, unmasked
/// client frames, masked server frames, fragmented or oversized control frames, a
/// continuation with no message or a new message inside one, a bad close payload, a
/// 64-bit length with its top bit set), 1007 for invalid UTF-8 (text or close reason)
/// or an undecodable compressed message, 1009 for a message over max_message_size
/// (before or after decompression). After an error, or after a close frame, feed()
/// consumes nothing more.
class FrameParser {
 public:
  /// `deflate` (may be null: not negotiated) must outlive the parser; it is shared with
  /// the writer of the same connection.
  FrameParser(Role role, std::size_t max_message_size, PerMessageDeflate* deflate = nullptr);

  /// Parses all of `data`, appending completed events to `events`.
  ///
  /// With an `arena`, a whole message that `data` holds in one uncompressed frame is
  /// unmasked into it (appended; it is reserved so that nothing appended during this call
  /// moves) and its event has a `view` of it instead of `data`: no allocation per message
  /// for a caller that consumes the events before it changes the arena.
  bool feed(std::string_view data, std::vector<Event>& events, std::string* arena = nullptr);

  std::uint16_t error_code() const { return error_code_; }
  const std::string& error_reason() const { return error_reason_; }
  bool failed() const { return state_ == State::kError; }
  /// A close frame was received (whatever follows it is ignored).
  bool close_received() const { return state_ == State::kClosed; }
  /// Bytes of the message being assembled (for memory accounting).
  std::size_t buffered() const { return message_.size() + control_.size(); }

 private:
  enum class State : std::uint8_t { kHeader, kPayload, kError, kClosed };

  bool fail(std::uint16_t code, std::string reason);
  bool on_header(const unsigned char* h);  // `h`: the whole header
  bool on_payload(char* data, std::size_t len);
  bool on_frame_end(std::vector<Event>& events);
  bool whole_message_into(std::string_view payload, std::vector<Event>& events, std::string& arena);
  void unmask(char* data, std::size_t len);

  Role role_;
  std::size_t max_message_size_;
  PerMessageDeflate* deflate_;
  State state_ = State::kHeader;

  // The frame header being read.
  unsigned char header_[kMaxFrameHeader];
  std::uint8_t header_have_ = 0;
  std::uint8_t header_need_ = 2;

  // The current frame.
  Opcode opcode_ = Opcode::kContinuation;
  bool fin_ = false;
  bool masked_ = false;
  unsigned char mask_[4] = {};
  std::uint8_t mask_pos_ = 0;
  std::uint64_t remaining_ = 0;

  // The message being assembled (text or binary), over one or more frames.
  bool in_message_ = false;
  bool message_text_ = false;
  bool message_compressed_ = false;
  std::string message_;
  std::string control_;  // a control frame's payload
  Utf8Validator utf8_;

  std::uint16_t error_code_ = 0;
  std::string error_reason_;
};

/// Writes a frame header for a payload of `len` bytes into `h`; returns its length.
/// Throws std::invalid_argument for a control frame over 125 bytes.
std::size_t encode_frame_header(unsigned char (&h)[kMaxFrameHeader], Opcode opcode,
                                std::uint64_t len, bool fin = true, bool rsv1 = false,
                                const unsigned char* mask = nullptr);

/// Appends one frame to `out`. With `mask` (4 bytes) the payload is masked, as clients
/// must. Throws std::invalid_argument for a control frame over 125 bytes.
void append_frame(std::string& out, Opcode opcode, std::string_view payload, bool fin = true,
                  bool rsv1 = false, const unsigned char* mask = nullptr);

/// Encodes messages and control frames for one connection: masks when the role is the
/// client's (with keys from OpenSSL's RAND_bytes), compresses data messages when
/// permessage-deflate was negotiated.
class FrameWriter {
 public:
  FrameWriter(Role role, PerMessageDeflate* deflate = nullptr) : role_(role), deflate_(deflate) {}

  /// A whole message in one frame.
  std::string message(std::string_view data, bool binary);
  /// For a message sent as it is (a server's, not compressed): writes its frame header
  /// into `h` and returns the header's length, so that the payload goes out from the
  /// caller's memory with no copy. 0 when the message needs message() (masking,
  /// compression).
  std::size_t plain_message_header(unsigned char (&h)[kMaxFrameHeader], std::string_view data,
                                   bool binary) const;
  std::string ping(std::string_view payload) { return control(Opcode::kPing, payload); }
  std::string pong(std::string_view payload) { return control(Opcode::kPong, payload); }
  /// A close frame; code 0 sends one without a code (and without reason). Reasons are
  /// cut to 123 bytes (on a UTF-8 character boundary).
  std::string close(std::uint16_t code, std::string_view reason = {});

 private:
  std::string control(Opcode opcode, std::string_view payload);
  void frame(std::string& out, Opcode opcode, std::string_view payload, bool rsv1);

  Role role_;
  PerMessageDeflate* deflate_;
};

}  // namespace tronada::ws
