#include "cli/config.h"

#include <gtest/gtest.h>

#include "cli/route_table.h"
#include "support/config_error.h"
#include "tronada/web/request_handler.h"
#include "tronada/web/routing.h"

namespace tronada::cli {
namespace {

TEST(Config, FullExample) {
  Config c = parse_config(R"(
[server]
bind = ["127.0.0.1:9000", "unix:/tmp/t.sock"]
workers = 2
max_body_size = "10MiB"
idle_timeout = "5s"
header_timeout = 30
write_timeout = "1500ms"
access_log = "off"
access_log_format = "json"
log_level = "debug"

[[route]]
host = "*.example.com"
path = "/static/"
static = { root = "public", max_age = 60 }

[[route]]
path = "/old"
[route.redirect]
to = "https://example.com{uri}"
status = 301

[[route]]
path = "/"
wsgi.app = "app:application"
wsgi.threads = 8
)",
                          "t.toml");
  ASSERT_EQ(c.server.binds.size(), 2u);
  EXPECT_EQ(c.server.binds[0].port, 9000);
  EXPECT_EQ(c.server.workers, 2);
  EXPECT_EQ(c.server.max_body_size, 10u * 1024 * 1024);
  EXPECT_EQ(c.server.idle_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c.server.header_timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.server.write_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(c.server.access_log, "off");
  EXPECT_EQ(c.server.access_log_format, AccessLogFormat::json);
  EXPECT_EQ(c.server.log_level, log::Level::debug);
  ASSERT_EQ(c.routes.size(), 3u);
  EXPECT_EQ(c.routes[0].host, "*.example.com");
  EXPECT_EQ(std::get<StaticBackend>(c.routes[0].backend).root, "public");
  EXPECT_EQ(std::get<StaticBackend>(c.routes[0].backend).max_age, 60);
  EXPECT_EQ(std::get<RedirectBackend>(c.routes[1].backend).status, 301);
  EXPECT_EQ(std::get<WSGIBackend>(c.routes[2].backend).threads, 8);
  EXPECT_EQ(c.routes[1].where, "t.toml:18:1");

  // What check prints reads back to the same config.
  Config again = parse_config(format_config(c), "again.toml");
  EXPECT_EQ(format_config(again), format_config(c));
}

TEST(Config, StaticCacheSettings) {
  Config c = parse_config(R"(
[[route]]
path = "/"
[route.static]
root = "public"
precompressed = true
cache_valid = "250ms"
cache_entries = 10
cache_file_size = "16KiB"
cache_memory = "1MiB"
)",
                          "t.toml");
  const auto& b = std::get<StaticBackend>(c.routes[0].backend);
  EXPECT_TRUE(b.precompressed);
  EXPECT_EQ(b.cache_valid, std::chrono::milliseconds(250));
  EXPECT_EQ(b.cache_entries, 10u);
  EXPECT_EQ(b.cache_file_size, 16u * 1024);
  EXPECT_EQ(b.cache_memory, 1024u * 1024);
  StaticFileOptions o = static_file_options(b);
  EXPECT_TRUE(o.precompressed);
  EXPECT_EQ(o.cache_valid, std::chrono::milliseconds(250));
  EXPECT_EQ(o.cache_entries, 10u);
  EXPECT_EQ(o.cache_file_size, 16u * 1024);
  EXPECT_EQ(o.cache_memory, 1024u * 1024);
  // Unset keeps the library's defaults.
  StaticFileOptions d = static_file_options(StaticBackend{});
  EXPECT_EQ(d.cache_valid, StaticFileOptions{}.cache_valid);
  EXPECT_FALSE(d.precompressed);
  Config again = parse_config(format_config(c), "again.toml");
  EXPECT_EQ(format_config(again), format_config(c));

