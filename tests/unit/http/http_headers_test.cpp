#include "tronada/http/http_headers.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tronada {
namespace {

std::vector<std::string> names_in_order(const HTTPHeaders& headers) {
  std::vector<std::string> names;
  for (const HeaderField& field : headers) names.push_back(field.name + "=" + field.value);
  return names;
}

TEST(HTTPHeadersTest, StartsEmpty) {
  HTTPHeaders headers;
  EXPECT_TRUE(headers.empty());
  EXPECT_EQ(headers.size(), 0u);
  EXPECT_EQ(headers.begin(), headers.end());
  EXPECT_FALSE(headers.get("Host").has_value());
  EXPECT_TRUE(headers.get_all("Host").empty());
  EXPECT_FALSE(headers.get_joined("Host").has_value());
  EXPECT_FALSE(headers.contains("Host"));
}

TEST(HTTPHeadersTest, LookupIsCaseInsensitiveAndKeepsSpelling) {
  HTTPHeaders headers;
  headers.add("Content-Type", "text/plain");
  EXPECT_EQ(headers.get("content-type"), "text/plain");
  EXPECT_EQ(headers.get("CONTENT-TYPE"), "text/plain");
  EXPECT_TRUE(headers.contains("cOnTeNt-TyPe"));
  EXPECT_FALSE(headers.contains("Content-Typ"));
  EXPECT_FALSE(headers.contains("Content-Types"));
  EXPECT_EQ(headers.begin()->name, "Content-Type");
}

TEST(HTTPHeadersTest, AddKeepsDuplicatesInInsertionOrder) {
  HTTPHeaders headers;
  headers.add("Accept", "a");
  headers.add("X-One", "1");
  headers.add("accept", "b");
  headers.add("ACCEPT", "c");
  EXPECT_EQ(headers.size(), 4u);
  EXPECT_EQ(headers.get("Accept"), "a");
  EXPECT_EQ(headers.get_all("accept"), (std::vector<std::string_view>{"a", "b", "c"}));
  EXPECT_EQ(names_in_order(headers),
            (std::vector<std::string>{"Accept=a", "X-One=1", "accept=b", "ACCEPT=c"}));
}

TEST(HTTPHeadersTest, GetJoinedCombinesWithCommaSpace) {
  HTTPHeaders headers;
  headers.add("Cache-Control", "no-cache");
  headers.add("Other", "x");
  headers.add("cache-control", "no-store");
  EXPECT_EQ(headers.get_joined("Cache-Control"), "no-cache, no-store");
  EXPECT_EQ(headers.get_joined("Other"), "x");
  headers.add("Empty", "");
  EXPECT_EQ(headers.get_joined("Empty"), "");  // present but empty is not absent
}

TEST(HTTPHeadersTest, SetReplacesAllAndKeepsFirstPosition) {
  HTTPHeaders headers;
  headers.add("A", "1");
  headers.add("Vary", "x");
  headers.add("B", "2");
  headers.add("vary", "y");
  headers.set("VARY", "z");
  EXPECT_EQ(names_in_order(headers), (std::vector<std::string>{"A=1", "VARY=z", "B=2"}));
  headers.set("New", "n");
  EXPECT_EQ(names_in_order(headers), (std::vector<std::string>{"A=1", "VARY=z", "B=2", "New=n"}));
}

TEST(HTTPHeadersTest, RemoveDropsEveryMatch) {
  HTTPHeaders headers;
  headers.add("Cookie", "a=1");
  headers.add("Host", "h");
  headers.add("cookie", "b=2");
  EXPECT_EQ(headers.remove("COOKIE"), 2u);
  EXPECT_EQ(headers.remove("cookie"), 0u);
  EXPECT_EQ(names_in_order(headers), (std::vector<std::string>{"Host=h"}));
}

TEST(HTTPHeadersTest, ClearEmpties) {
  HTTPHeaders headers;
  headers.add("A", "1");
  headers.clear();
  EXPECT_TRUE(headers.empty());
  EXPECT_FALSE(headers.contains("A"));
}

TEST(HTTPHeadersTest, EqualityComparesOrderAndSpelling) {
  HTTPHeaders a;
  HTTPHeaders b;
  a.add("A", "1");
  b.add("A", "1");
  EXPECT_EQ(a, b);
  b.add("B", "2");
  EXPECT_NE(a, b);
}

TEST(HTTPHeadersTest, ValidNames) {
  EXPECT_TRUE(is_valid_header_name("Content-Type"));
  EXPECT_TRUE(is_valid_header_name("x"));
  EXPECT_TRUE(is_valid_header_name("!#$%&'*+-.^_`|~09azAZ"));
  EXPECT_FALSE(is_valid_header_name(""));
  EXPECT_FALSE(is_valid_header_name("Content Type"));
  EXPECT_FALSE(is_valid_header_name("Host "));
  EXPECT_FALSE(is_valid_header_name("Host:"));
  EXPECT_FALSE(is_valid_header_name("X\tY"));
  EXPECT_FALSE(is_valid_header_name("X\r\nY"));
  EXPECT_FALSE(is_valid_header_name(std::string("X\0Y", 3)));
  EXPECT_FALSE(is_valid_header_name("(comment)"));
  EXPECT_FALSE(is_valid_header_name("a\"b"));
  EXPECT_FALSE(is_valid_header_name("a/b"));
  EXPECT_FALSE(is_valid_header_name("a@b"));
  EXPECT_FALSE(is_valid_header_name("\xc3\xa9"));
}

TEST(HTTPHeadersTest, ValidValuesRefuseInjection) {
  EXPECT_TRUE(is_valid_header_value(""));
  EXPECT_TRUE(is_valid_header_value("text/html; charset=utf-8"));
  EXPECT_TRUE(is_valid_header_value("tab\tinside"));
  EXPECT_TRUE(is_valid_header_value("caf\xc3\xa9"));  // obs-text is tolerated
  EXPECT_FALSE(is_valid_header_value("a\r\nSet-Cookie: evil=1"));
  EXPECT_FALSE(is_valid_header_value("a\rb"));
  EXPECT_FALSE(is_valid_header_value("a\nb"));
  EXPECT_FALSE(is_valid_header_value(std::string("a\0b", 3)));
}

TEST(HTTPHeadersTest, ValueCheckFindsAForbiddenByteAtEveryPosition) {
  // The check reads eight bytes at a time: a forbidden byte in any lane of a word, or in
  // the tail after the last whole word, must be found; every other byte value passes.
  for (std::size_t len = 1; len <= 24; ++len) {
    for (std::size_t at = 0; at < len; ++at) {
      for (char bad : {'\0', '\r', '\n'}) {
        std::string v(len, 'x');
        v[at] = bad;
        EXPECT_FALSE(is_valid_header_value(v)) << "len " << len << " at " << at;
      }
    }
  }
  std::string all;
  for (int c = 0; c < 256; ++c) {
    if (c != 0 && c != '\r' && c != '\n') all += static_cast<char>(c);
  }
  EXPECT_TRUE(is_valid_header_value(all));
}

TEST(HTTPHeadersTest, NameCheckAgreesWithTheTableAtEveryLength) {
  // Every byte value at every position of names up to 24 bytes, against RFC 9110's
  // token rule written out (guards any faster check against the definition).
  auto bytewise = [](std::string_view name) {
    if (name.empty()) return false;
    for (char c : name) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
      if (!ok) return false;
    }
    return true;
  };
  for (std::size_t len = 1; len <= 24; ++len) {
    for (std::size_t at = 0; at < len; ++at) {
      for (int c = 0; c < 256; ++c) {
        std::string name(len, 'A');
        for (std::size_t i = 0; i < len; ++i) name[i] = "Content-Type-9x"[i % 15];
        name[at] = static_cast<char>(c);
        ASSERT_EQ(is_valid_header_name(name), bytewise(name))
            << "len " << len << " at " << at << " byte " << c;
      }
    }
  }
  EXPECT_FALSE(is_valid_header_name(""));
}

