// The proxy's DNS discovery options (resolve_interval, resolver) in the config file.
#include <gtest/gtest.h>

#include "cli/config.h"
#include "support/config_error.h"

namespace tronada::cli {
namespace {

TEST(ConfigResolve, ReadsIntervalAndResolver) {
  Config c = parse_config(R"(
[[route]]
[route.proxy]
to = ["http://app.internal:8080"]
resolve_interval = "5s"
resolver = "127.0.0.1:5353"
)",
                          "t.toml");
  const auto& b = std::get<ProxyBackend>(c.routes.at(0).backend);
  EXPECT_EQ(b.resolve_interval, std::chrono::seconds(5));
  EXPECT_EQ(b.resolver, "127.0.0.1:5353");
  std::string effective = format_config(c);
  EXPECT_NE(effective.find("resolve_interval = \"5s\""), std::string::npos) << effective;
  EXPECT_NE(effective.find("resolver = \"127.0.0.1:5353\""), std::string::npos) << effective;
}

TEST(ConfigResolve, DefaultsToNoDiscovery) {
  Config c = parse_config("[[route]]\nproxy.to = \"http://app.internal:8080\"\n", "t.toml");
  const auto& b = std::get<ProxyBackend>(c.routes.at(0).backend);
  EXPECT_EQ(b.resolve_interval.count(), 0);
  EXPECT_EQ(b.resolver, "");
}

TEST(ConfigResolve, RejectsAResolverThatIsNotAnAddress) {
  EXPECT_EQ(error_of("[[route]]\nproxy.to = \"http://a\"\nproxy.resolver = \"dns.example\"\n"),
            "t.toml:3:18: resolver 'dns.example': the DNS server must be an IP address");
}

}  // namespace
}  // namespace tronada::cli
