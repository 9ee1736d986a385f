#include "tronada/web/signed_value.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace tronada {
namespace {

constexpr std::string_view kSecret = "It's a secret to everybody";
constexpr long long kNow = 1300000000;
constexpr long long kDay = 86400;

// Produced by Tornado 6.2: create_signed_value(SECRET, "key", "value", version=2,
// clock=lambda: 1300000000) -- the same vector as Tornado's own web_test.py.
constexpr std::string_view kTornadoKeyValue =
    "2|1:0|10:1300000000|3:key|8:dmFsdWU=|"
    "3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e152";

TEST(SignedValueTest, MatchesTornadoKnownValue) {
  EXPECT_EQ(create_signed_value(kSecret, "key", "value", kNow), kTornadoKeyValue);
}

TEST(SignedValueTest, MatchesTornadoForEmptyAndBinaryValues) {
  // Tornado 6.2 output for the same inputs.
  EXPECT_EQ(create_signed_value(kSecret, "key", "", kNow),
            "2|1:0|10:1300000000|3:key|0:|"
            "6e95660506257587586edb4dbac28ab1c44d8163a37af507ec5c99232c6d4a87");
  EXPECT_EQ(create_signed_value(kSecret, "user", std::string("\x00\xff binary|:", 11), 1700000000),
            "2|1:0|10:1700000000|4:user|16:AP8gYmluYXJ5fDo=|"
            "4529022295601f9c2f71aa2b6db7784313c8f73122ef5ceab8e89b1b036234c1");
}

TEST(SignedValueTest, MatchesTornadoWithKeyVersion) {
  EXPECT_EQ(create_signed_value("b", "key", "value", kNow, 1),
            "2|1:1|10:1300000000|3:key|8:dmFsdWU=|"
            "32d064eb3921ac72891a7fe625dbedc9ad10a7020c2eb7bb0bece0fcac1aff83");
}

TEST(SignedValueTest, DecodesTornadoValue) {
  EXPECT_EQ(decode_signed_value(kSecret, "key", kTornadoKeyValue, 31, kNow), "value");
}

TEST(SignedValueTest, RoundTripsBinaryValues) {
  std::string value;
  for (int i = 0; i < 256; ++i) value += static_cast<char>(i);
  std::string signed_value = create_signed_value(kSecret, "blob", value, kNow);
  EXPECT_EQ(decode_signed_value(kSecret, "blob", signed_value, 31, kNow), value);
}

TEST(SignedValueTest, RejectsAnotherSecret) {
  EXPECT_FALSE(decode_signed_value("another secret", "key", kTornadoKeyValue, 31, kNow));
  EXPECT_FALSE(decode_signed_value("", "key", kTornadoKeyValue, 31, kNow));
}

TEST(SignedValueTest, RejectsValueSignedForAnotherName) {
  std::string for_session = create_signed_value(kSecret, "session", "admin", kNow);
  EXPECT_FALSE(decode_signed_value(kSecret, "user", for_session, 31, kNow));
  EXPECT_FALSE(decode_signed_value(kSecret, "Session", for_session, 31, kNow));
  EXPECT_FALSE(decode_signed_value(kSecret, "sessio", for_session, 31, kNow));
}

TEST(SignedValueTest, RejectsEverySingleByteChange) {
  std::string original(kTornadoKeyValue);
  for (std::size_t i = 0; i < original.size(); ++i) {
    for (char replacement : {'0', '1', 'a', 'f', '|', ':', 'A', '='}) {
      if (original[i] == replacement) continue;
      std::string tampered = original;
      tampered[i] = replacement;
      EXPECT_FALSE(decode_signed_value(kSecret, "key", tampered, 31, kNow))
          << "position " << i << " -> " << replacement;
    }
  }
}

TEST(SignedValueTest, RejectsReSignedFieldsWithOldSignature) {
  // Swap in a new value, name or timestamp with consistent length prefixes, keeping the
  // old signature.
  std::string sig = std::string(kTornadoKeyValue.substr(kTornadoKeyValue.rfind('|') + 1));
  EXPECT_FALSE(
      decode_signed_value(kSecret, "key", "2|1:0|10:1300000000|3:key|8:YWRtaW4=|" + sig, 31, kNow));
  EXPECT_FALSE(
      decode_signed_value(kSecret, "kez", "2|1:0|10:1300000000|3:kez|8:dmFsdWU=|" + sig, 31, kNow));
  EXPECT_FALSE(
      decode_signed_value(kSecret, "key", "2|1:0|10:1399999999|3:key|8:dmFsdWU=|" + sig, 31, kNow));
  EXPECT_FALSE(
      decode_signed_value(kSecret, "key", "2|1:1|10:1300000000|3:key|8:dmFsdWU=|" + sig, 31, kNow));
}

TEST(SignedValueTest, ExpiresAfterMaxAgeDays) {
  std::string v = create_signed_value(kSecret, "key", "value", kNow);
  EXPECT_EQ(decode_signed_value(kSecret, "key", v, 31, kNow + 31 * kDay), "value");
  EXPECT_FALSE(decode_signed_value(kSecret, "key", v, 31, kNow + 31 * kDay + 1));
  EXPECT_EQ(decode_signed_value(kSecret, "key", v, 0.5, kNow + kDay / 2), "value");
  EXPECT_FALSE(decode_signed_value(kSecret, "key", v, 0.5, kNow + kDay / 2 + 1));
  EXPECT_EQ(decode_signed_value(kSecret, "key", v, 0, kNow), "value");
  EXPECT_FALSE(decode_signed_value(kSecret, "key", v, 0, kNow + 1));
  EXPECT_FALSE(decode_signed_value(kSecret, "key", v, -1, kNow));
}

TEST(SignedValueTest, NaNMaxAgeRejects) {
  std::string v = create_signed_value(kSecret, "key", "value", kNow);
  EXPECT_FALSE(decode_signed_value(kSecret, "key", v, std::nan(""), kNow));
  EXPECT_EQ(decode_signed_value(kSecret, "key", v, std::numeric_limits<double>::infinity(),
                                kNow + 100000 * kDay),
            "value");
}

TEST(SignedValueTest, RejectsTimestampsMoreThan31DaysAhead) {
  std::string v = create_signed_value(kSecret, "key", "value", kNow);
  EXPECT_EQ(decode_signed_value(kSecret, "key", v, 31, kNow - 31 * kDay), "value");
  EXPECT_FALSE(decode_signed_value(kSecret, "key", v, 31, kNow - 31 * kDay - 1));
  std::string far = create_signed_value(kSecret, "key", "value", 999999999999999999LL);
  EXPECT_FALSE(decode_signed_value(kSecret, "key", far, 1e9, kNow));
}

TEST(SignedValueTest, HandlesNegativeTimestamps) {
  std::string v = create_signed_value(kSecret, "key", "value", -5);
  EXPECT_EQ(decode_signed_value(kSecret, "key", v, 31, 0), "value");
  EXPECT_FALSE(decode_signed_value(kSecret, "key", v, 31, kNow));
}

TEST(SignedValueTest, NegativeKeyVersionThrows) {
  EXPECT_THROW(create_signed_value(kSecret, "key", "value", kNow, -1), std::invalid_argument);
}

TEST(SignedValueTest, RotatedSecretsPickTheKeyByVersion) {
  std::map<int, std::string> secrets{{0, "asdfbasdf"}, {1, "12312312"}, {2, "2342342"}};
  for (const auto& [version, secret] : secrets) {
    std::string v = create_signed_value(secret, "key", "value", kNow, version);
    EXPECT_EQ(decode_signed_value(secrets, "key", v, 31, kNow), "value") << version;
    EXPECT_FALSE(
        decode_signed_value(std::map<int, std::string>{{version, "wrong"}}, "key", v, 31, kNow));
  }
  std::string unknown = create_signed_value("x", "key", "value", kNow, 7);
  EXPECT_FALSE(decode_signed_value(secrets, "key", unknown, 31, kNow));
  // A key version does not let a value signed with one key pass as another's.
  std::string v0 = create_signed_value(secrets[0], "key", "value", kNow, 1);
  EXPECT_FALSE(decode_signed_value(secrets, "key", v0, 31, kNow));
}

TEST(SignedValueTest, SingleSecretIgnoresKeyVersionLikeTornado) {
  std::string v = create_signed_value(kSecret, "key", "value", kNow, 5);
  EXPECT_EQ(decode_signed_value(kSecret, "key", v, 31, kNow), "value");
}

TEST(SignedValueTest, RejectsMalformedInput) {
  const std::string sig(64, 'a');
  for (const std::string& bad : std::vector<std::string>{
           std::string(""),
           std::string("2"),
           std::string("2|"),
           std::string("1|1:0|10:1300000000|3:key|8:dmFsdWU=|") + sig,
           std::string("3|1:0|10:1300000000|3:key|8:dmFsdWU=|") + sig,
           std::string("dmFsdWU=|1300000000|31c934969f53e48164c50768b40cbd7e2daaaa4f"),  // v1
           std::string("2|1:0|10:1300000000|3:key|8:dmFsdWU=|"),
           std::string("2|1:0|10:1300000000|3:key|8:dmFsdWU="),
           std::string("2|1:0|10:1300000000|3:key|"),
           std::string("2|1:0|10:1300000000|3:key"),
           std::string("2|1:0|10:1300000000|"),
           std::string("2|1:0|"),
           std::string("2|1:0"),
           std::string("2|1:"),
           std::string("2|:0|10:1300000000|3:key|8:dmFsdWU=|") + sig,
           std::string("2|x:0|10:1300000000|3:key|8:dmFsdWU=|") + sig,
           std::string("2|-1:0|10:1300000000|3:key|8:dmFsdWU=|") + sig,
           std::string("2|+1:0|10:1300000000|3:key|8:dmFsdWU=|") + sig,
           std::string("2| 1:0|10:1300000000|3:key|8:dmFsdWU=|") + sig,
           std::string("2|1:0|99:1300000000|3:key|8:dmFsdWU=|") + sig,
           std::string("2|1:0|9:1300000000|3:key|8:dmFsdWU=|") + sig,
           std::string("2|1:0|11:1300000000|3:key|8:dmFsdWU=|") + sig,
           std::string("2|1:0|10:1300000000|3:key|999999999999:dmFsdWU=|") + sig,
           std::string("2|1:0|10:1300000000|3:key|18446744073709551617:dmFsdWU=|") + sig,
           std::string("2|1:0|10:1300000000|3:key|1000000000:dmFsdWU=|") + sig,
           std::string("2|1:0|10:13000000x0|3:key|8:dmFsdWU=|") + sig,
           std::string("2|1:0|0:|3:key|8:dmFsdWU=|") + sig,
           std::string("2|1:x|10:1300000000|3:key|8:dmFsdWU=|") + sig,
           std::string("2|1:0|10:1300000000|3:key|8:dmFsdWU=|") + sig + "a",
           std::string("2|1:0|10:1300000000|3:key|8:dmFsdWU=|") + sig.substr(1),
           std::string("2|1:0|10:1300000000|3:key|8:dmFsdWU=|") + sig + "|",
           std::string(kTornadoKeyValue) + "\n",
           " " + std::string(kTornadoKeyValue),
       }) {
    EXPECT_FALSE(decode_signed_value(kSecret, "key", bad, 31, kNow)) << bad;
  }
}

// HMAC-SHA256 in hex, computed independently of the code under test.
std::string reference_signature(std::string_view secret, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &size);
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    hex += "0123456789abcdef"[digest[i] >> 4];
    hex += "0123456789abcdef"[digest[i] & 15];
  }
  return hex;
}

