// WebSocket frames as a peer sends them, through FrameParser with permessage-deflate
// and UTF-8 validation. The first input byte picks the setup (bit 0: we are the client,
// receiving unmasked frames; bit 1: permessage-deflate negotiated; bit 2: the peer
// resets its compression context per message), the rest is the frames. Checks: the same
// events and verdict fed whole and in pieces, text messages and close reasons are valid
// UTF-8, and every message re-encoded by a FrameWriter parses back to itself.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz_support.h"
#include "tronada/websocket/frame_codec.h"

using namespace tronada::ws;

namespace {

constexpr std::size_t kMaxMessage = 64 * 1024;

struct Setup {
  Role role;
  bool deflate;
  DeflateParams params;
};

std::unique_ptr<PerMessageDeflate> make_deflate(const Setup& s, bool is_server) {
  if (!s.deflate) return nullptr;
  return std::make_unique<PerMessageDeflate>(s.params, is_server, DeflateOptions{});
}

struct Outcome {
  std::vector<Event> events;
  bool ok = true;
  std::uint16_t code = 0;
};

Outcome run(const Setup& s, const std::vector<std::string_view>& pieces) {
  auto deflate = make_deflate(s, s.role == Role::kServer);
  FrameParser parser(s.role, kMaxMessage, deflate.get());
  Outcome o;
  for (std::string_view p : pieces) {
    if (!parser.feed(p, o.events)) break;
  }
  o.ok = !parser.failed();
  o.code = parser.error_code();
  if (!o.ok) {
    FUZZ_CHECK(o.code == close_code::kProtocolError || o.code == close_code::kInvalidPayload ||
               o.code == close_code::kMessageTooBig);
  }
  return o;
}

bool same(const std::vector<Event>& a, const std::vector<Event>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].type != b[i].type || a[i].data != b[i].data || a[i].code != b[i].code) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Setup s;
  s.role = (data[0] & 1) ? Role::kClient : Role::kServer;
  s.deflate = (data[0] & 2) != 0;
  s.params.client_no_context_takeover = s.params.server_no_context_takeover = (data[0] & 4) != 0;
  std::string_view frames = fuzz::as_view(data + 1, size - 1);

  Outcome whole = run(s, {frames});
  Outcome pieces = run(s, fuzz::split(frames));
  FUZZ_CHECK(whole.ok == pieces.ok && whole.code == pieces.code);
  FUZZ_CHECK(same(whole.events, pieces.events));

  for (const Event& e : whole.events) {
    if (e.type == Event::Type::kText || e.type == Event::Type::kClose) {
      FUZZ_CHECK(Utf8Validator::valid(e.data));
    }
    if (e.type == Event::Type::kText || e.type == Event::Type::kBinary) {
      FUZZ_CHECK(e.data.size() <= kMaxMessage);
    } else {
      FUZZ_CHECK(e.data.size() <= 125);
    }
  }

  // What the peer sent, sent again by our writer in the peer's role, reads back the same.
  Role peer = s.role == Role::kServer ? Role::kClient : Role::kServer;
  auto writer_deflate = make_deflate(s, peer == Role::kServer);
  auto reader_deflate = make_deflate(s, s.role == Role::kServer);
  FrameWriter writer(peer, writer_deflate.get());
  FrameParser reader(s.role, kMaxMessage, reader_deflate.get());
  std::string wire;
  std::vector<Event> sent;
  for (const Event& e : whole.events) {
    switch (e.type) {
      case Event::Type::kText:
      case Event::Type::kBinary:
        wire += writer.message(e.data, e.type == Event::Type::kBinary);
        break;
      case Event::Type::kPing:
        wire += writer.ping(e.data);
        break;
      case Event::Type::kPong:
        wire += writer.pong(e.data);
        break;
      case Event::Type::kClose:
        if (e.code != close_code::kNoStatus && !is_sendable_close_code(e.code)) continue;
        wire += writer.close(e.code == close_code::kNoStatus ? 0 : e.code, e.data);
        break;
    }
    sent.push_back(e);
  }
  std::vector<Event> back;
  FUZZ_CHECK(reader.feed(wire, back));
  FUZZ_CHECK(same(back, sent));
  return 0;
}
