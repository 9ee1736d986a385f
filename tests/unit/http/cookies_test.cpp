#include "tronada/http/cookies.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tronada {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(CookieParseTest, ParsesSimplePairsInOrder) {
  EXPECT_EQ(parse_cookie_header("a=1; b=2;c=3"), (Pairs{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
}

TEST(CookieParseTest, EmptyHeaderGivesNothing) {
  EXPECT_TRUE(parse_cookie_header("").empty());
  EXPECT_TRUE(parse_cookie_header(";;; ;").empty());
  EXPECT_TRUE(parse_cookie_header("   ").empty());
}

TEST(CookieParseTest, TrimsWhitespaceAroundNamesAndValues) {
  EXPECT_EQ(parse_cookie_header("  a =  1 ;\tb\t=\t2\t"), (Pairs{{"a", "1"}, {"b", "2"}}));
}

TEST(CookieParseTest, FirstEqualsSplitsNameFromValue) {
  EXPECT_EQ(parse_cookie_header("token=abc==; x=a=b=c"),
            (Pairs{{"token", "abc=="}, {"x", "a=b=c"}}));
}

TEST(CookieParseTest, EmptyValueIsKept) {
  EXPECT_EQ(parse_cookie_header("a=; b="), (Pairs{{"a", ""}, {"b", ""}}));
}

TEST(CookieParseTest, SkipsPairsWithoutEqualsOrName) {
  EXPECT_EQ(parse_cookie_header("a=1; flag; =orphan; = ; b=2"), (Pairs{{"a", "1"}, {"b", "2"}}));
}

TEST(CookieParseTest, KeepsDuplicatesInHeaderOrder) {
  EXPECT_EQ(parse_cookie_header("sid=specific; sid=general"),
            (Pairs{{"sid", "specific"}, {"sid", "general"}}));
}

TEST(CookieParseTest, UnquotesQuotedValuesLikePython) {
  // Matches http.cookies._unquote('"a\\"b\\\\c\\012d\\x"') == 'a"b\\c\ndx'.
  EXPECT_EQ(parse_cookie_header(R"(q="a\"b\\c\012d\x")"), (Pairs{{"q",
                                                                  "a\"b\\c\nd"
                                                                  "x"}}));
  EXPECT_EQ(parse_cookie_header(R"(q="plain")"), (Pairs{{"q", "plain"}}));
  EXPECT_EQ(parse_cookie_header(R"(q="")"), (Pairs{{"q", ""}}));
}

TEST(CookieParseTest, OctalEscapeNeedsThreeDigitsWithLeadingZeroToThree) {
  EXPECT_EQ(parse_cookie_header(R"(q="\101\12\400")"), (Pairs{{"q", "A12400"}}));
  EXPECT_EQ(parse_cookie_header(R"(q="\377")"), (Pairs{{"q", "\xff"}}));
}

TEST(CookieParseTest, LeavesUnbalancedQuotesAndStrayBackslashesAlone) {
  EXPECT_EQ(parse_cookie_header(R"(a="; b=x"; c="; d=\n; e=")"),
            (Pairs{{"a", "\""}, {"b", "x\""}, {"c", "\""}, {"d", "\\n"}, {"e", "\""}}));
  // A backslash that ends the quoted text has nothing to escape.
  EXPECT_EQ(parse_cookie_header(R"(a="x\")"), (Pairs{{"a", "x\\"}}));
}

TEST(CookieParseTest, SemicolonInsideQuotesStillSplitsAsBrowsersAndTornadoDo) {
  EXPECT_EQ(parse_cookie_header(R"(d="x;y"; e=2)"), (Pairs{{"d", "\"x"}, {"e", "2"}}));
}

TEST(CookieParseTest, KeepsRawBytesWithoutDecoding) {
  EXPECT_EQ(parse_cookie_header("a=%41+b; u=\xc3\xa9"), (Pairs{{"a", "%41+b"}, {"u", "\xc3\xa9"}}));
}

TEST(CookieParseTest, NeverThrowsOnHostileInput) {
  std::string junk;
  for (int i = 0; i < 256; ++i) junk += static_cast<char>(i);
  junk += junk;
  EXPECT_NO_THROW(parse_cookie_header(junk));
  EXPECT_NO_THROW(parse_cookie_header(std::string(100000, '=')));
  EXPECT_NO_THROW(parse_cookie_header(std::string(100000, '"')));
  EXPECT_NO_THROW(parse_cookie_header(std::string(100000, '\\')));
}