TEST(HTTPHeadersTest, DetailHelpers) {
  EXPECT_TRUE(detail::iequals("Transfer-Encoding", "transfer-encoding"));
  EXPECT_FALSE(detail::iequals("chunked", "chunke"));
  // Only ASCII letters fold: '@' (0x40) and '`' (0x60) differ by the case bit but are not letters.
  EXPECT_FALSE(detail::iequals("@", "`"));
  EXPECT_EQ(detail::trim_ows(" \t value \t "), "value");
}

TEST(HTTPHeadersTest, IequalsAgreesWithAByteLoopAtEveryLengthAndPosition) {
  // The comparison goes eight bytes at a time while they match exactly: a difference in
  // case or in content must be found in any word and in the tail after the last one.
  auto reference = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
      char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + 32) : b[i];
      if (x != y) return false;
    }
    return true;
  };
  const std::string base = "proxy-connection-keep-alive-x";
  for (std::size_t len = 0; len <= base.size(); ++len) {
    std::string a = base.substr(0, len);
    EXPECT_TRUE(detail::iequals(a, a));
    for (std::size_t at = 0; at < len; ++at) {
      for (char c : {'P', 'Q', '`', '@', '-', '\0'}) {
        std::string b = a;
        b[at] = c;
        EXPECT_EQ(detail::iequals(a, b), reference(a, b)) << "len " << len << " at " << at;
        EXPECT_EQ(detail::iequals(b, a), reference(b, a)) << "len " << len << " at " << at;
      }
    }
  }
  EXPECT_EQ(detail::trim_ows("   "), "");
  EXPECT_EQ(detail::trim_ows("a b"), "a b");
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kRecycled = false;  // sanitizer builds make every string afresh
#else
constexpr bool kRecycled = true;
#endif