TEST(SignedValueTest, ReferenceSignatureAgreesWithCreate) {
  std::string to_sign = "2|1:0|10:1300000000|3:key|8:dmFsdWU=|";
  EXPECT_EQ(to_sign + reference_signature(kSecret, to_sign), kTornadoKeyValue);
}

TEST(SignedValueTest, RejectsInvalidBase64EvenWhenSigned) {
  // Only a holder of the secret can sign these, but they must still not decode to garbage.
  for (const std::string& field :
       std::vector<std::string>{"4:!!!!", "3:abc", "4:Zh==", "5:Zm9v\n"}) {
    std::string to_sign = "2|1:0|10:1300000000|3:key|" + field + "|";
    EXPECT_FALSE(decode_signed_value(kSecret, "key",
                                     to_sign + reference_signature(kSecret, to_sign), 31, kNow))
        << field;
  }
}

TEST(SignedValueTest, AcceptsOtherwiseValidFieldsSignedByHand) {
  // Leading zeros in lengths and timestamp are digits like any other, as for Tornado's int().
  std::string to_sign = "2|01:0|010:1300000000|03:key|08:dmFsdWU=|";
  EXPECT_EQ(decode_signed_value(kSecret, "key", to_sign + reference_signature(kSecret, to_sign), 31,
                                kNow),
            "value");
}

