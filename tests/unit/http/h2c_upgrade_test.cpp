// h2c_upgrade_settings: which HTTP/1.1 requests switch to HTTP/2 by `Upgrade: h2c`
// (RFC 7540 3.2), and the HTTP2-Settings payload they carry, without sockets.
#include <gtest/gtest.h>

#include <string>

#include "tronada/base/base64.h"
#include "tronada/http/h2c_upgrade.h"

using namespace tronada;

namespace {

// SETTINGS_MAX_CONCURRENT_STREAMS = 100, SETTINGS_INITIAL_WINDOW_SIZE = 65535, as curl sends.
const std::string kPayload("\x00\x03\x00\x00\x00\x64\x00\x04\x00\x00\xff\xff", 12);

std::string base64url(const std::string& bytes) {
  std::string s = base64_encode(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return s;
}

HTTPServerRequest upgrade_request(const std::string& settings) {
  HTTPServerRequest r;
  r.method = "GET";
  r.uri = "/";
  r.version = "HTTP/1.1";
  r.headers.add("Host", "localhost");
  r.headers.add("Connection", "Upgrade, HTTP2-Settings");
  r.headers.add("Upgrade", "h2c");
  r.headers.add("HTTP2-Settings", settings);
  return r;
}

TEST(H2CUpgradeTest, ValidRequestYieldsTheDecodedSettings) {
  auto settings = h2c_upgrade_settings(upgrade_request(base64url(kPayload)), false);
  ASSERT_TRUE(settings);
  EXPECT_EQ(*settings, kPayload);
}

TEST(H2CUpgradeTest, EmptySettingsAreValid) {
  auto settings = h2c_upgrade_settings(upgrade_request(""), false);
  ASSERT_TRUE(settings);
  EXPECT_EQ(*settings, "");
}

TEST(H2CUpgradeTest, TokensAreCaseInsensitiveAndMayBeListed) {
  HTTPServerRequest r = upgrade_request(base64url(kPayload));
  r.headers.set("Connection", "keep-alive ,upgrade,  http2-settings");
  r.headers.set("Upgrade", "foo/2, H2C");
  EXPECT_TRUE(h2c_upgrade_settings(r, false));
}

TEST(H2CUpgradeTest, PaddingIsTolerated) {
  // A whole number of 6-byte entries never needs padding; a client that adds some anyway
  // is still understood.
  std::string entry("\x00\x03\x00\x00\x00\x64", 6);
  EXPECT_TRUE(h2c_upgrade_settings(upgrade_request(base64url(entry) + "=="), false));
}

TEST(H2CUpgradeTest, RequestWithBodyIsServedOverHTTP1) {
  EXPECT_FALSE(h2c_upgrade_settings(upgrade_request(base64url(kPayload)), true));
}

TEST(H2CUpgradeTest, NeedsHTTP11AndNotConnect) {
  HTTPServerRequest r = upgrade_request(base64url(kPayload));
  r.version = "HTTP/1.0";
  EXPECT_FALSE(h2c_upgrade_settings(r, false));
  r = upgrade_request(base64url(kPayload));
  r.method = "CONNECT";
  EXPECT_FALSE(h2c_upgrade_settings(r, false));
}

TEST(H2CUpgradeTest, NeedsEveryHeader) {
  HTTPServerRequest r = upgrade_request(base64url(kPayload));
  r.headers.set("Upgrade", "websocket");
  EXPECT_FALSE(h2c_upgrade_settings(r, false));

  r = upgrade_request(base64url(kPayload));
  r.headers.set("Connection", "Upgrade");  // HTTP2-Settings not named as hop-by-hop
  EXPECT_FALSE(h2c_upgrade_settings(r, false));

  r = upgrade_request(base64url(kPayload));
  r.headers.remove("HTTP2-Settings");
  EXPECT_FALSE(h2c_upgrade_settings(r, false));

  r = upgrade_request(base64url(kPayload));
  r.headers.add("HTTP2-Settings", base64url(kPayload));  // twice
  EXPECT_FALSE(h2c_upgrade_settings(r, false));
}

TEST(H2CUpgradeTest, MalformedSettingsAreRefused) {
  // Not base64url at all, the standard alphabet's '+' and '/', an impossible length.
  for (const char* bad : {"!!!!", "AAMAAABk+", "AAMAAABk/", "AAMAA", "*"}) {
    EXPECT_FALSE(h2c_upgrade_settings(upgrade_request(bad), false)) << bad;
  }
  // Decodes, but not to whole 6-byte entries.
  EXPECT_FALSE(
      h2c_upgrade_settings(upgrade_request(base64url(std::string("\x00\x03\x00", 3))), false));
  // Whole entries with values out of range: ENABLE_PUSH 2, INITIAL_WINDOW_SIZE 2^31,
  // MAX_FRAME_SIZE 100.
  for (const std::string& entry :
       {std::string("\x00\x02\x00\x00\x00\x02", 6), std::string("\x00\x04\x80\x00\x00\x00", 6),
        std::string("\x00\x05\x00\x00\x00\x64", 6)}) {
    EXPECT_FALSE(h2c_upgrade_settings(upgrade_request(base64url(entry)), false));
  }
  // Unknown settings are ignored (RFC 9113 6.5.2), whatever their value.
  EXPECT_TRUE(h2c_upgrade_settings(
      upgrade_request(base64url(std::string("\x7f\x7f\xff\xff\xff\xff", 6))), false));
}

}  // namespace
