#include "cli/byte_size.h"

#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <string>

namespace tronada::cli {
namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = KiB * KiB;
constexpr uint64_t GiB = MiB * KiB;
constexpr uint64_t TiB = GiB * KiB;
constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

void expect_error(const std::string& input, const std::string& reason_fragment) {
  try {
    uint64_t value = parse_byte_size(input);
    ADD_FAILURE() << "'" << input << "' was accepted as " << value;
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("'" + input + "'"), std::string::npos) << what;
    EXPECT_NE(what.find(reason_fragment), std::string::npos) << what;
  }
}

TEST(ByteSize, PlainBytes) {
  EXPECT_EQ(parse_byte_size("0"), 0u);
  EXPECT_EQ(parse_byte_size("4096"), 4096u);
  EXPECT_EQ(parse_byte_size("007"), 7u);
  EXPECT_EQ(parse_byte_size("4096B"), 4096u);
  EXPECT_EQ(parse_byte_size("4096b"), 4096u);
  EXPECT_EQ(parse_byte_size("0B"), 0u);
  EXPECT_EQ(parse_byte_size("18446744073709551615"), kMax);
}

TEST(ByteSize, IecUnits) {
  EXPECT_EQ(parse_byte_size("512KiB"), 512 * KiB);
  EXPECT_EQ(parse_byte_size("1MiB"), MiB);
  EXPECT_EQ(parse_byte_size("1GiB"), GiB);
  EXPECT_EQ(parse_byte_size("2TiB"), 2 * TiB);
  EXPECT_EQ(parse_byte_size("0MiB"), 0u);
}

