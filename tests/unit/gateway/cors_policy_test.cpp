#include "tronada/gateway/cors_policy.h"

#include <gtest/gtest.h>

namespace tronada {
namespace {

CorsOptions listed() {
  CorsOptions o;
  o.origins = {"https://a.example", "http://b.example:8080"};
  o.methods = {"GET", "PUT", "DELETE"};
  o.headers = {"X-Token", "Content-Type"};
  o.expose_headers = {"X-Request-Id"};
  o.max_age = std::chrono::seconds(600);
  return o;
}

std::string field(const CorsAnswer& a, std::string_view name) {
  return std::string(a.fields.get(name).value_or("<none>"));
}

TEST(CorsPolicy, DetectsPreflights) {
  HTTPHeaders h;
  h.add("Origin", "https://a.example");
  EXPECT_FALSE(CorsPolicy::is_preflight("OPTIONS", h));
  h.add("Access-Control-Request-Method", "PUT");
  EXPECT_TRUE(CorsPolicy::is_preflight("OPTIONS", h));
  EXPECT_FALSE(CorsPolicy::is_preflight("GET", h));
}

TEST(CorsPolicy, PreflightFromAListedOrigin) {
  CorsPolicy p(listed());
  CorsAnswer a = p.preflight("https://a.example", "PUT", "x-token, content-type");
  ASSERT_TRUE(a.allowed);
  EXPECT_EQ(field(a, "Access-Control-Allow-Origin"), "https://a.example");
  EXPECT_EQ(field(a, "Access-Control-Allow-Methods"), "GET, PUT, DELETE");
  EXPECT_EQ(field(a, "Access-Control-Allow-Headers"), "x-token, content-type");
  EXPECT_EQ(field(a, "Access-Control-Max-Age"), "600");
  EXPECT_EQ(field(a, "Access-Control-Allow-Credentials"), "<none>");
  ASSERT_FALSE(a.vary.empty());
  EXPECT_EQ(a.vary[0], "Origin");
  // Scheme and host compare case-insensitively.
  EXPECT_TRUE(p.preflight("HTTPS://A.EXAMPLE", "GET", "").allowed);
}

TEST(CorsPolicy, PreflightRefusals) {
  CorsPolicy p(listed());
  EXPECT_FALSE(p.preflight("https://evil.example", "GET", "").allowed);
  EXPECT_FALSE(p.preflight("https://a.example:444", "GET", "").allowed);  // another origin
  EXPECT_FALSE(p.preflight("https://a.example", "PATCH", "").allowed);
  EXPECT_FALSE(p.preflight("https://a.example", "PUT", "x-token, x-other").allowed);
  CorsAnswer a = p.preflight("https://evil.example", "GET", "");
  EXPECT_TRUE(a.fields.empty());
  ASSERT_EQ(a.vary.size(), 1u);  // still depends on Origin
  // Safelisted methods pass without being listed.
  CorsOptions o = listed();
  o.methods = {"PUT"};
  EXPECT_TRUE(CorsPolicy(o).preflight("https://a.example", "POST", "").allowed);
}

TEST(CorsPolicy, AnyOriginWithoutCredentialsAnswersStar) {
  CorsOptions o;
  o.origins = {"*"};
  o.methods = {"*"};
  o.headers = {"*"};
  CorsPolicy p(o);
  EXPECT_FALSE(p.varies_on_origin());
  CorsAnswer a = p.preflight("https://x.example", "PATCH", "x-anything");
  ASSERT_TRUE(a.allowed);
  EXPECT_EQ(field(a, "Access-Control-Allow-Origin"), "*");
  EXPECT_EQ(field(a, "Access-Control-Allow-Methods"), "*");
  EXPECT_EQ(field(a, "Access-Control-Allow-Headers"), "x-anything");
  // The header wildcard never covers Authorization (Fetch).
  EXPECT_FALSE(p.preflight("https://x.example", "GET", "authorization").allowed);
  CorsAnswer actual = p.actual(std::string_view("https://x.example"));
  EXPECT_EQ(field(actual, "Access-Control-Allow-Origin"), "*");
  EXPECT_TRUE(actual.vary.empty());
}

TEST(CorsPolicy, CredentialsNeverAnswerStar) {
  CorsOptions o;
  o.origins = {"*"};
  o.credentials = true;
  CorsPolicy p(o);
  EXPECT_TRUE(p.varies_on_origin());
  CorsAnswer a = p.actual(std::string_view("https://x.example"));
  EXPECT_EQ(field(a, "Access-Control-Allow-Origin"), "https://x.example");
  EXPECT_EQ(field(a, "Access-Control-Allow-Credentials"), "true");
  ASSERT_EQ(a.vary.size(), 1u);
  EXPECT_EQ(a.vary[0], "Origin");
}

TEST(CorsPolicy, WildcardsWithCredentialsAreRefused) {
  for (auto set :
       {+[](CorsOptions& o) { o.methods = {"*"}; }, +[](CorsOptions& o) { o.headers = {"*"}; },
        +[](CorsOptions& o) { o.expose_headers = {"*"}; }}) {
    CorsOptions o = listed();
    o.credentials = true;
    set(o);
    EXPECT_THROW(CorsPolicy{o}, std::invalid_argument);
  }
}

TEST(CorsPolicy, BadOriginsAreRefused) {
  for (const char* bad : {"a.example", "https://a.example/", "https://a.example/path", "https://",
                          "https://u@a.example"}) {
    CorsOptions o;
    o.origins = {bad};
    EXPECT_THROW(CorsPolicy{o}, std::invalid_argument) << bad;
  }
  CorsOptions o;
  o.origins = {"*", "https://a.example"};
  EXPECT_THROW(CorsPolicy{o}, std::invalid_argument);
  o.origins = {};
  EXPECT_THROW(CorsPolicy{o}, std::invalid_argument);
  o.origins = {"null"};
  EXPECT_NO_THROW(CorsPolicy{o});
}

TEST(CorsPolicy, SubdomainPatterns) {
  CorsOptions o;
  o.origins = {"https://*.example.com", "http://*.dev.example:8080"};
  CorsPolicy p(o);
  EXPECT_TRUE(p.origin_allowed("https://app.example.com"));
  EXPECT_TRUE(p.origin_allowed("https://a.b.example.com"));
  EXPECT_TRUE(p.origin_allowed("HTTPS://APP.EXAMPLE.COM"));
  EXPECT_FALSE(p.origin_allowed("https://example.com"));          // no label before it
  EXPECT_FALSE(p.origin_allowed("https://evil-example.com"));     // not a subdomain
  EXPECT_FALSE(p.origin_allowed("http://app.example.com"));       // another scheme
  EXPECT_FALSE(p.origin_allowed("https://app.example.com:444"));  // another port
  EXPECT_TRUE(p.origin_allowed("http://x.dev.example:8080"));
  EXPECT_FALSE(p.origin_allowed("http://x.dev.example"));
  // The answer echoes the origin, never the pattern.
  CorsAnswer a = p.actual(std::string_view("https://app.example.com"));
  EXPECT_EQ(field(a, "Access-Control-Allow-Origin"), "https://app.example.com");
  for (const char* bad : {"https://*", "https://a.*.example.com", "https://*example.com"}) {
    CorsOptions b;
    b.origins = {bad};
    EXPECT_THROW(CorsPolicy{b}, std::invalid_argument) << bad;
  }
}

TEST(CorsPolicy, ActualRequests) {
  CorsPolicy p(listed());
  CorsAnswer a = p.actual(std::string_view("https://a.example"));
  ASSERT_TRUE(a.allowed);
  EXPECT_EQ(field(a, "Access-Control-Allow-Origin"), "https://a.example");
  EXPECT_EQ(field(a, "Access-Control-Expose-Headers"), "X-Request-Id");
  // No Origin, or another one: no CORS fields, but Vary: Origin all the same.
  for (std::optional<std::string_view> origin :
       {std::optional<std::string_view>(), std::optional<std::string_view>("https://c.example")}) {
    CorsAnswer none = p.actual(origin);
    EXPECT_FALSE(none.allowed);
    EXPECT_TRUE(none.fields.empty());
    ASSERT_EQ(none.vary.size(), 1u);
  }
}

}  // namespace
}  // namespace tronada
