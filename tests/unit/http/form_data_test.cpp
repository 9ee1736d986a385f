#include "tronada/http/form_data.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tronada {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs pairs(const QueryArguments& args) {
  return Pairs(args.begin(), args.end());
}

TEST(QueryArgumentsTest, StartsEmpty) {
  QueryArguments args;
  EXPECT_TRUE(args.empty());
  EXPECT_EQ(args.size(), 0u);
  EXPECT_FALSE(args.get_first("a"));
  EXPECT_FALSE(args.get_last("a"));
  EXPECT_TRUE(args.get_all("a").empty());
  EXPECT_FALSE(args.contains("a"));
  EXPECT_TRUE(args.names().empty());
}

TEST(QueryArgumentsTest, KeepsEveryValueInOrder) {
  QueryArguments args;
  args.add("a", "1");
  args.add("b", "2");
  args.add("a", "3");
  EXPECT_EQ(args.size(), 3u);
  EXPECT_EQ(args.get_first("a"), "1");
  EXPECT_EQ(args.get_last("a"), "3");
  EXPECT_EQ(args.get_all("a"), (std::vector<std::string_view>{"1", "3"}));
  EXPECT_EQ(args.get_first("b"), "2");
  EXPECT_EQ(args.get_last("b"), "2");
  EXPECT_EQ(args.names(), (std::vector<std::string_view>{"a", "b"}));
  EXPECT_EQ(pairs(args), (Pairs{{"a", "1"}, {"b", "2"}, {"a", "3"}}));
}

TEST(QueryArgumentsTest, NamesAreCaseSensitive) {
  QueryArguments args;
  args.add("Name", "x");
  EXPECT_FALSE(args.contains("name"));
  EXPECT_TRUE(args.contains("Name"));
}

TEST(QueryArgumentsTest, EmptyValueIsPresent) {
  QueryArguments args;
  args.add("a", "");
  EXPECT_TRUE(args.contains("a"));
  EXPECT_EQ(args.get_first("a"), "");
}

TEST(QueryArgumentsTest, ExtendAppendsIncludingSelf) {
  QueryArguments a;
  a.add("x", "1");
  QueryArguments b;
  b.add("y", "2");
  b.add("x", "3");
  a.extend(b);
  EXPECT_EQ(pairs(a), (Pairs{{"x", "1"}, {"y", "2"}, {"x", "3"}}));
  a.extend(a);
  EXPECT_EQ(a.size(), 6u);
  EXPECT_EQ(a.get_all("x"), (std::vector<std::string_view>{"1", "3", "1", "3"}));
}

TEST(QueryArgumentsTest, Equality) {
  QueryArguments a, b;
  a.add("x", "1");
  EXPECT_NE(a, b);
  b.add("x", "1");
  EXPECT_EQ(a, b);
}

TEST(QueryStringTest, ParsesSimpleFields) {
  EXPECT_EQ(pairs(parse_query_string("a=1&b=2&a=3")), (Pairs{{"a", "1"}, {"b", "2"}, {"a", "3"}}));
}

TEST(QueryStringTest, EmptyInputGivesNothing) {
  EXPECT_TRUE(parse_query_string("").empty());
  EXPECT_TRUE(parse_query_string("&").empty());
  EXPECT_TRUE(parse_query_string("&&&").empty());
}

TEST(QueryStringTest, DecodesPlusAndPercentEscapes) {
  EXPECT_EQ(pairs(parse_query_string("q=hello+world&e=%C3%A9&p=%2B%2b&s=%20")),
            (Pairs{{"q", "hello world"}, {"e", "\xc3\xa9"}, {"p", "++"}, {"s", " "}}));
  EXPECT_EQ(pairs(parse_query_string("a+b%3Dc=d%26e")), (Pairs{{"a b=c", "d&e"}}));
}

TEST(QueryStringTest, DecodesToRawBytesIncludingNul) {
  EXPECT_EQ(pairs(parse_query_string("b=%00%ff%FE")), (Pairs{{"b", std::string("\0\xff\xfe", 3)}}));
}

TEST(QueryStringTest, SemicolonIsNotASeparator) {
  EXPECT_EQ(pairs(parse_query_string("a=1;b=2&c=3")), (Pairs{{"a", "1;b=2"}, {"c", "3"}}));
}

TEST(QueryStringTest, FirstEqualsSplits) {
  EXPECT_EQ(pairs(parse_query_string("a==b=c&=v&k=")),
            (Pairs{{"a", "=b=c"}, {"", "v"}, {"k", ""}}));
}

TEST(QueryStringTest, KeepBlankKeepsNamesWithoutValues) {
  EXPECT_EQ(pairs(parse_query_string("a&b=&c=1&&")), (Pairs{{"a", ""}, {"b", ""}, {"c", "1"}}));
}

TEST(QueryStringTest, WithoutKeepBlankDropsEmptyValues) {
  EXPECT_EQ(pairs(parse_query_string("a&b=&c=1&=&=x", false)), (Pairs{{"c", "1"}, {"", "x"}}));
}

TEST(QueryStringTest, MalformedEscapesStayRawLikePython) {
  // urllib.parse.parse_qsl("a=%zz%41&b=%4&c=%&d=+%2B", keep_blank_values=True)
  EXPECT_EQ(pairs(parse_query_string("a=%zz%41&b=%4&c=%&d=+%2B")),
            (Pairs{{"a", "%zzA"}, {"b", "%4"}, {"c", "%"}, {"d", " +"}}));
  EXPECT_EQ(pairs(parse_query_string("%x=%%41&%=%%")), (Pairs{{"%x", "%A"}, {"%", "%%"}}));
  EXPECT_EQ(pairs(parse_query_string("a=%4+&b=%+4")), (Pairs{{"a", "%4 "}, {"b", "% 4"}}));
}

TEST(QueryStringTest, FieldLimitCountsLikePython) {
  std::string thousand;
  for (int i = 0; i < 1000; ++i) thousand += (i ? "&" : "") + std::string("f=") + std::to_string(i);
  EXPECT_EQ(parse_query_string(thousand).size(), 1000u);
  EXPECT_THROW(parse_query_string(thousand + "&x=1"), FormError);
  // Empty fields count too: they cost a scan even if they produce nothing.
  EXPECT_THROW(parse_query_string(std::string(1000, '&')), FormError);
  EXPECT_NO_THROW(parse_query_string(std::string(999, '&')));
}

TEST(QueryStringTest, CustomAndDisabledLimit) {
  EXPECT_NO_THROW(parse_query_string("a=1&b=2", true, 2));
  EXPECT_THROW(parse_query_string("a=1&b=2&c=3", true, 2), FormError);
  EXPECT_THROW(parse_query_string("a=1&b=2&", true, 2), FormError);
  EXPECT_EQ(parse_query_string(std::string(5000, '&') + "a=1", true, 0).size(), 1u);
}

TEST(QueryStringTest, FormErrorIsARuntimeErrorWithMessage) {
  try {
    parse_query_string("a&b&c", true, 2);
    FAIL() << "expected FormError";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("too many"), std::string::npos);
  }
}

TEST(QueryStringTest, HostileInputNeverThrowsBelowLimit) {
  std::string junk;
  for (int i = 0; i < 256; ++i) junk += static_cast<char>(i == '&' ? 'x' : i);
  EXPECT_NO_THROW(parse_query_string(junk));
  EXPECT_EQ(parse_query_string(std::string(100000, '%')).get_first(std::string(100000, '%')), "");
  EXPECT_EQ(parse_query_string(std::string(100000, '=')).size(), 1u);
}

}  // namespace
}  // namespace tronada