TEST(ByteSize, SiUnits) {
  EXPECT_EQ(parse_byte_size("1KB"), 1000u);
  EXPECT_EQ(parse_byte_size("10MB"), 10'000'000u);
  EXPECT_EQ(parse_byte_size("3GB"), 3'000'000'000u);
  EXPECT_EQ(parse_byte_size("1TB"), 1'000'000'000'000u);
}

// nginx: `client_max_body_size 1m` is a mebibyte.
TEST(ByteSize, NginxSingleLetters) {
  EXPECT_EQ(parse_byte_size("1k"), KiB);
  EXPECT_EQ(parse_byte_size("1K"), KiB);
  EXPECT_EQ(parse_byte_size("8m"), 8 * MiB);
  EXPECT_EQ(parse_byte_size("8M"), 8 * MiB);
  EXPECT_EQ(parse_byte_size("1g"), GiB);
  EXPECT_EQ(parse_byte_size("1G"), GiB);
  EXPECT_EQ(parse_byte_size("1t"), TiB);
  EXPECT_EQ(parse_byte_size("1T"), TiB);
}

TEST(ByteSize, UnitsAreCaseInsensitive) {
  EXPECT_EQ(parse_byte_size("1mib"), MiB);
  EXPECT_EQ(parse_byte_size("1MIB"), MiB);
  EXPECT_EQ(parse_byte_size("1kb"), 1000u);
  EXPECT_EQ(parse_byte_size("1Gb"), 1'000'000'000u);
}

TEST(ByteSize, SpacesBeforeUnit) {
  EXPECT_EQ(parse_byte_size("1 MiB"), MiB);
  EXPECT_EQ(parse_byte_size("10  MB"), 10'000'000u);
}

TEST(ByteSize, ExactFractions) {
  EXPECT_EQ(parse_byte_size("1.5KiB"), 1536u);
  EXPECT_EQ(parse_byte_size("1.5GiB"), GiB + GiB / 2);
  EXPECT_EQ(parse_byte_size("0.5k"), 512u);
  EXPECT_EQ(parse_byte_size("2.5MB"), 2'500'000u);
  EXPECT_EQ(parse_byte_size("1.000"), 1u);
  EXPECT_EQ(parse_byte_size("1.0MiB"), MiB);
  EXPECT_EQ(parse_byte_size("0.000000000001TB"), 1u);
  EXPECT_EQ(parse_byte_size("15.999999999999TB"), 15'999'999'999'999u);
}

TEST(ByteSize, RejectsEmptyAndMalformed) {
  expect_error("", "empty");
  expect_error("MiB", "expected a whole number");
  expect_error(" 1MiB", "expected a whole number");
  expect_error("+1", "expected a whole number");
  expect_error(".5MiB", "expected a whole number");
  expect_error("1.MiB", "no digits after the decimal point");
  expect_error("1,5MiB", "unknown unit ',5MiB'");
  expect_error("1e6", "unknown unit 'e6'");
  expect_error("0x10", "unknown unit 'x10'");
  expect_error("1MiB ", "unknown unit 'MiB '");
  expect_error("1 ", "trailing space");
  expect_error("1 2", "unknown unit '2'");
}

TEST(ByteSize, RejectsNegative) {
  expect_error("-1", "negative");
  expect_error("-1MiB", "negative");
}

TEST(ByteSize, RejectsUnknownUnits) {
  expect_error("1Mb/s", "unknown unit");
  expect_error("1MiBB", "unknown unit");
  expect_error("1PiB", "unknown unit");
  expect_error("1bytes", "unknown unit");
  expect_error("1i", "unknown unit");
  expect_error("1iB", "unknown unit");
}

TEST(ByteSize, RejectsFractionsOfAByte) {
  expect_error("0.5", "not a whole number of bytes");
  expect_error("1.3KiB", "not a whole number of bytes");
  expect_error("0.1MiB", "not a whole number of bytes");
  expect_error("0.0000000000001TB", "too many digits");
}

TEST(ByteSize, RejectsOverflow) {
  expect_error("18446744073709551616", "too large");
  expect_error("99999999999999999999999999", "too large");
  expect_error("16777216TiB", "too large");
  expect_error("17179869184GiB", "too large");
  expect_error("18446744073709551615.5KiB", "too large");
  expect_error("18446744073709551.616KB", "too large");
  expect_error("18446744073709551615.5", "not a whole number");
}

TEST(ByteSize, LargestValuesThatFit) {
  EXPECT_EQ(parse_byte_size("16777215TiB"), 16777215 * TiB);
  EXPECT_EQ(parse_byte_size("18446744073709551.614KB"), kMax - 1);
  EXPECT_EQ(parse_byte_size("18446744073709551.615KB"), kMax);
}

TEST(ByteSize, FormatPicksExactUnitWithFewestDigits) {
  EXPECT_EQ(format_byte_size(0), "0");
  EXPECT_EQ(format_byte_size(1), "1");
  EXPECT_EQ(format_byte_size(1536), "1536");
  EXPECT_EQ(format_byte_size(KiB), "1KiB");
  EXPECT_EQ(format_byte_size(512 * KiB), "512KiB");
  EXPECT_EQ(format_byte_size(MiB), "1MiB");
  EXPECT_EQ(format_byte_size(GiB), "1GiB");
  EXPECT_EQ(format_byte_size(3 * TiB), "3TiB");
  EXPECT_EQ(format_byte_size(1000), "1KB");
  EXPECT_EQ(format_byte_size(10'000'000), "10MB");
  EXPECT_EQ(format_byte_size(1000 * KiB), "1000KiB");  // ties with 1024KB: IEC wins
  EXPECT_EQ(format_byte_size(kMax), "18446744073709551615");
}

TEST(ByteSize, FormatRoundTrips) {
  for (uint64_t v :
       {uint64_t{0}, uint64_t{1}, uint64_t{999}, uint64_t{1000}, uint64_t{1024}, uint64_t{1536},
        MiB, 10 * MiB, uint64_t{10'000'000}, 5 * GiB, 7 * TiB, kMax - 1, kMax}) {
    EXPECT_EQ(parse_byte_size(format_byte_size(v)), v) << v;
  }
}

}  // namespace
}  // namespace tronada::cli
