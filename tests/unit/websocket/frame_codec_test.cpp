// The WebSocket frame codec without sockets: frames built by hand (or by the writer) fed
// whole and one byte at a time.
#include "tronada/websocket/frame_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace tronada::ws;

namespace {

const unsigned char kMask[4] = {0x37, 0xfa, 0x21, 0x3d};

// A frame as a client sends it (masked), built with the writer's primitive.
std::string client_frame(Opcode op, std::string_view payload, bool fin = true, bool rsv1 = false) {
  std::string out;
  append_frame(out, op, payload, fin, rsv1, kMask);
  return out;
}

struct Fed {
  bool ok;
  std::vector<Event> events;
  std::uint16_t code;
};

Fed feed_whole(std::string_view bytes, Role role = Role::kServer, std::size_t max = 1 << 20,
               PerMessageDeflate* deflate = nullptr) {
  FrameParser p(role, max, deflate);
  Fed f;
  f.ok = p.feed(bytes, f.events);
  f.code = p.error_code();
  return f;
}

Fed feed_bytewise(std::string_view bytes, Role role = Role::kServer, std::size_t max = 1 << 20) {
  FrameParser p(role, max);
  Fed f{true, {}, 0};
  for (char c : bytes) {
    if (!p.feed(std::string_view(&c, 1), f.events)) {
      f.ok = false;
      break;
    }
  }
  f.code = p.error_code();
  return f;
}

}  // namespace

TEST(WsFrameCodec, RFCExamples) {
  // RFC 6455 section 5.7: a single-frame unmasked text message, and the masked one.
  auto f = feed_whole(std::string("\x81\x05Hello", 7), Role::kClient);
  ASSERT_TRUE(f.ok);
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_EQ(f.events[0].type, Event::Type::kText);
  EXPECT_EQ(f.events[0].data, "Hello");
  f = feed_whole(std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11));
  ASSERT_TRUE(f.ok);
  EXPECT_EQ(f.events[0].data, "Hello");
  // A fragmented unmasked text message.
  f = feed_whole(std::string("\x01\x03Hel\x80\x02lo", 9), Role::kClient);
  ASSERT_TRUE(f.ok);
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_EQ(f.events[0].data, "Hello");
  // Unmasked ping with "Hello", and the masked pong.
  f = feed_whole(std::string("\x89\x05Hello", 7), Role::kClient);
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_EQ(f.events[0].type, Event::Type::kPing);
  f = feed_whole(std::string("\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11));
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_EQ(f.events[0].type, Event::Type::kPong);
  EXPECT_EQ(f.events[0].data, "Hello");
}

TEST(WsFrameCodec, EveryOpcodeRoundTrips) {
  FrameWriter client(Role::kClient);
  std::string bytes = client.message("text", false) +
                      client.message(std::string("\0\1\2", 3), true) + client.ping("p") +
                      client.pong("q") + client.close(1000, "bye");
  for (int bytewise = 0; bytewise < 2; ++bytewise) {
    auto f = bytewise ? feed_bytewise(bytes) : feed_whole(bytes);
    ASSERT_TRUE(f.ok);
    ASSERT_EQ(f.events.size(), 5u);
    EXPECT_EQ(f.events[0].type, Event::Type::kText);
    EXPECT_EQ(f.events[0].data, "text");
    EXPECT_EQ(f.events[1].type, Event::Type::kBinary);
    EXPECT_EQ(f.events[1].data, std::string("\0\1\2", 3));
    EXPECT_EQ(f.events[2].type, Event::Type::kPing);
    EXPECT_EQ(f.events[2].data, "p");
    EXPECT_EQ(f.events[3].type, Event::Type::kPong);
    EXPECT_EQ(f.events[4].type, Event::Type::kClose);
    EXPECT_EQ(f.events[4].code, 1000);
    EXPECT_EQ(f.events[4].data, "bye");
  }
}

TEST(WsFrameCodec, LengthEncodingsAtTheirBoundaries) {
  for (std::size_t n : {0ul, 1ul, 125ul, 126ul, 127ul, 65535ul, 65536ul, 70000ul}) {
    std::string payload(n, 'x');
    std::string out;
    append_frame(out, Opcode::kBinary, payload);
    std::size_t header = n <= 125 ? 2 : n <= 65535 ? 4 : 10;
    EXPECT_EQ(out.size(), header + n) << n;
    EXPECT_EQ(static_cast<unsigned char>(out[1]), n <= 125 ? n : n <= 65535 ? 126 : 127) << n;
    auto f = feed_whole(out, Role::kClient);
    ASSERT_TRUE(f.ok) << n;
    ASSERT_EQ(f.events.size(), 1u);
    EXPECT_EQ(f.events[0].data.size(), n);
    auto m = feed_bytewise(client_frame(Opcode::kBinary, payload));
    ASSERT_TRUE(m.ok) << n;
    EXPECT_EQ(m.events[0].data, payload);
  }
}

TEST(WsFrameCodec, MaskingIsAppliedAndRemoved) {
  std::string payload = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string frame = client_frame(Opcode::kBinary, payload);
  EXPECT_EQ(static_cast<unsigned char>(frame[1]) & 0x80, 0x80);
  EXPECT_EQ(frame.find(payload), std::string::npos);
  EXPECT_EQ(feed_whole(frame).events[0].data, payload);
  // Split at every offset: the mask's phase carries across pieces.
  for (std::size_t cut = 0; cut <= frame.size(); ++cut) {
    FrameParser p(Role::kServer, 1 << 20);
    std::vector<Event> ev;
    ASSERT_TRUE(p.feed(std::string_view(frame).substr(0, cut), ev));
    ASSERT_TRUE(p.feed(std::string_view(frame).substr(cut), ev));
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].data, payload);
  }
  // The writer masks as a client and not as a server.
  FrameWriter server(Role::kServer), client(Role::kClient);
  EXPECT_EQ(static_cast<unsigned char>(server.message("x", false)[1]) & 0x80, 0);
  EXPECT_EQ(static_cast<unsigned char>(client.message("x", false)[1]) & 0x80, 0x80);
}

