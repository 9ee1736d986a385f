// The TOML configuration of `tronada serve` and `tronada check`: one [server] table and an
// ordered list of [[route]] tables, each naming one backend.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cli/bind_address.h"
#include "cli/rate_limit_options.h"
#include "tronada/base/log.h"
#include "tronada/gateway/cors_policy.h"

namespace tronada::cli {

/// A config that cannot be used. what() is "FILE:LINE:COLUMN: message", the form editors
/// and compilers use, so a typo can be found without reading the whole file.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Where the access log goes and how its lines look.
enum class AccessLogFormat { common, combined, json };

/// [server.tls]: the default certificate, more chosen by SNI, and client certificates.
struct TLSConfig {
  std::string cert_file;
  std::string key_file;
  /// [server.tls.sni."NAME"] tables (cert, key), NAME exact or "*.example.com".
  std::map<std::string, std::pair<std::string, std::string>> sni;  // name -> (cert, key)
  std::string client_ca;  // verify client certificates against these CAs; empty: don't
};

struct ServerConfig {
  std::vector<BindAddress> binds;  // empty: the command's default
  int workers = 1;
  /// Unset: each backend's own default (1 MiB for native and static, none for gateways).
  std::optional<std::uint64_t> max_body_size;
  std::uint64_t max_header_size = 64 * 1024;
  std::size_t max_connections = 0;
  std::chrono::milliseconds idle_timeout{75'000};
  std::chrono::milliseconds header_timeout{60'000};
  std::chrono::milliseconds body_timeout{60'000};
  std::chrono::milliseconds write_timeout{60'000};
  std::chrono::milliseconds shutdown_timeout{30'000};
  /// On SIGTERM, how long to go on serving with /readyz at 503 before the drain closes
  /// anything (Kubernetes' preStop pattern: load balancers stop sending first).
  std::chrono::milliseconds drain_delay{0};
  /// On SIGUSR2 (binary upgrade), how long the new binary may take to serve before the
  /// old master stops it and goes on serving.
  std::chrono::milliseconds upgrade_timeout{30'000};
  /// The admin listener (/metrics, /healthz, /readyz); off when unset.
  std::optional<BindAddress> admin;
  std::string access_log = "-";  // a path, "-" for stdout, "off"
  AccessLogFormat access_log_format = AccessLogFormat::combined;
  std::string error_log = "-";  // a path, or "-" for stderr
  std::optional<log::Level> log_level;
  std::optional<log::Format> log_format;
  bool xheaders = false;
  bool http2 = true;  // h2 by ALPN, h2c by prior knowledge and Upgrade
  std::optional<TLSConfig> tls;
};

struct StaticBackend {
  std::string root;
  std::string index = "index.html";
  std::optional<std::int64_t> max_age;
  bool precompressed = false;  // serve file.br / file.gz to clients that take them
  // The open-file cache (StaticFileOptions); unset keeps the library's defaults.
  std::optional<std::chrono::milliseconds> cache_valid;
  std::optional<std::uint64_t> cache_entries;
  std::optional<std::uint64_t> cache_file_size;
  std::optional<std::uint64_t> cache_memory;
};
struct RedirectBackend {
  std::string to;  // absolute or root-relative; "$path" is replaced by the request's path
  int status = 302;
};
struct WSGIBackend {
  std::string app;  // MODULE:CALLABLE
  int threads = 4;
  std::chrono::milliseconds max_wait{0};  // 0: none
  std::string chdir;
  std::vector<std::string> pythonpath;
};
struct FastCGIBackend {
  std::string to;  // ADDR
  std::string root;
  std::string index = "index.php";
  std::size_t max_connections = 5;  // to the responder; more requests queue
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds read_timeout{60'000};
  std::chrono::milliseconds max_wait{0};  // queued longer: 503; 0: connect_timeout bounds it
  // A HOST:PORT `to` looked up again this often (0: resolved at each connect).
  std::chrono::milliseconds resolve_interval{0};
  std::string resolver;  // DNS servers for those lookups; empty: /etc/resolv.conf
};
struct ProxyBackend {
  std::vector<std::string> to;         // URLs: http://, https:// or unix:PATH
  std::string policy = "round_robin";  // or "least_conn"
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds read_timeout{60'000};
  std::int64_t max_fails = 1;
  std::chrono::milliseconds fail_timeout{10'000};
  std::string health_uri;  // empty: passive health checks only
  std::chrono::milliseconds health_interval{10'000};
  // Per check; 0: min(5 s, health_interval).
  std::chrono::milliseconds health_timeout{0};
  bool preserve_host = true;
  std::string ca_file;  // CAs for https:// upstreams; empty: the system's
  // Host names in `to` looked up again this often (0: resolved at each connect, as before).
  std::chrono::milliseconds resolve_interval{0};
  std::string resolver;  // DNS servers for those lookups; empty: /etc/resolv.conf
};

using Backend =
    std::variant<StaticBackend, RedirectBackend, WSGIBackend, FastCGIBackend, ProxyBackend>;

/// One [[route]]: requests whose Host matches `host` (if set) and whose path starts with
/// `path` go to `backend`. The first matching route wins, in file order.
struct RouteConfig {
  std::string host;           // empty: any host; "*.example.com" matches subdomains
  std::string path = "/";     // prefix, always starting with '/'
  bool strip_prefix = false;  // remove `path` before the backend sees the request
  Backend backend;
  /// Policies in front of the backend (RoutePolicy): `rate_limit = {...}`, `cors = {...}`.
  std::optional<RateLimitOptions> rate_limit;
  std::optional<CorsOptions> cors;
  std::string where;  // "FILE:LINE:COLUMN" of the table, for messages at start-up
};

/// [app]: how `tronada run` builds and starts a native app (the program gets the
/// listening sockets by socket activation). `serve` and `check` only validate it.
struct AppConfig {
  std::string build;                 // "cmake", or empty: nothing to build
  std::vector<std::string> command;  // program and arguments; relative to the file's folder
  std::vector<std::string> watch;    // what `run --reload` watches (files or folders)
  std::string where;                 // "FILE:LINE:COLUMN" of the table
};

struct Config {
  std::string file;  // where it was read from; empty for the built-in default
  ServerConfig server;
  std::vector<RouteConfig> routes;
  std::optional<AppConfig> app;
};

/// Reads and validates a config file. Unknown keys, wrong types, bad values and routes
/// with no or several backends throw ConfigError naming the place.
Config load_config(const std::string& path);
/// Same, from text (tests; `source_name` stands in for the file name in messages).
Config parse_config(std::string_view text, const std::string& source_name);

/// The effective config as TOML, every default spelled out (`tronada check` prints it).
std::string format_config(const Config& config);

/// The name of a backend as written in the file ("static", "wsgi", ...).
std::string_view backend_name(const Backend& backend);

/// "75s", "500ms", "2m", "1h" or a bare number of seconds.
std::chrono::milliseconds parse_duration(std::string_view text);

}  // namespace tronada::cli