TEST(SignedValueTest, RejectsEveryTruncation) {
  std::string valid(kTornadoKeyValue);
  for (std::size_t n = 0; n < valid.size(); ++n) {
    EXPECT_FALSE(decode_signed_value(kSecret, "key", valid.substr(0, n), 31, kNow)) << n;
  }
}

TEST(SignedValueTest, UppercaseSignatureIsRejectedAsTornadoDoes) {
  std::string v(kTornadoKeyValue);
  for (std::size_t i = v.rfind('|') + 1; i < v.size(); ++i) {
    v[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(v[i])));
  }
  EXPECT_FALSE(decode_signed_value(kSecret, "key", v, 31, kNow));
}

TEST(SignedValueTest, NameWithSeparatorsIsLengthPrefixed) {
  std::string v = create_signed_value(kSecret, "a|3:b", "value", kNow);
  EXPECT_EQ(decode_signed_value(kSecret, "a|3:b", v, 31, kNow), "value");
  EXPECT_FALSE(decode_signed_value(kSecret, "a", v, 31, kNow));
}

TEST(SignedValueTest, HostileInputNeverCrashes) {
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk += static_cast<char>((i * 131) & 0xff);
  for (const std::string& s :
       std::vector<std::string>{junk, "2|" + junk, "2|1:0|" + junk, std::string(100000, '|'),
                                "2|" + std::string(100000, '9'), std::string("2|1:0|1:\0|", 10)}) {
    EXPECT_FALSE(decode_signed_value(kSecret, "key", s, 31, kNow));
  }
}