TEST(WsFrameCodec, FragmentationWithInterleavedControlFrames) {
  std::string bytes = client_frame(Opcode::kText, "Hel", false) + client_frame(Opcode::kPing, "1") +
                      client_frame(Opcode::kContinuation, "lo ", false) +
                      client_frame(Opcode::kPong, "2") +
                      client_frame(Opcode::kContinuation, "world", true);
  for (int bytewise = 0; bytewise < 2; ++bytewise) {
    auto f = bytewise ? feed_bytewise(bytes) : feed_whole(bytes);
    ASSERT_TRUE(f.ok);
    ASSERT_EQ(f.events.size(), 3u);
    EXPECT_EQ(f.events[0].type, Event::Type::kPing);
    EXPECT_EQ(f.events[1].type, Event::Type::kPong);
    EXPECT_EQ(f.events[2].type, Event::Type::kText);
    EXPECT_EQ(f.events[2].data, "Hello world");
  }
  // A multi-byte character split between fragments is fine.
  std::string e_acute = "\xc3\xa9";
  auto f = feed_whole(client_frame(Opcode::kText, e_acute.substr(0, 1), false) +
                      client_frame(Opcode::kContinuation, e_acute.substr(1), true));
  ASSERT_TRUE(f.ok);
  EXPECT_EQ(f.events[0].data, e_acute);
  // Empty fragments too.
  f = feed_whole(client_frame(Opcode::kBinary, "", false) +
                 client_frame(Opcode::kContinuation, "", true));
  ASSERT_TRUE(f.ok);
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_EQ(f.events[0].data, "");
}

TEST(WsFrameCodec, CloseFrames) {
  auto f = feed_whole(client_frame(Opcode::kClose, ""));
  ASSERT_TRUE(f.ok);
  EXPECT_EQ(f.events[0].code, close_code::kNoStatus);
  f = feed_whole(client_frame(Opcode::kClose, std::string("\x0f\xa0", 2) + "app"));
  ASSERT_TRUE(f.ok);
  EXPECT_EQ(f.events[0].code, 4000);
  EXPECT_EQ(f.events[0].data, "app");
  // Nothing after a close frame is parsed.
  f = feed_whole(client_frame(Opcode::kClose, "") + "\xff\xff garbage");
  EXPECT_TRUE(f.ok);
  EXPECT_EQ(f.events.size(), 1u);
  // The writer cuts long reasons on a character boundary.
  FrameWriter w(Role::kServer);
  std::string reason;
  for (int i = 0; i < 100; ++i) reason += "\xc3\xa9";
  std::string frame = w.close(1001, reason);
  auto g = feed_whole(frame, Role::kClient);
  ASSERT_TRUE(g.ok);
  EXPECT_LE(g.events[0].data.size(), 123u);
  EXPECT_EQ(g.events[0].code, 1001);
}