  EXPECT_EQ(
      error_of("[[route]]\npath = \"/\"\nstatic.root = \"r\"\nstatic.cache_valid = \"soon\"\n"),
      "t.toml:4:22: cache_valid: 'soon' is not a duration (e.g. \"500ms\", \"30s\", \"5m\")");
  EXPECT_EQ(error_of("[[route]]\npath = \"/\"\nstatic.root = \"r\"\nstatic.cache_entries = -1\n"),
            "t.toml:4:24: cache_entries must not be negative");
  EXPECT_EQ(
      error_of("[[route]]\npath = \"/\"\nstatic.root = \"r\"\nstatic.cache_memory = \"lots\"\n"),
      "t.toml:4:23: cache_memory: invalid size 'lots': expected a whole number of bytes with an "
      "optional unit, as in 4096, 512KiB, 1MiB, 10MB or 1m");
  EXPECT_EQ(error_of("[[route]]\npath = \"/\"\nstatic.root = \"r\"\nstatic.precompressed = 1\n"),
            "t.toml:4:24: precompressed must be true or false, not an integer");
}

TEST(Config, EmptyFileIsValid) {
  Config c = parse_config("", "t.toml");
  EXPECT_TRUE(c.routes.empty());
  EXPECT_EQ(c.server.workers, 1);
}

TEST(Config, ErrorsNameFileLineAndColumn) {
  EXPECT_EQ(error_of("[server]\nworkrs = 2\n"), "t.toml:2:1: unknown key 'workrs' in [server]");
  EXPECT_EQ(error_of("[server]\nworkers = \"two\"\n"),
            "t.toml:2:11: workers must be an integer, not a string");
  EXPECT_EQ(error_of("[server]\nworkers = 0\n"), "t.toml:2:11: workers must be between 1 and 1024");
  EXPECT_EQ(error_of("[[route]]\npath = \"/\"\n[route.static]\nroot = \"x\"\nindx = \"a\"\n"),
            "t.toml:5:1: unknown key 'indx' in [route.static]");
  EXPECT_EQ(error_of("[[route]]\npath = \"/\"\n"),
            "t.toml:1:1: a route needs a backend: static, redirect, wsgi, fastcgi or proxy");
  EXPECT_EQ(error_of("[[route]]\npath = \"x\"\nstatic.root = \"r\"\n"),
            "t.toml:2:8: path must start with '/'");
  EXPECT_EQ(error_of("[[route]]\nstatic.root = \"r\"\nproxy.to = \"http://a\"\n"),
            "t.toml:3:1: a route names one backend; this one names several");
  EXPECT_EQ(error_of("[[route]]\nproxy.to = \"ftp://a\"\n"),
            "t.toml:2:12: to: invalid URL 'ftp://a': unsupported scheme ftp");
  EXPECT_EQ(error_of("[[route]]\nwsgi.app = \"app\"\n"),
            "t.toml:2:12: app must be MODULE:CALLABLE, e.g. \"myproject.wsgi:application\"");
  EXPECT_EQ(error_of("[server]\nidle_timeout = \"5 parsecs\"\n"),
            "t.toml:2:16: idle_timeout: '5 parsecs': unknown unit ' parsecs' (ms, s, m or h)");
  EXPECT_EQ(error_of("route = 3\n"),
            "t.toml:1:9: route must be an array of tables: write each as [[route]]");
  EXPECT_EQ(error_of("[server]\nmax_body_size = \"1 lightyear\"\n").substr(0, 28),
            "t.toml:2:17: max_body_size: ");
  EXPECT_EQ(error_of("[server]\nbind = \"nonsense:port\"\n").substr(0, 18), "t.toml:2:8: bind: ");
  EXPECT_EQ(error_of("[server.tls]\ncert = \"c.pem\"\n"),
            "t.toml:1:1: [server.tls] needs both cert and key");
}

TEST(Config, UpgradeTimeout) {
  EXPECT_EQ(parse_config("", "t.toml").server.upgrade_timeout, std::chrono::seconds(30));
  Config c = parse_config("[server]\nupgrade_timeout = \"5s\"\n", "t.toml");
  EXPECT_EQ(c.server.upgrade_timeout, std::chrono::seconds(5));
  EXPECT_EQ(error_of("[server]\nupgrade_timeout = \"soon\"\n").substr(0, 36),
            "t.toml:2:19: upgrade_timeout: 'soon'");
  // What `tronada check -v` prints parses back to the same value.
  EXPECT_EQ(parse_config(format_config(c), "t.toml").server.upgrade_timeout,
            std::chrono::seconds(5));
}

TEST(Config, WSGIMaxWait) {
  Config c = parse_config(
      "[[route]]\npath = \"/\"\n[route.wsgi]\napp = \"a:b\"\nmax_wait = \"250ms\"\n", "t.toml");
  EXPECT_EQ(std::get<WSGIBackend>(c.routes.at(0).backend).max_wait, std::chrono::milliseconds(250));
  EXPECT_EQ(
      std::get<WSGIBackend>(parse_config(format_config(c), "t.toml").routes.at(0).backend).max_wait,
      std::chrono::milliseconds(250));
  EXPECT_EQ(
      error_of("[[route]]\npath = \"/\"\n[route.wsgi]\napp = \"a:b\"\nmax_wait = \"a while\"\n")
          .substr(0, 32),
      "t.toml:5:12: max_wait: 'a while'");
}

TEST(Config, FastCGICaps) {
  const std::string head =
      "[[route]]\npath = \"/\"\n[route.fastcgi]\nto = \"unix:/f\"\nroot = \"/r\"\n";
  Config c = parse_config(head +
                              "max_connections = 3\nconnect_timeout = \"2s\"\n"
                              "read_timeout = \"90s\"\nmax_wait = \"750ms\"\n",
                          "t.toml");
  auto check = [](const Config& config) {
    const auto& b = std::get<FastCGIBackend>(config.routes.at(0).backend);
    EXPECT_EQ(b.max_connections, 3u);
    EXPECT_EQ(b.connect_timeout, std::chrono::seconds(2));
    EXPECT_EQ(b.read_timeout, std::chrono::seconds(90));
    EXPECT_EQ(b.max_wait, std::chrono::milliseconds(750));
  };
  check(c);
  check(parse_config(format_config(c), "t.toml"));
  Config defaults = parse_config(head, "t.toml");  // kept: d refers into it
  const auto& d = std::get<FastCGIBackend>(defaults.routes.at(0).backend);
  EXPECT_EQ(d.max_connections, 5u);
  EXPECT_EQ(d.max_wait, std::chrono::milliseconds(0));
  EXPECT_EQ(error_of(head + "max_connections = 0\n"),
            "t.toml:6:19: max_connections must be between 1 and 65536");
  EXPECT_EQ(error_of(head + "max_connections = \"many\"\n"),
            "t.toml:6:19: max_connections must be an integer, not a string");
  EXPECT_EQ(error_of(head + "max_wait = \"later\"\n").substr(0, 30),
            "t.toml:6:12: max_wait: 'later'");
}

TEST(Config, SyntaxErrorsNamePlace) {
  std::string e = error_of("[server\nworkers = 1\n");
  EXPECT_EQ(e.rfind("t.toml:1:", 0), 0u) << e;
  e = error_of("[server]\nworkers = 1\nworkers = 2\n");
  EXPECT_EQ(e.rfind("t.toml:3:", 0), 0u) << e;
}

TEST(Config, Durations) {
  EXPECT_EQ(parse_duration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(parse_duration("3"), std::chrono::seconds(3));
  EXPECT_EQ(parse_duration("2m"), std::chrono::minutes(2));
  EXPECT_EQ(parse_duration("1h"), std::chrono::hours(1));
  EXPECT_THROW(parse_duration(""), std::invalid_argument);
  EXPECT_THROW(parse_duration("-1s"), std::invalid_argument);
  EXPECT_THROW(parse_duration("s"), std::invalid_argument);
  EXPECT_THROW(parse_duration("1d"), std::invalid_argument);
}

TEST(RouteTable, PrefixPatterns) {
  HandlerFactory none = [] { return std::unique_ptr<RequestHandler>(); };
  Rule slash(prefix_pattern("/static/"), none);
  EXPECT_TRUE(slash.match("/static/a/b.css"));
  EXPECT_EQ(slash.match("/static/a/b.css")->args.at(0), "a/b.css");
  EXPECT_FALSE(slash.match("/static"));
  Rule bare(prefix_pattern("/app"), none);
  EXPECT_TRUE(bare.match("/app"));
  EXPECT_TRUE(bare.match("/app/x"));
  EXPECT_FALSE(bare.match("/apple"));
  Rule root(prefix_pattern("/"), none);
  EXPECT_TRUE(root.match("/anything/at/all"));
  Rule dots(prefix_pattern("/a.b/"), none);
  EXPECT_FALSE(dots.match("/aXb/c"));
  EXPECT_EQ(host_pattern(""), ".*");
  EXPECT_EQ(host_pattern("*.example.com"), "[^.]+\\.example\\.com");
}

}  // namespace
}  // namespace tronada::cli