TEST(RandomBytesTest, ReturnsRequestedLengthAndVaries) {
  EXPECT_EQ(random_bytes(0).size(), 0u);
  EXPECT_EQ(random_bytes(33).size(), 33u);
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) seen.insert(random_bytes(16));
  EXPECT_EQ(seen.size(), 20u);
}

TEST(XsrfTest, MatchesTornadoMaskedForm) {
  std::string raw;
  for (int i = 0; i < 16; ++i) raw += static_cast<char>(i);
  // Tornado: b"|".join([b"2", hex(mask), hex(_websocket_mask(mask, token)), b"1300000000"])
  EXPECT_EQ(encode_xsrf_token(XsrfToken{raw, kNow}, std::string("\x01\x02\x03\x04")),
            "2|01020304|0103010705070503090b090f0d0f0d0b|1300000000");
}

TEST(XsrfTest, GenerateGivesSixteenFreshBytes) {
  XsrfToken a = generate_xsrf_token(kNow);
  XsrfToken b = generate_xsrf_token(kNow);
  EXPECT_EQ(a.token.size(), 16u);
  EXPECT_EQ(a.timestamp, kNow);
  EXPECT_NE(a.token, b.token);
}

TEST(XsrfTest, EncodeDecodeRoundTrip) {
  XsrfToken token = generate_xsrf_token(kNow);
  std::string encoded = encode_xsrf_token(token);
  EXPECT_EQ(encoded.size(), 2 + 8 + 1 + 32 + 1 + 10);
  EXPECT_EQ(decode_xsrf_token(encoded), token);
}