TEST(CookieFormatTest, MinimalCookieHasPathSlash) {
  EXPECT_EQ(format_set_cookie("sid", "abc"), "sid=abc; Path=/");
}

TEST(CookieFormatTest, EmptyPathOmitsAttribute) {
  CookieOptions options;
  options.path = "";
  EXPECT_EQ(format_set_cookie("sid", "abc", options), "sid=abc");
}

TEST(CookieFormatTest, AllAttributesInOrder) {
  CookieOptions options;
  options.domain = "example.com";
  options.path = "/app";
  options.expires_unix = 784111777;
  options.max_age = 3600;
  options.secure = true;
  options.http_only = true;
  options.same_site = "Lax";
  EXPECT_EQ(format_set_cookie("sid", "abc", options),
            "sid=abc; Domain=example.com; Path=/app; Expires=Sun, 06 Nov 1994 08:49:37 GMT; "
            "Max-Age=3600; Secure; HttpOnly; SameSite=Lax");
}

TEST(CookieFormatTest, SameSiteIsCaseInsensitiveAndCanonicalised) {
  CookieOptions options;
  options.same_site = "strict";
  EXPECT_EQ(format_set_cookie("a", "b", options), "a=b; Path=/; SameSite=Strict");
  options.same_site = "LAX";
  EXPECT_EQ(format_set_cookie("a", "b", options), "a=b; Path=/; SameSite=Lax");
  options.same_site = "none";
  options.secure = true;
  EXPECT_EQ(format_set_cookie("a", "b", options), "a=b; Path=/; Secure; SameSite=None");
}

TEST(CookieFormatTest, SameSiteNoneWithoutSecureThrows) {
  CookieOptions options;
  options.same_site = "None";
  EXPECT_THROW(format_set_cookie("a", "b", options), std::invalid_argument);
}

TEST(CookieFormatTest, UnknownSameSiteThrows) {
  for (const char* bad : {"lax ", "Laxx", "yes", "None; Secure", "\r\nX: y"}) {
    CookieOptions options;
    options.secure = true;
    options.same_site = bad;
    EXPECT_THROW(format_set_cookie("a", "b", options), std::invalid_argument) << bad;
  }
}

TEST(CookieFormatTest, NegativeMaxAgeIsSentAsZero) {
  CookieOptions options;
  options.max_age = -5;
  EXPECT_EQ(format_set_cookie("a", "b", options), "a=b; Path=/; Max-Age=0");
}