TEST(WsFrameCodec, MalformedInputGetsItsCloseCode) {
  struct Case {
    const char* what;
    std::string bytes;
    Role role;
    std::uint16_t code;
  };
  std::string long_ping(126, 'p');
  std::string frame_with_rsv2 = client_frame(Opcode::kText, "x");
  frame_with_rsv2[0] = static_cast<char>(frame_with_rsv2[0] | 0x20);
  std::string frame_with_rsv3 = client_frame(Opcode::kText, "x");
  frame_with_rsv3[0] = static_cast<char>(frame_with_rsv3[0] | 0x10);
  std::string long_control;
  long_control += '\x89';
  long_control += '\xfe';  // masked, 16-bit length
  long_control += std::string("\x00\x7e", 2);
  long_control += std::string(4, '\0') + long_ping;
  std::string huge_len =
      std::string("\x82\xff", 2) + std::string("\x80\0\0\0\0\0\0\0", 8) + std::string(4, '\0');
  std::vector<Case> cases = {
      {"RSV1 without deflate", client_frame(Opcode::kText, "x", true, true), Role::kServer, 1002},
      {"RSV2", frame_with_rsv2, Role::kServer, 1002},
      {"RSV3", frame_with_rsv3, Role::kServer, 1002},
      {"opcode 3", std::string("\x83\x80\0\0\0\0", 6), Role::kServer, 1002},
      {"opcode 7", std::string("\x87\x80\0\0\0\0", 6), Role::kServer, 1002},
      {"opcode 0xB", std::string("\x8b\x80\0\0\0\0", 6), Role::kServer, 1002},
      {"opcode 0xF", std::string("\x8f\x80\0\0\0\0", 6), Role::kServer, 1002},
      {"unmasked client frame", std::string("\x81\x01x", 3), Role::kServer, 1002},
      {"masked server frame", client_frame(Opcode::kText, "x"), Role::kClient, 1002},
      {"fragmented ping", client_frame(Opcode::kPing, "x", false), Role::kServer, 1002},
      {"control over 125", long_control, Role::kServer, 1002},
      {"continuation first", client_frame(Opcode::kContinuation, "x"), Role::kServer, 1002},
      {"message inside a message",
       client_frame(Opcode::kText, "a", false) + client_frame(Opcode::kText, "b"), Role::kServer,
       1002},
      {"64-bit length top bit", huge_len, Role::kServer, 1002},
      {"close of 1 byte", client_frame(Opcode::kClose, "\x03"), Role::kServer, 1002},
      {"close code 999", client_frame(Opcode::kClose, std::string("\x03\xe7", 2)), Role::kServer,
       1002},
      {"close code 1005", client_frame(Opcode::kClose, std::string("\x03\xed", 2)), Role::kServer,
       1002},
      {"close code 1006", client_frame(Opcode::kClose, std::string("\x03\xee", 2)), Role::kServer,
       1002},
      {"close code 1015", client_frame(Opcode::kClose, std::string("\x03\xf7", 2)), Role::kServer,
       1002},
      {"close code 2000", client_frame(Opcode::kClose, std::string("\x07\xd0", 2)), Role::kServer,
       1002},
      {"close code 5000", client_frame(Opcode::kClose, std::string("\x13\x88", 2)), Role::kServer,
       1002},
      {"close reason not UTF-8", client_frame(Opcode::kClose, std::string("\x03\xe8\xff", 3)),
       Role::kServer, 1007},
      {"text not UTF-8", client_frame(Opcode::kText, "\xff"), Role::kServer, 1007},
      {"overlong UTF-8", client_frame(Opcode::kText, "\xc0\xaf"), Role::kServer, 1007},
      {"surrogate", client_frame(Opcode::kText, "\xed\xa0\x80"), Role::kServer, 1007},
      {"past U+10FFFF", client_frame(Opcode::kText, "\xf4\x90\x80\x80"), Role::kServer, 1007},
      {"truncated sequence", client_frame(Opcode::kText, "\xe2\x82"), Role::kServer, 1007},
      {"bad UTF-8 in a continuation",
       client_frame(Opcode::kText, "ok", false) + client_frame(Opcode::kContinuation, "\xfe"),
       Role::kServer, 1007},
  };
  for (const auto& c : cases) {
    auto f = feed_whole(c.bytes, c.role);
    EXPECT_FALSE(f.ok) << c.what;
    EXPECT_EQ(f.code, c.code) << c.what;
    if (c.role == Role::kServer) {
      auto b = feed_bytewise(c.bytes, c.role);
      EXPECT_FALSE(b.ok) << c.what;
      EXPECT_EQ(b.code, c.code) << c.what;
    }
  }
}