TEST(XsrfTest, MaskingMakesEachEncodingDifferent) {
  XsrfToken token = generate_xsrf_token(kNow);
  std::set<std::string> encodings;
  for (int i = 0; i < 20; ++i) encodings.insert(encode_xsrf_token(token));
  EXPECT_GT(encodings.size(), 15u);
  for (const std::string& e : encodings) EXPECT_EQ(decode_xsrf_token(e), token);
}

TEST(XsrfTest, EncodeRequiresFourByteMask) {
  XsrfToken token{"0123456789abcdef", kNow};
  EXPECT_THROW(encode_xsrf_token(token, "abc"), std::invalid_argument);
  EXPECT_THROW(encode_xsrf_token(token, "abcde"), std::invalid_argument);
}

TEST(XsrfTest, DecodeAcceptsUppercaseHex) {
  auto token = decode_xsrf_token("2|0102030A|0103010705070503090B090F0D0F0D01|7");
  ASSERT_TRUE(token);
  EXPECT_EQ(token->timestamp, 7);
  EXPECT_EQ(token->token.size(), 16u);
}

TEST(XsrfTest, DecodeRejectsMalformedTokens) {
  for (const std::string& bad : std::vector<std::string>{
           "",
           "2",
           "2|",
           "2|01020304|0103|",
           "2|01020304|0103",
           "2|01020304||1300000000",
           "2|01020304|010|1300000000",
           "2|01020304|01zz|1300000000",
           "2|0102030|0103|1300000000",
           "2|010203040|0103|1300000000",
           "2|0102030g|0103|1300000000",
           "2|01020304|0103|13000x0000",
           "2|01020304|0103|-5",
           "2|01020304|0103|+5",
           "2|01020304|0103| 5",
           "2|01020304|0103|1234567890123456789",
           "2|01020304|0103|1300000000|extra",
           "1|01020304|0103|1300000000",
           "3|01020304|0103|1300000000",
           "|2|01020304|0103|1300000000",
           "000102030405060708090a0b0c0d0e0f",  // Tornado's unmasked version 1
       }) {
    EXPECT_FALSE(decode_xsrf_token(bad)) << bad;
  }
  EXPECT_TRUE(decode_xsrf_token("2|01020304|" + std::string(128, 'a') + "|1"));
  EXPECT_FALSE(decode_xsrf_token("2|01020304|" + std::string(130, 'a') + "|1"));
}

TEST(XsrfTest, TokensMatchAcrossMasksAndTimestamps) {
  XsrfToken token = generate_xsrf_token(kNow);
  std::string cookie = encode_xsrf_token(token);
  std::string form = encode_xsrf_token(token);
  EXPECT_TRUE(xsrf_tokens_match(cookie, form));
  EXPECT_TRUE(xsrf_tokens_match(cookie, encode_xsrf_token(XsrfToken{token.token, kNow + 5})));
}

TEST(XsrfTest, DifferentOrMalformedTokensDoNotMatch) {
  XsrfToken token = generate_xsrf_token(kNow);
  std::string cookie = encode_xsrf_token(token);
  EXPECT_FALSE(xsrf_tokens_match(cookie, encode_xsrf_token(generate_xsrf_token(kNow))));
  XsrfToken shorter{token.token.substr(0, 15), kNow};
  EXPECT_FALSE(xsrf_tokens_match(cookie, encode_xsrf_token(shorter)));
  XsrfToken flipped = token;
  flipped.token[15] ^= 1;
  EXPECT_FALSE(xsrf_tokens_match(cookie, encode_xsrf_token(flipped)));
  EXPECT_FALSE(xsrf_tokens_match(cookie, ""));
  EXPECT_FALSE(xsrf_tokens_match("", cookie));
  EXPECT_FALSE(xsrf_tokens_match("", ""));
  EXPECT_FALSE(xsrf_tokens_match("garbage", "garbage"));
}

}  // namespace
}  // namespace tronada
