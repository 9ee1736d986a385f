#include "tronada/base/base64.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tronada {
namespace {

TEST(Base64Test, EncodesLikePython) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\x00\xff\xfe", 3)), "AP/+");
}

TEST(Base64Test, RoundTripsEveryByteAndLength) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); ++n) {
    std::string s = all.substr(all.size() - n);
    EXPECT_EQ(base64_decode(base64_encode(s)), s) << n;
  }
}

TEST(Base64Test, DecodeIsStrict) {
  for (const std::string& bad : std::vector<std::string>{
           "Zg=", "Zg", "Z", "Zm9v\n", " Zm9v", "Zm9v====", "Zg==Zg==", "=Zg=", "Z===", "Zm9*",
           "Zh==", "Zm9=", std::string("Zm\0v", 4), "Zm-_"}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
  EXPECT_EQ(base64_decode(""), "");
  EXPECT_EQ(base64_decode("Zm8="), "fo");
}

}  // namespace
}  // namespace tronada
