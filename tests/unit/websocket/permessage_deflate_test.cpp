// permessage-deflate: negotiation tables and compressed round trips through the codec.
#include "tronada/websocket/permessage_deflate.h"

#include <gtest/gtest.h>

#include <random>

#include "tronada/websocket/frame_codec.h"
#include "tronada/websocket/handshake.h"
#include "tronada/websocket/utf8_validator.h"

using namespace tronada::ws;

namespace {

std::optional<DeflateParams> server_negotiates(std::string_view offer, std::string& response,
                                               DeflateOptions mine = {}) {
  auto offers = parse_extensions(offer);
  EXPECT_TRUE(offers.has_value()) << offer;
  if (!offers) return std::nullopt;
  return negotiate_deflate(*offers, mine, response);
}

// A connected pair: what one side writes, the other parses.
struct Pair {
  Pair(const DeflateParams& p, DeflateOptions opts = {})
      : server_deflate(p, true, opts),
        client_deflate(p, false, opts),
        server_writer(Role::kServer, &server_deflate),
        client_writer(Role::kClient, &client_deflate),
        server_parser(Role::kServer, 1 << 24, &server_deflate),
        client_parser(Role::kClient, 1 << 24, &client_deflate) {}
  PerMessageDeflate server_deflate, client_deflate;
  FrameWriter server_writer, client_writer;
  FrameParser server_parser, client_parser;
};

}  // namespace

TEST(WsDeflate, ParsesExtensionHeaders) {
  auto e = parse_extensions(
      "permessage-deflate; client_max_window_bits, permessage-deflate; "
      "server_max_window_bits=\"10\"");
  ASSERT_TRUE(e);
  ASSERT_EQ(e->size(), 2u);
  EXPECT_EQ((*e)[0].params[0].first, "client_max_window_bits");
  EXPECT_FALSE((*e)[0].params[0].second);
  EXPECT_EQ((*e)[1].params[0].second.value(), "10");
  EXPECT_FALSE(parse_extensions("permessage-deflate; =3"));
  EXPECT_FALSE(parse_extensions("permessage-deflate; a=\"unterminated"));
  EXPECT_FALSE(parse_extensions("a b"));
  EXPECT_TRUE(parse_extensions("")->empty());
}

TEST(WsDeflate, ServerNegotiation) {
  std::string r;
  auto p = server_negotiates("permessage-deflate", r);
  ASSERT_TRUE(p);
  EXPECT_EQ(r, "permessage-deflate");
  p = server_negotiates("permessage-deflate; client_max_window_bits", r);
  ASSERT_TRUE(p);
  EXPECT_EQ(r, "permessage-deflate");
  p = server_negotiates("permessage-deflate; server_max_window_bits=10; client_no_context_takeover",
                        r);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->server_max_window_bits, 10);
  EXPECT_TRUE(p->client_no_context_takeover);
  EXPECT_EQ(r, "permessage-deflate; client_no_context_takeover; server_max_window_bits=10");
  p = server_negotiates("permessage-deflate; server_no_context_takeover", r);
  EXPECT_TRUE(p->server_no_context_takeover);
  // Our own limits are announced.
  DeflateOptions mine;
  mine.server_max_window_bits = 12;
  mine.client_max_window_bits = 11;
  mine.server_no_context_takeover = true;
  p = server_negotiates("permessage-deflate; client_max_window_bits", r, mine);
  EXPECT_EQ(r,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; "
            "client_max_window_bits=11");
  // client_max_window_bits is never sent to a client that did not offer it.
  p = server_negotiates("permessage-deflate", r, mine);
  EXPECT_EQ(r.find("client_max_window_bits"), std::string::npos);
  // Bad offers are declined; a later good one is taken.
  for (const char* bad :
       {"permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08", "permessage-deflate; unknown",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover=1",
        "permessage-deflate; server_max_window_bits=8", "x-webkit-deflate-frame"}) {
    EXPECT_FALSE(server_negotiates(bad, r)) << bad;
  }
  p = server_negotiates("permessage-deflate; bogus, permessage-deflate; server_max_window_bits=9",
                        r);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->server_max_window_bits, 9);
}

