// Where the frames of a WebSocket byte stream end, without decoding them: for a proxy
// that relays the bytes as they come (the tunnel after a 101) and must put a frame of
// its own between two of them, as the close it sends on drain. Sans I/O: fed the bytes
// going past, it reads only the frame headers (RFC 6455 section 5.2) and counts the
// payloads off, so it holds 14 bytes whatever the frame sizes, never unmasks, inflates
// or validates, and costs a few comparisons per chunk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tronada::ws {

class FrameBoundaryTracker {
 public:
  /// Follows `data`, the bytes right after those fed before. Returns how many it took:
  /// all of them, or, with `stop_at_frame_end`, only those up to and including the end
  /// of the first frame that ends in `data` (the one in progress, or, at a boundary,
  /// the next one), so the caller can act at that boundary and pass the rest later.
  /// Never fails: bytes that are not WebSocket frames still parse as some header, and
  /// a length no peer would send only puts the next boundary far away.
  std::size_t feed(std::string_view data, bool stop_at_frame_end = false);

  /// Between two frames: nothing of a frame went past without its end.
  bool at_boundary() const { return header_have_ == 0 && remaining_ == 0; }
  /// A whole close frame went past (its sender is closing; anything after is noise).
  bool close_seen() const { return close_seen_; }
  /// Frames that ended, for tests and accounting.
  std::uint64_t frames() const { return frames_; }

 private:
  void frame_ended();

  unsigned char header_[14] = {};
  std::size_t header_have_ = 0;
  std::size_t header_need_ = 2;
  std::uint64_t remaining_ = 0;  // payload bytes of the current frame still to come
  std::uint8_t opcode_ = 0;
  bool close_seen_ = false;
  std::uint64_t frames_ = 0;
};

}  // namespace tronada::ws