TEST(HTTPHeadersTest, ALongValueReusesTheStorageOfDestroyedHeaders) {
  if (!kRecycled) GTEST_SKIP() << "no reuse under sanitizers";
  if (detail::spare_header_strings() >= 32) GTEST_SKIP() << "earlier tests filled the spares";
  std::size_t before = detail::spare_header_strings();
  // Sizes no other test leaves behind, so that the best fit is the string parked here.
  const std::string long_value(500, 'a');
  const char* storage = nullptr;
  {
    HTTPHeaders old;
    old.add("Content-Type", long_value);
    storage = old.get("Content-Type")->data();
  }
  EXPECT_EQ(detail::spare_header_strings(), before + 1);
  HTTPHeaders fresh;
  fresh.add("ETag", std::string(490, 'b'));  // shorter: fits the parked buffer
  EXPECT_EQ(fresh.get("ETag")->data(), storage);
  EXPECT_EQ(*fresh.get("ETag"), std::string(490, 'b'));
  EXPECT_EQ(detail::spare_header_strings(), before);
  fresh.add("Short", "inline");  // within the string's own buffer: no spare taken
  EXPECT_EQ(*fresh.get("Short"), "inline");
  EXPECT_EQ(detail::spare_header_strings(), before);
}

TEST(HTTPHeadersTest, KeepsABoundedNumberOfSmallSpareStrings) {
  if (!kRecycled) GTEST_SKIP() << "no reuse under sanitizers";
  {
    HTTPHeaders many;
    for (int i = 0; i < 200; ++i) many.add("X-Long-Header-Name", std::string(100, 'v'));
  }
  EXPECT_LE(detail::spare_header_strings(), 32u);
  std::size_t before = detail::spare_header_strings();
  {
    HTTPHeaders huge;
    huge.add("X", std::string(64 * 1024, 'v'));  // never kept: it would pin 64 KiB
  }
  EXPECT_EQ(detail::spare_header_strings(), before);
}

}  // namespace
}  // namespace tronada
