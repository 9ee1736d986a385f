// Parameter encoding and result decoding of the PostgreSQL client, without a server.
#include <gtest/gtest.h>

#include <cmath>

#include "tronada/db/pg_param.h"
#include "tronada/db/pg_result.h"

using namespace tronada::pg;

namespace {

template <typename T>
T decode(std::string_view text) {
  return detail::decode_as<T>(text, detail::Where{"c", 0});
}

}  // namespace

TEST(PgParam, EncodesEachTypeWithItsOid) {
  EXPECT_TRUE(Param(nullptr).is_null());
  EXPECT_TRUE(Param(std::nullopt).is_null());
  EXPECT_TRUE(Param(std::optional<int>()).is_null());
  EXPECT_EQ(Param(std::optional<int>(7)).value(), "7");
  EXPECT_EQ(Param(true).value(), "t");
  EXPECT_EQ(Param(true).type(), oid::bool_);
  EXPECT_EQ(Param(std::int16_t(-3)).type(), oid::int2);
  EXPECT_EQ(Param(42).type(), oid::int4);
  EXPECT_EQ(Param(std::uint32_t(4000000000u)).type(), oid::int8);
  EXPECT_EQ(Param(std::int64_t(-9000000000)).value(), "-9000000000");
  EXPECT_EQ(Param(std::uint64_t(18446744073709551615ull)).type(), oid::numeric);
  EXPECT_EQ(Param(std::uint64_t(5)).type(), oid::int8);
  EXPECT_EQ(Param(0.1).value(), "0.1");
  EXPECT_EQ(Param(0.5f).type(), oid::float4);
  EXPECT_EQ(Param(std::nan("")).value(), "NaN");
  EXPECT_EQ(Param(-INFINITY).value(), "-Infinity");
  EXPECT_EQ(Param("text").type(), oid::unknown);
  EXPECT_EQ(Param(std::string("a'b")).value(), "a'b");
  EXPECT_TRUE(Param(Bytea{std::string("\0\1", 2)}).binary());
  EXPECT_EQ(Param(Timestamp(std::chrono::microseconds(1'700'000'000'123'456))).value(),
            "2023-11-14 22:13:20.123456+00");
}

TEST(PgParam, EncodesArraysQuotingEveryElement) {
  EXPECT_EQ(Param(std::vector<int>{1, -2}).value(), R"({"1","-2"})");
  EXPECT_EQ(Param(std::vector<int>{1}).type(), oid::int4_array);
  EXPECT_EQ(Param(std::vector<std::string>{"a,b", "q\"\\", "NULL"}).value(),
            R"({"a,b","q\"\\","NULL"})");
  EXPECT_EQ(Param(std::vector<std::string>{}).type(), oid::text_array);
  EXPECT_EQ(Param(std::vector<std::optional<std::int64_t>>{1, std::nullopt}).value(),
            R"({"1",NULL})");
  EXPECT_EQ(Param(std::vector<std::optional<std::int64_t>>{}).type(), oid::int8_array);
}

TEST(PgResultDecode, ScalarsAndTheirErrors) {
  EXPECT_EQ(decode<bool>("t"), true);
  EXPECT_EQ(decode<int>("-17"), -17);
  EXPECT_EQ(decode<std::int64_t>("9223372036854775807"), INT64_MAX);
  EXPECT_THROW(decode<std::int16_t>("70000"), ConversionError);
  EXPECT_THROW(decode<unsigned>("-1"), ConversionError);
  EXPECT_THROW(decode<int>("12abc"), ConversionError);
  EXPECT_THROW(decode<int>("1.5"), ConversionError);
  EXPECT_THROW(decode<bool>("yes"), ConversionError);
  EXPECT_DOUBLE_EQ(decode<double>("2.5e3"), 2500.0);
  EXPECT_TRUE(std::isnan(decode<double>("NaN")));
  EXPECT_TRUE(std::isinf(decode<float>("-Infinity")));
  EXPECT_EQ(decode<Bytea>("\\x00ff41").data, std::string("\0\xff"
                                                         "A",
                                                         3));
  EXPECT_THROW(decode<Bytea>("\\x0"), ConversionError);
  EXPECT_THROW(decode<Bytea>("abc"), ConversionError);
  try {
    decode<int>("nope");
    FAIL();
  } catch (const ConversionError& e) {
    EXPECT_NE(std::string(e.what()).find("column \"c\" of row 0"), std::string::npos) << e.what();
  }
}

TEST(PgResultDecode, Timestamps) {
  using std::chrono::microseconds;
  EXPECT_EQ(decode<Timestamp>("2023-11-14 22:13:20.123456+00").time_since_epoch(),
            microseconds(1'700'000'000'123'456));
  EXPECT_EQ(decode<Timestamp>("2023-11-15 00:13:20.5+02").time_since_epoch(),
            microseconds(1'700'000'000'500'000));
  EXPECT_EQ(decode<Timestamp>("2023-11-14 16:43:20-05:30").time_since_epoch(),
            microseconds(1'700'000'000'000'000));
  EXPECT_EQ(decode<Timestamp>("1970-01-01 00:00:00").time_since_epoch(), microseconds(0));
  EXPECT_THROW(decode<Timestamp>("2023-02-30 00:00:00"), ConversionError);
  EXPECT_THROW(decode<Timestamp>("infinity"), ConversionError);
}

TEST(PgResultDecode, OneDimensionalArrays) {
  EXPECT_EQ(decode<std::vector<int>>("{1,2,3}"), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(decode<std::vector<int>>("{}"), std::vector<int>{});
  EXPECT_EQ(decode<std::vector<std::string>>(R"({a,"b c","q\"\\",""})"),
            (std::vector<std::string>{"a", "b c", "q\"\\", ""}));
  EXPECT_EQ(decode<std::vector<std::optional<std::string>>>(R"({NULL,"NULL"})"),
            (std::vector<std::optional<std::string>>{std::nullopt, "NULL"}));
  EXPECT_THROW(decode<std::vector<int>>("{1,NULL}"), ConversionError);
  EXPECT_THROW(decode<std::vector<int>>("{{1},{2}}"), ConversionError);
  EXPECT_THROW(decode<std::vector<int>>("1,2"), ConversionError);
  EXPECT_THROW(decode<std::vector<std::string>>(R"({"open)"), ConversionError);
}
