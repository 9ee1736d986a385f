#include "tronada/websocket/frame_boundary.h"

#include <algorithm>
#include <cstring>

namespace tronada::ws {

namespace {

constexpr std::uint8_t kCloseOpcode = 0x8;

}  // namespace

void FrameBoundaryTracker::frame_ended() {
  ++frames_;
  if (opcode_ == kCloseOpcode) close_seen_ = true;
  header_have_ = 0;
  header_need_ = 2;
}

std::size_t FrameBoundaryTracker::feed(std::string_view data, bool stop_at_frame_end) {
  std::size_t i = 0;
  while (i < data.size()) {
    if (remaining_ > 0) {  // payload: counted, not looked at
      std::uint64_t take = std::min<std::uint64_t>(remaining_, data.size() - i);
      remaining_ -= take;
      i += static_cast<std::size_t>(take);
      if (remaining_ > 0) break;
      frame_ended();
      if (stop_at_frame_end) return i;
      continue;
    }
    std::size_t take = std::min(header_need_ - header_have_, data.size() - i);
    std::memcpy(header_ + header_have_, data.data() + i, take);
    header_have_ += take;
    i += take;
    if (header_have_ < header_need_) break;
    std::size_t len7 = header_[1] & 0x7F;
    if (header_need_ == 2) {
      // The first two bytes tell the header's full size: the extended length and the
      // mask key (client frames) follow.
      header_need_ = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((header_[1] & 0x80) ? 4 : 0);
      if (header_need_ > 2) continue;
    }
    opcode_ = header_[0] & 0x0F;
    std::uint64_t length = len7;
    if (len7 == 126) {
      length = (std::uint64_t{header_[2]} << 8) | header_[3];
    } else if (len7 == 127) {
      length = 0;
      for (int k = 2; k < 10; ++k) length = (length << 8) | header_[k];
    }
    remaining_ = length;
    if (remaining_ == 0) {
      frame_ended();
      if (stop_at_frame_end) return i;
    }
  }
  return i;
}

}  // namespace tronada::ws
