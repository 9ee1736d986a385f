// The proxy's active health check options (health_uri, health_interval, health_timeout)
// in the config file.
#include <gtest/gtest.h>

#include "cli/config.h"
#include "support/config_error.h"

namespace tronada::cli {
namespace {

TEST(ConfigHealth, ReadsTimeoutAndPrintsIt) {
  Config c = parse_config(R"(
[[route]]
[route.proxy]
to = ["http://127.0.0.1:8080"]
health_uri = "/health"
health_interval = "2s"
health_timeout = "500ms"
)",
                          "t.toml");
  const auto& b = std::get<ProxyBackend>(c.routes.at(0).backend);
  EXPECT_EQ(b.health_interval, std::chrono::seconds(2));
  EXPECT_EQ(b.health_timeout, std::chrono::milliseconds(500));
  std::string effective = format_config(c);
  EXPECT_NE(effective.find("health_timeout = \"500ms\""), std::string::npos) << effective;
  EXPECT_EQ(parse_config(effective, "effective.toml").routes.size(), 1u);
}

TEST(ConfigHealth, TimeoutDefaultsToZeroMeaningDerived) {
  Config c =
      parse_config("[[route]]\nproxy.to = \"http://a\"\nproxy.health_uri = \"/h\"\n", "t.toml");
  const auto& b = std::get<ProxyBackend>(c.routes.at(0).backend);
  EXPECT_EQ(b.health_timeout.count(), 0);
  EXPECT_EQ(format_config(c).find("health_timeout"), std::string::npos);
}

TEST(ConfigHealth, RejectsZeroNegativeAndMalformedDurations) {
  EXPECT_EQ(error_of("[[route]]\nproxy.to = \"http://a\"\nproxy.health_timeout = \"0s\"\n"),
            "t.toml:3:24: health_timeout must be positive");
  EXPECT_EQ(error_of("[[route]]\nproxy.to = \"http://a\"\nproxy.health_timeout = -1\n"),
            "t.toml:3:24: health_timeout must not be negative");
  EXPECT_NE(error_of("[[route]]\nproxy.to = \"http://a\"\nproxy.health_timeout = \"soon\"\n"), "");
  EXPECT_NE(error_of("[[route]]\nproxy.to = \"http://a\"\nproxy.health_timeout = true\n"), "");
  EXPECT_EQ(error_of("[[route]]\nproxy.to = \"http://a\"\nproxy.health_interval = \"0s\"\n"),
            "t.toml:3:25: health_interval must be positive");
}

}  // namespace
}  // namespace tronada::cli