TEST(CookieFormatTest, ExpiresIsClampedToFourDigitYears) {
  CookieOptions options;
  options.path = "";
  options.expires_unix = -100;
  EXPECT_EQ(format_set_cookie("a", "b", options), "a=b; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  options.expires_unix = 1LL << 50;
  EXPECT_EQ(format_set_cookie("a", "b", options), "a=b; Expires=Fri, 31 Dec 9999 23:59:59 GMT");
}

TEST(CookieFormatTest, AcceptsEveryCookieOctetAndQuotedValues) {
  std::string octets;
  for (int c = 0x21; c <= 0x7E; ++c) {
    if (c != '"' && c != ',' && c != ';' && c != '\\') octets += static_cast<char>(c);
  }
  EXPECT_EQ(format_set_cookie("a", octets), "a=" + octets + "; Path=/");
  EXPECT_EQ(format_set_cookie("a", "\"quoted\""), "a=\"quoted\"; Path=/");
  EXPECT_EQ(format_set_cookie("a", "\"\""), "a=\"\"; Path=/");
  EXPECT_EQ(format_set_cookie("a", ""), "a=; Path=/");
}

TEST(CookieFormatTest, RejectsValuesThatCouldInject) {
  for (const std::string& bad :
       std::vector<std::string>{"a b", "a;b", "a,b", "a\"b", "a\\b", "a\rb", "a\nb", "a\tb",
                                std::string("a\0b", 3), "\x7f", "\xc3\xa9", "\"", "\"a b\"",
                                "\"a\"b\"", "x; Domain=evil.com", "x\r\nSet-Cookie: y=z"}) {
    EXPECT_THROW(format_set_cookie("a", bad), std::invalid_argument) << bad;
  }
}

TEST(CookieFormatTest, RejectsNamesThatAreNotTokens) {
  for (const std::string& bad :
       std::vector<std::string>{"", "a b", "a=b", "a;b", "a,b", "(a)", "a\"", "a\r\n", "\xc3\xa9",
                                std::string("a\0", 2), "a/b", "a@b", "[a]"}) {
    EXPECT_THROW(format_set_cookie(bad, "v"), std::invalid_argument) << bad;
  }
  EXPECT_NO_THROW(format_set_cookie("!#$%&'*+-.^_`|~09azAZ", "v"));
}

TEST(CookieFormatTest, RejectsBadDomains) {
  for (const std::string& bad :
       std::vector<std::string>{"evil.com; Secure", "a b.com", "a\r\n.com", "exämple.com", "a,b"}) {
    CookieOptions options;
    options.domain = bad;
    EXPECT_THROW(format_set_cookie("a", "b", options), std::invalid_argument) << bad;
  }
  CookieOptions options;
  options.domain = ".sub-domain.example_1.com";
  options.path = "";
  EXPECT_EQ(format_set_cookie("a", "b", options), "a=b; Domain=.sub-domain.example_1.com");
  options.domain = "";
  EXPECT_EQ(format_set_cookie("a", "b", options), "a=b");
}

TEST(CookieFormatTest, RejectsBadPaths) {
  for (const std::string& bad :
       std::vector<std::string>{"/a;b", "/a\r\nX: y", "/\x01", "/\x7f", "/caf\xc3\xa9"}) {
    CookieOptions options;
    options.path = bad;
    EXPECT_THROW(format_set_cookie("a", "b", options), std::invalid_argument) << bad;
  }
  CookieOptions options;
  options.path = "/a b/c,d=e";
  EXPECT_EQ(format_set_cookie("a", "b", options), "a=b; Path=/a b/c,d=e");
}

TEST(CookieFormatTest, EnforcesSecurePrefix) {
  CookieOptions options;
  EXPECT_THROW(format_set_cookie("__Secure-sid", "v", options), std::invalid_argument);
  options.secure = true;
  options.domain = "example.com";
  options.path = "/x";
  EXPECT_NO_THROW(format_set_cookie("__Secure-sid", "v", options));
}

TEST(CookieFormatTest, EnforcesHostPrefix) {
  CookieOptions options;
  options.secure = true;
  EXPECT_EQ(format_set_cookie("__Host-sid", "v", options), "__Host-sid=v; Path=/; Secure");
  options.domain = "example.com";
  EXPECT_THROW(format_set_cookie("__Host-sid", "v", options), std::invalid_argument);
  options.domain.reset();
  options.path = "/app";
  EXPECT_THROW(format_set_cookie("__Host-sid", "v", options), std::invalid_argument);
  options.path = "/";
  options.secure = false;
  EXPECT_THROW(format_set_cookie("__Host-sid", "v", options), std::invalid_argument);
}

TEST(CookieFormatTest, RoundTripsThroughTheParser) {
  std::string header = format_set_cookie("sid", "2|1:0|10:1300000000|3:key|8:dmFsdWU=|abc");
  std::string pair = header.substr(0, header.find(';'));
  EXPECT_EQ(parse_cookie_header(pair),
            (Pairs{{"sid", "2|1:0|10:1300000000|3:key|8:dmFsdWU=|abc"}}));
}

TEST(CookieClearTest, ExpiresAtEpochWithMaxAgeZero) {
  EXPECT_EQ(format_clear_cookie("sid"),
            "sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0");
}

TEST(CookieClearTest, KeepsPathAndDomain) {
  EXPECT_EQ(format_clear_cookie("sid", "/app", std::string("example.com")),
            "sid=; Domain=example.com; Path=/app; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
            "Max-Age=0");
}

TEST(CookieClearTest, PrefixedCookiesAreClearedWithSecure) {
  EXPECT_EQ(format_clear_cookie("__Host-sid"),
            "__Host-sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure");
  EXPECT_EQ(format_clear_cookie("__Secure-sid", "/x"),
            "__Secure-sid=; Path=/x; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure");
}

TEST(CookieClearTest, ValidatesLikeSetCookie) {
  EXPECT_THROW(format_clear_cookie("bad name"), std::invalid_argument);
  EXPECT_THROW(format_clear_cookie("sid", "/;x"), std::invalid_argument);
  EXPECT_THROW(format_clear_cookie("sid", "/", std::string("a;b")), std::invalid_argument);
  EXPECT_THROW(format_clear_cookie("__Host-sid", "/app"), std::invalid_argument);
}

}  // namespace
}  // namespace tronada