TEST(WsFrameCodec, InvalidUtf8FailsBeforeTheMessageEnds) {
  FrameParser p(Role::kServer, 1 << 20);
  std::vector<Event> ev;
  std::string frame = client_frame(Opcode::kText, std::string("ok\xff") + std::string(1000, 'a'));
  // Only the header and the first three payload bytes: the bad byte is already known.
  EXPECT_FALSE(p.feed(std::string_view(frame).substr(0, 4 + 4 + 3), ev));
  EXPECT_EQ(p.error_code(), 1007);
}

TEST(WsFrameCodec, MessageSizeLimit) {
  auto f = feed_whole(client_frame(Opcode::kBinary, std::string(101, 'x')), Role::kServer, 100);
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.code, 1009);
  f = feed_whole(client_frame(Opcode::kBinary, std::string(100, 'x')), Role::kServer, 100);
  EXPECT_TRUE(f.ok);
  // Over the limit in fragments: refused at the header of the fragment that crosses it.
  f = feed_whole(client_frame(Opcode::kBinary, std::string(60, 'x'), false) +
                     client_frame(Opcode::kContinuation, std::string(60, 'x')),
                 Role::kServer, 100);
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.code, 1009);
  // A 64-bit length far over the limit is refused without waiting for the payload.
  FrameParser p(Role::kServer, 100);
  std::vector<Event> ev;
  std::string header("\x82\xff\0\0\0\x01\0\0\0\0\0\0\0\0", 14);
  EXPECT_FALSE(p.feed(header, ev));
  EXPECT_EQ(p.error_code(), 1009);
}

TEST(WsFrameCodec, SendableCloseCodes) {
  EXPECT_TRUE(is_sendable_close_code(1000));
  EXPECT_TRUE(is_sendable_close_code(1011));
  EXPECT_TRUE(is_sendable_close_code(3000));
  EXPECT_TRUE(is_sendable_close_code(4999));
  EXPECT_FALSE(is_sendable_close_code(1004));
  EXPECT_FALSE(is_sendable_close_code(1005));
  EXPECT_FALSE(is_sendable_close_code(1006));
  EXPECT_FALSE(is_sendable_close_code(1012));
  EXPECT_FALSE(is_sendable_close_code(2999));
  EXPECT_FALSE(is_sendable_close_code(5000));
}

TEST(WsFrameCodec, ControlPayloadOver125IsRefusedByTheWriter) {
  FrameWriter w(Role::kServer);
  EXPECT_THROW(w.ping(std::string(126, 'x')), std::invalid_argument);
  EXPECT_NO_THROW(w.ping(std::string(125, 'x')));
}

TEST(WsFrameCodec, WholeMessagesGoIntoTheArenaAsViews) {
  // Two whole messages, a fragmented one and a ping in one read: the whole ones are views
  // into the arena (no string each), the rest as without an arena.
  std::string bytes =
      client_frame(Opcode::kText, "first") + client_frame(Opcode::kBinary, std::string(300, 'b')) +
      client_frame(Opcode::kText, "frag", false) + client_frame(Opcode::kPing, "p") +
      client_frame(Opcode::kContinuation, "ment") + client_frame(Opcode::kText, "split");
  FrameParser p(Role::kServer, 1 << 20);
  std::vector<Event> events;
  std::string arena;
  // The last frame arrives in two reads: it is assembled as before, not viewed.
  ASSERT_TRUE(p.feed(std::string_view(bytes).substr(0, bytes.size() - 2), events, &arena));
  ASSERT_TRUE(p.feed(std::string_view(bytes).substr(bytes.size() - 2), events, &arena));
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].type, Event::Type::kText);
  EXPECT_EQ(events[0].view, "first");
  EXPECT_TRUE(events[0].data.empty());
  EXPECT_EQ(events[1].type, Event::Type::kBinary);
  EXPECT_EQ(events[1].payload(), std::string(300, 'b'));
  EXPECT_EQ(events[2].type, Event::Type::kPing);
  EXPECT_EQ(events[3].type, Event::Type::kText);
  EXPECT_EQ(events[3].data, "fragment");
  EXPECT_TRUE(events[3].view.empty());
  EXPECT_EQ(events[4].payload(), "split");
  EXPECT_TRUE(events[4].view.empty());

  // Invalid UTF-8 in a whole text message still fails with 1007.
  FrameParser q(Role::kServer, 1 << 20);
  events.clear();
  arena.clear();
  EXPECT_FALSE(q.feed(client_frame(Opcode::kText, "\xff"), events, &arena));
  EXPECT_EQ(q.error_code(), close_code::kInvalidPayload);
  EXPECT_TRUE(events.empty());
}
