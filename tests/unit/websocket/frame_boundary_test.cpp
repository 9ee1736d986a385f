// The frame-boundary tracker a proxied WebSocket tunnel uses to find where it may put a
// close frame: frames of every header size, masked and not, fed whole, one byte at a
// time, and stopped at each frame end.
#include "tronada/websocket/frame_boundary.h"

#include <gtest/gtest.h>

#include <string>

#include "tronada/websocket/frame_codec.h"

using namespace tronada::ws;

namespace {

const unsigned char kMask[4] = {0x37, 0xfa, 0x21, 0x3d};

std::string frame(Opcode op, std::size_t payload_size, bool masked, bool fin = true) {
  std::string out;
  append_frame(out, op, std::string(payload_size, 'x'), fin, false, masked ? kMask : nullptr);
  return out;
}

// A stream with every header form: 7-bit, 16-bit and 64-bit lengths, empty payloads,
// a fragmented message with a ping between its fragments, and a close at the end.
std::string mixed_stream(bool masked) {
  return frame(Opcode::kText, 5, masked) + frame(Opcode::kBinary, 0, masked) +
         frame(Opcode::kBinary, 300, masked) + frame(Opcode::kText, 70000, masked, false) +
         frame(Opcode::kPing, 4, masked) + frame(Opcode::kContinuation, 125, masked) +
         frame(Opcode::kClose, 2, masked);
}

}  // namespace

TEST(FrameBoundaryTracker, StartsAtABoundary) {
  FrameBoundaryTracker t;
  EXPECT_TRUE(t.at_boundary());
  EXPECT_FALSE(t.close_seen());
  EXPECT_EQ(t.frames(), 0u);
}

TEST(FrameBoundaryTracker, FollowsAWholeStream) {
  for (bool masked : {false, true}) {
    std::string s = mixed_stream(masked);
    FrameBoundaryTracker t;
    EXPECT_EQ(t.feed(s), s.size());
    EXPECT_TRUE(t.at_boundary());
    EXPECT_EQ(t.frames(), 7u);
    EXPECT_TRUE(t.close_seen());
  }
}

TEST(FrameBoundaryTracker, OneByteAtATimeIsAtABoundaryExactlyBetweenFrames) {
  for (bool masked : {false, true}) {
    std::string s = mixed_stream(masked);
    // Where each frame ends, from the frames' own sizes.
    std::vector<std::size_t> ends;
    std::size_t at = 0;
    for (std::string f :
         {frame(Opcode::kText, 5, masked), frame(Opcode::kBinary, 0, masked),
          frame(Opcode::kBinary, 300, masked), frame(Opcode::kText, 70000, masked, false),
          frame(Opcode::kPing, 4, masked), frame(Opcode::kContinuation, 125, masked),
          frame(Opcode::kClose, 2, masked)}) {
      at += f.size();
      ends.push_back(at);
    }
    FrameBoundaryTracker t;
    std::size_t next_end = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      ASSERT_EQ(t.feed(std::string_view(s).substr(i, 1)), 1u);
      bool is_end = i + 1 == ends[next_end];
      ASSERT_EQ(t.at_boundary(), is_end) << "after byte " << i << (masked ? " masked" : "");
      if (is_end) ++next_end;
      EXPECT_EQ(t.close_seen(), i + 1 == s.size());
    }
    EXPECT_EQ(t.frames(), 7u);
  }
}

TEST(FrameBoundaryTracker, StopsRightAfterTheFrameInProgress) {
  std::string a = frame(Opcode::kBinary, 1000, false);
  std::string b = frame(Opcode::kText, 3, false);
  std::string s = a + b;
  FrameBoundaryTracker t;
  ASSERT_EQ(t.feed(std::string_view(s).substr(0, 10)), 10u);  // mid-frame
  EXPECT_FALSE(t.at_boundary());
  std::size_t took = t.feed(std::string_view(s).substr(10), true);
  EXPECT_EQ(took, a.size() - 10);
  EXPECT_TRUE(t.at_boundary());
  EXPECT_EQ(t.frames(), 1u);
  // At a boundary, stopping takes the next whole frame.
  EXPECT_EQ(t.feed(std::string_view(s).substr(a.size()), true), b.size());
  EXPECT_EQ(t.frames(), 2u);
}

TEST(FrameBoundaryTracker, StopsAfterAnEmptyFrameAtTheEndOfItsHeader) {
  std::string s = frame(Opcode::kPong, 0, true) + frame(Opcode::kText, 2, true);
  FrameBoundaryTracker t;
  EXPECT_EQ(t.feed(s, true), 6u);  // 2 header bytes and the mask key
  EXPECT_TRUE(t.at_boundary());
}

TEST(FrameBoundaryTracker, AFrameCutInItsHeaderIsNotAtABoundary) {
  std::string s = frame(Opcode::kBinary, 70000, true);  // 2 + 8 + 4 header bytes
  FrameBoundaryTracker t;
  EXPECT_EQ(t.feed(std::string_view(s).substr(0, 5), true), 5u);
  EXPECT_FALSE(t.at_boundary());
  EXPECT_EQ(t.feed(std::string_view(s).substr(5), true), s.size() - 5);
  EXPECT_TRUE(t.at_boundary());
}

TEST(FrameBoundaryTracker, AHugeLengthOnlyPutsTheBoundaryFarAway) {
  // A 64-bit length with the top bit set: not a valid frame, but the tracker does not
  // judge; it only never reaches the end (the tunnel's drain deadline bounds that).
  std::string s = "\x82\x7f\xff\xff\xff\xff\xff\xff\xff\xff";
  FrameBoundaryTracker t;
  EXPECT_EQ(t.feed(s + std::string(100, 'x'), true), s.size() + 100);
  EXPECT_FALSE(t.at_boundary());
  EXPECT_EQ(t.frames(), 0u);
}