TEST(WsDeflate, ServerGrantsAClientItsOwnEightBitWindow) {
  // RFC 7692 lets a client cap its own window at 8 bits; the server inflates with 9,
  // which reads such messages, so it agrees rather than dropping compression.
  std::string r;
  auto p = server_negotiates("permessage-deflate; client_max_window_bits=8", r);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->client_max_window_bits, 8);
  EXPECT_NE(r.find("client_max_window_bits=8"), std::string::npos) << r;
}

TEST(WsDeflate, ClientChecksTheResponse) {
  DeflateOptions mine;
  EXPECT_EQ(deflate_offer(mine), "permessage-deflate; client_max_window_bits");
  auto one = [](std::string_view s) { return (*parse_extensions(s))[0]; };
  auto p = accept_deflate_response(one("permessage-deflate; client_max_window_bits=10"), mine);
  EXPECT_EQ(p.client_max_window_bits, 10);
  EXPECT_THROW(accept_deflate_response(one("permessage-deflate; foo"), mine), std::runtime_error);
  EXPECT_THROW(accept_deflate_response(one("other"), mine), std::runtime_error);
  EXPECT_THROW(accept_deflate_response(one("permessage-deflate; client_max_window_bits=8"), mine),
               std::runtime_error);
  mine.server_max_window_bits = 10;
  EXPECT_THROW(accept_deflate_response(one("permessage-deflate"), mine), std::runtime_error);
  EXPECT_THROW(accept_deflate_response(one("permessage-deflate; server_max_window_bits=12"), mine),
               std::runtime_error);
  EXPECT_NO_THROW(
      accept_deflate_response(one("permessage-deflate; server_max_window_bits=9"), mine));
}

TEST(WsDeflate, RoundTripsWithEveryContextMode) {
  std::mt19937 rng(42);
  for (int mode = 0; mode < 4; ++mode) {
    DeflateParams params;
    params.server_no_context_takeover = mode & 1;
    params.client_no_context_takeover = mode & 2;
    params.server_max_window_bits = 9 + mode;
    Pair pair(params);
    for (int i = 0; i < 20; ++i) {
      std::string msg;
      std::size_t n = i == 0 ? 0 : (i * 7919u) % 70000u;
      for (std::size_t k = 0; k < n; ++k) msg += static_cast<char>('a' + rng() % (i % 3 ? 26 : 3));
      std::vector<Event> ev;
      std::string wire = pair.client_writer.message(msg, i % 2);
      EXPECT_EQ(static_cast<unsigned char>(wire[0]) & 0x40, 0x40);  // RSV1: compressed
      ASSERT_TRUE(pair.server_parser.feed(wire, ev)) << pair.server_parser.error_reason();
      ASSERT_EQ(ev.size(), 1u);
      EXPECT_EQ(ev[0].data, msg);
      ev.clear();
      wire = pair.server_writer.message(msg, false);
      // Fed one byte at a time.
      for (char c : wire) ASSERT_TRUE(pair.client_parser.feed(std::string_view(&c, 1), ev));
      ASSERT_EQ(ev.size(), 1u);
      EXPECT_EQ(ev[0].data, msg);
    }
  }
}

TEST(WsDeflate, CompressesRepetitiveMessages) {
  DeflateParams params;
  PerMessageDeflate d(params, true, {});
  std::string msg(100000, 'z');
  EXPECT_LT(d.compress(msg).size(), 1000u);
}

TEST(WsDeflate, FragmentedCompressedMessage) {
  DeflateParams params;
  PerMessageDeflate client(params, false, {}), server(params, true, {});
  std::string compressed = client.compress("hello hello hello hello");
  const unsigned char mask[4] = {1, 2, 3, 4};
  std::string wire;
  std::size_t half = compressed.size() / 2;
  append_frame(wire, Opcode::kText, std::string_view(compressed).substr(0, half), false, true,
               mask);
  append_frame(wire, Opcode::kPing, "", true, false, mask);
  append_frame(wire, Opcode::kContinuation, std::string_view(compressed).substr(half), true, false,
               mask);
  FrameParser p(Role::kServer, 1 << 20, &server);
  std::vector<Event> ev;
  ASSERT_TRUE(p.feed(wire, ev));
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].data, "hello hello hello hello");
}

