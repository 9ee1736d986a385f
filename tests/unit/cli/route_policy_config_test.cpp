// The `rate_limit` and `cors` keys of a [[route]]: what they parse to, and a clear error
// for every malformed input.
#include <gtest/gtest.h>

#include "cli/config.h"
#include "support/config_error.h"

namespace tronada::cli {
namespace {

std::string route_with(std::string_view policy) {
  return "[[route]]\npath = \"/\"\n" + std::string(policy) + "\nstatic = { root = \"public\" }\n";
}

TEST(RoutePolicyConfig, RateLimitFull) {
  Config c = parse_config(
      route_with(
          R"(rate_limit = { requests = 100, per = "1s", key = "header:X-Api-Key", store = "redis://127.0.0.1:6380", on_store_error = "deny", max_keys = 50, timeout = "20ms" })"),
      "t.toml");
  ASSERT_TRUE(c.routes[0].rate_limit);
  const RateLimitOptions& r = *c.routes[0].rate_limit;
  EXPECT_EQ(r.requests, 100);
  EXPECT_EQ(r.per, std::chrono::seconds(1));
  EXPECT_EQ(r.key, "header:X-Api-Key");
  EXPECT_EQ(r.store, "redis://127.0.0.1:6380");
  EXPECT_FALSE(r.allow_on_store_error);
  EXPECT_EQ(r.max_keys, 50u);
  EXPECT_EQ(r.timeout, std::chrono::milliseconds(20));
  // format_config writes it back in a form that parses to the same.
  Config again = parse_config(format_config(c), "again.toml");
  ASSERT_TRUE(again.routes[0].rate_limit);
  EXPECT_EQ(again.routes[0].rate_limit->store, r.store);
  EXPECT_EQ(again.routes[0].rate_limit->per, r.per);
}

TEST(RoutePolicyConfig, RateLimitDefaults) {
  Config c = parse_config(route_with("rate_limit = { requests = 5 }"), "t.toml");
  const RateLimitOptions& r = *c.routes[0].rate_limit;
  EXPECT_EQ(r.per, std::chrono::seconds(1));
  EXPECT_EQ(r.key, "remote_ip");
  EXPECT_EQ(r.store, "memory");
  EXPECT_TRUE(r.allow_on_store_error);
}

TEST(RoutePolicyConfig, RateLimitErrors) {
  struct Case {
    const char* policy;
    const char* message;
  };
  for (const Case& c : {
           Case{"rate_limit = { per = \"1s\" }", "rate_limit needs requests"},
           Case{"rate_limit = { requests = 0 }", "requests must be at least 1"},
           Case{"rate_limit = { requests = \"many\" }", "requests must be an integer"},
           Case{"rate_limit = { requests = 1, per = \"0s\" }", "per must be at least 1ms"},
           Case{"rate_limit = { requests = 1, per = \"soon\" }", "is not a duration"},
           Case{"rate_limit = { requests = 1, key = \"cookie:x\" }",
                "key must be \"remote_ip\" or \"header:NAME\""},
           Case{"rate_limit = { requests = 1, key = \"header:\" }", "key must be"},
           Case{"rate_limit = { requests = 1, store = \"memcached://x\" }",
                "store must be \"memory\" or \"redis://HOST:PORT\""},
           Case{"rate_limit = { requests = 1, store = \"redis://h:99999\" }", "bad port"},
           Case{"rate_limit = { requests = 1, store = \"redis://u:p@h:1\" }", "no path, user"},
           Case{"rate_limit = { requests = 1, on_store_error = \"maybe\" }",
                "on_store_error must be \"allow\" or \"deny\""},
           Case{"rate_limit = { requests = 1, max_keys = 0 }", "max_keys must be at least 1"},
           Case{"rate_limit = { requests = 1, timeout = \"0ms\" }", "timeout must be at least"},
           Case{"rate_limit = { requests = 1, burst = 5 }", "unknown key 'burst' in rate_limit"},
           Case{"rate_limit = 100", "rate_limit must be a table"},
       }) {
    std::string e = error_of(route_with(c.policy));
    EXPECT_NE(e.find(c.message), std::string::npos) << c.policy << " -> " << e;
    EXPECT_EQ(e.rfind("t.toml:", 0), 0u) << e;  // names the place
  }
}

TEST(RoutePolicyConfig, CorsFull) {
  Config c = parse_config(
      route_with(
          R"(cors = { origins = ["https://a.example"], methods = ["GET", "PUT"], headers = ["X-Token"], expose_headers = ["X-Id"], credentials = true, max_age = "10m" })"),
      "t.toml");
  ASSERT_TRUE(c.routes[0].cors);
  const CorsOptions& o = *c.routes[0].cors;
  EXPECT_EQ(o.origins, std::vector<std::string>{"https://a.example"});
  EXPECT_EQ(o.methods, (std::vector<std::string>{"GET", "PUT"}));
  EXPECT_EQ(o.headers, std::vector<std::string>{"X-Token"});
  EXPECT_EQ(o.expose_headers, std::vector<std::string>{"X-Id"});
  EXPECT_TRUE(o.credentials);
  EXPECT_EQ(o.max_age, std::chrono::seconds(600));
  Config again = parse_config(format_config(c), "again.toml");
  ASSERT_TRUE(again.routes[0].cors);
  EXPECT_EQ(again.routes[0].cors->max_age, std::chrono::seconds(600));
  EXPECT_TRUE(again.routes[0].cors->credentials);
}

TEST(RoutePolicyConfig, CorsErrors) {
  struct Case {
    const char* policy;
    const char* message;
  };
  for (const Case& c : {
           Case{"cors = { methods = [\"GET\"] }", "cors needs origins"},
           Case{"cors = { origins = [] }", "cors needs origins"},
           Case{"cors = { origins = [\"a.example\"] }", "must be scheme://host[:port]"},
           Case{"cors = { origins = [\"https://a.example/app\"] }", "(no path)"},
           Case{"cors = { origins = [\"*\", \"https://a.example\"] }", "list it alone"},
           Case{"cors = { origins = [\"https://a.*.example\"] }", "'*' only stands for"},
           Case{"cors = { origins = [\"*\"], methods = [\"*\"], credentials = true }",
                "\"*\" in methods is no wildcard with credentials = true"},
           Case{"cors = { origins = [\"*\"], headers = [\"*\"], credentials = true }",
                "\"*\" in headers"},
           Case{"cors = { origins = [\"*\"], credentials = \"yes\" }",
                "credentials must be true or false"},
           Case{"cors = { origins = [\"*\"], max_age = \"forever\" }", "is not a duration"},
           Case{"cors = { origins = [1] }", "origins must be a string"},
           Case{"cors = { origins = [\"*\"], allow = true }", "unknown key 'allow' in cors"},
       }) {
    std::string e = error_of(route_with(c.policy));
    EXPECT_NE(e.find(c.message), std::string::npos) << c.policy << " -> " << e;
    EXPECT_EQ(e.rfind("t.toml:", 0), 0u) << e;
  }
}

}  // namespace
}  // namespace tronada::cli