TEST(WsDeflate, DecompressionBombHitsTheSizeLimit) {
  DeflateParams params;
  PerMessageDeflate client(params, false, {}), server(params, true, {});
  std::string compressed = client.compress(std::string(1 << 20, 'a'));  // ~1 KiB on the wire
  const unsigned char mask[4] = {1, 2, 3, 4};
  std::string wire;
  append_frame(wire, Opcode::kBinary, compressed, true, true, mask);
  FrameParser p(Role::kServer, 64 * 1024, &server);
  std::vector<Event> ev;
  EXPECT_FALSE(p.feed(wire, ev));
  EXPECT_EQ(p.error_code(), 1009);
}

TEST(WsDeflate, CorruptDataAndRsv1Rules) {
  DeflateParams params;
  PerMessageDeflate server(params, true, {});
  const unsigned char mask[4] = {1, 2, 3, 4};
  std::string wire;
  append_frame(wire, Opcode::kBinary, "\xff\xff\xff\xff\xff", true, true, mask);
  FrameParser p(Role::kServer, 1 << 20, &server);
  std::vector<Event> ev;
  EXPECT_FALSE(p.feed(wire, ev));
  EXPECT_EQ(p.error_code(), 1007);
  // RSV1 on a control frame or a continuation is a protocol error even with deflate on.
  PerMessageDeflate server2(params, true, {});
  FrameParser q(Role::kServer, 1 << 20, &server2);
  wire.clear();
  append_frame(wire, Opcode::kPing, "", true, true, mask);
  EXPECT_FALSE(q.feed(wire, ev));
  EXPECT_EQ(q.error_code(), 1002);
  PerMessageDeflate server3(params, true, {});
  FrameParser r(Role::kServer, 1 << 20, &server3);
  wire.clear();
  append_frame(wire, Opcode::kBinary, "", false, false, mask);
  append_frame(wire, Opcode::kContinuation, "", true, true, mask);
  EXPECT_FALSE(r.feed(wire, ev));
  EXPECT_EQ(r.error_code(), 1002);
}

TEST(WsDeflate, SmallMessagesMayGoUncompressed) {
  DeflateParams params;
  DeflateOptions opts;
  opts.min_compress_size = 10;
  Pair pair(params, opts);
  std::string wire = pair.server_writer.message("tiny", false);
  EXPECT_EQ(static_cast<unsigned char>(wire[0]) & 0x40, 0);
  std::vector<Event> ev;
  ASSERT_TRUE(pair.client_parser.feed(wire, ev));
  EXPECT_EQ(ev[0].data, "tiny");
}

TEST(WsUtf8, ValidatesIncrementally) {
  EXPECT_TRUE(Utf8Validator::valid("plain ascii"));
  EXPECT_TRUE(Utf8Validator::valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_TRUE(Utf8Validator::valid("\xed\x9f\xbf\xf4\x8f\xbf\xbf"));  // U+D7FF, U+10FFFF
  EXPECT_FALSE(Utf8Validator::valid("\x80"));
  EXPECT_FALSE(Utf8Validator::valid("\xc1\xbf"));
  EXPECT_FALSE(Utf8Validator::valid("\xe0\x9f\xbf"));
  EXPECT_FALSE(Utf8Validator::valid("\xf0\x8f\xbf\xbf"));
  EXPECT_FALSE(Utf8Validator::valid("\xf5\x80\x80\x80"));
  EXPECT_FALSE(Utf8Validator::valid("\xe2\x82"));
  Utf8Validator v;
  std::string s = "abcdefghij\xf0\x9f\x98\x80klmnopqrstuvwxyz";
  for (char c : s) ASSERT_TRUE(v.feed(std::string_view(&c, 1)));
  EXPECT_TRUE(v.complete());
  v.reset();
  EXPECT_TRUE(v.feed("\xf0\x9f"));
  EXPECT_FALSE(v.complete());
  EXPECT_FALSE(v.feed("x"));
}

TEST(WsHandshake, AcceptKeyAndTokens) {
  // RFC 6455 section 1.3's example.
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_TRUE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZQ=="));
  EXPECT_FALSE(is_valid_client_key("not base64!"));
  EXPECT_TRUE(is_valid_client_key(make_client_key()));
  EXPECT_NE(make_client_key(), make_client_key());
  tronada::HTTPHeaders h;
  h.add("Connection", "keep-alive, Upgrade");
  h.add("Connection", "x");
  EXPECT_TRUE(header_has_token(h, "connection", "upgrade"));
  EXPECT_TRUE(header_has_token(h, "Connection", "X"));
  EXPECT_FALSE(header_has_token(h, "Connection", "close"));
}
