#include "cli/config.h"

// toml++ 3.3.0 asserts in parse_key() on a key that starts with '{' ("[{") before it
// reports that very error properly (found by tests/fuzz/config_fuzz). With its asserts
// on (any build without NDEBUG: Debug, the sanitizer builds) a typo in a config would
// abort `tronada check`; its release behaviour, a ConfigError, is right in every build.
#define TOML_ASSERT(expr) static_cast<void>(0)
#include <toml++/toml.h>

#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "cli/byte_size.h"
#include "tronada/gateway/dns_resolver.h"
#include "tronada/gateway/upstream_group.h"

namespace tronada::cli {

namespace {

std::string place(const std::string& file, const toml::source_region& region) {
  return file + ":" + std::to_string(region.begin.line) + ":" + std::to_string(region.begin.column);
}

/// Reads one TOML table key by key, and at the end rejects every key nobody asked for:
/// a misspelt key ("max_body_sise") must fail loudly rather than be silently ignored.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string file, std::string name)
      : table_(table), file_(std::move(file)), name_(std::move(name)) {}

  [[noreturn]] void fail(const toml::node& node, const std::string& message) const {
    throw ConfigError(place(file_, node.source()) + ": " + message);
  }
  [[noreturn]] void fail_here(const std::string& message) const { fail(table_, message); }

  const toml::node* get(std::string_view key) {
    seen_.insert(std::string(key));
    return table_.get(key);
  }

  std::optional<std::string> string(std::string_view key) {
    const toml::node* n = get(key);
    if (!n) return std::nullopt;
    if (!n->is_string()) fail(*n, expected(key, "a string", *n));
    return n->as_string()->get();
  }
  std::optional<std::int64_t> integer(std::string_view key) {
    const toml::node* n = get(key);
    if (!n) return std::nullopt;
    if (!n->is_integer()) fail(*n, expected(key, "an integer", *n));
    return n->as_integer()->get();
  }
  std::optional<bool> boolean(std::string_view key) {
    const toml::node* n = get(key);
    if (!n) return std::nullopt;
    if (!n->is_boolean()) fail(*n, expected(key, "true or false", *n));
    return n->as_boolean()->get();
  }
  /// A string or an array of strings.
  std::optional<std::vector<std::string>> strings(std::string_view key) {
    const toml::node* n = get(key);
    if (!n) return std::nullopt;
    std::vector<std::string> out;
    if (n->is_string()) {
      out.push_back(n->as_string()->get());
    } else if (n->is_array()) {
      for (const toml::node& item : *n->as_array()) {
        if (!item.is_string()) fail(item, expected(key, "a string", item));
        out.push_back(item.as_string()->get());
      }
    } else {
      fail(*n, expected(key, "a string or an array of strings", *n));
    }
    return out;
  }
  /// "1MiB", "512KiB" or a number of bytes.
  std::optional<std::uint64_t> size(std::string_view key) {
    const toml::node* n = get(key);
    if (!n) return std::nullopt;
    if (n->is_integer()) {
      if (n->as_integer()->get() < 0) fail(*n, std::string(key) + " must not be negative");
      return static_cast<std::uint64_t>(n->as_integer()->get());
    }
    if (!n->is_string()) fail(*n, expected(key, "a size such as \"1MiB\"", *n));
    try {
      return parse_byte_size(n->as_string()->get());
    } catch (const std::exception& e) {
      fail(*n, std::string(key) + ": " + e.what());
    }
  }
  /// "75s", "500ms" or a number of seconds.
  std::optional<std::chrono::milliseconds> duration(std::string_view key) {
    const toml::node* n = get(key);
    if (!n) return std::nullopt;
    if (n->is_integer()) {
      if (n->as_integer()->get() < 0) fail(*n, std::string(key) + " must not be negative");
      return std::chrono::seconds(n->as_integer()->get());
    }
    if (!n->is_string()) fail(*n, expected(key, "a duration such as \"30s\"", *n));
    try {
      return parse_duration(n->as_string()->get());
    } catch (const std::exception& e) {
      fail(*n, std::string(key) + ": " + e.what());
    }
  }
  const toml::table* table(std::string_view key) {
    const toml::node* n = get(key);
    if (!n) return nullptr;
    if (!n->is_table()) fail(*n, expected(key, "a table", *n));
    return n->as_table();
  }

  /// Every key must have been asked for by now.
  void finish() const {
    for (auto&& [k, v] : table_) {
      if (!seen_.count(std::string(k.str()))) {
        throw ConfigError(place(file_, k.source()) + ": unknown key '" + std::string(k.str()) +
                          "' in " + name_);
      }
    }
  }

  const std::string& file() const { return file_; }

 private:
  static std::string type_name(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::string:
        return "a string";
      case toml::node_type::integer:
        return "an integer";
      case toml::node_type::floating_point:
        return "a float";
      case toml::node_type::boolean:
        return "a boolean";
      case toml::node_type::array:
        return "an array";
      case toml::node_type::table:
        return "a table";
      default:
        return "a date or time";
    }
  }
  static std::string expected(std::string_view key, std::string_view what, const toml::node& n) {
    return std::string(key) + " must be " + std::string(what) + ", not " + type_name(n);
  }

  const toml::table& table_;
  std::string file_;
  std::string name_;
  std::set<std::string> seen_;
};

void read_server(TableReader& r, ServerConfig& s) {
  if (auto binds = r.strings("bind")) {
    for (const std::string& b : *binds) {
      try {
        s.binds.push_back(parse_bind_address(b));
      } catch (const std::exception& e) {
        r.fail(*r.get("bind"), std::string("bind: ") + e.what());
      }
    }
  }
  if (auto w = r.integer("workers")) {
    if (*w < 1 || *w > 1024) r.fail(*r.get("workers"), "workers must be between 1 and 1024");
    s.workers = static_cast<int>(*w);
  }
  if (auto v = r.size("max_body_size")) s.max_body_size = *v;
  if (auto v = r.size("max_header_size")) {
    if (*v < 1024) r.fail(*r.get("max_header_size"), "max_header_size must be at least 1KiB");
    s.max_header_size = *v;
  }
  if (auto v = r.integer("max_connections")) {
    if (*v < 0) r.fail(*r.get("max_connections"), "max_connections must not be negative");
    s.max_connections = static_cast<std::size_t>(*v);
  }
  if (auto v = r.duration("idle_timeout")) s.idle_timeout = *v;
  if (auto v = r.duration("header_timeout")) s.header_timeout = *v;
  if (auto v = r.duration("body_timeout")) s.body_timeout = *v;
  if (auto v = r.duration("write_timeout")) s.write_timeout = *v;
  if (auto v = r.duration("shutdown_timeout")) s.shutdown_timeout = *v;
  if (auto v = r.duration("drain_delay")) s.drain_delay = *v;
  if (auto v = r.duration("upgrade_timeout")) s.upgrade_timeout = *v;
  if (auto v = r.string("admin")) {
    try {
      s.admin = parse_bind_address(*v);
    } catch (const std::exception& e) {
      r.fail(*r.get("admin"), std::string("admin: ") + e.what());
    }
    for (const BindAddress& b : s.binds) {
      if (b.to_string() == s.admin->to_string()) {
        r.fail(*r.get("admin"), "admin: " + *v + " is also a public bind address");
      }
    }
  }
  if (auto v = r.string("access_log")) s.access_log = *v;
  if (auto v = r.string("access_log_format")) {
    if (*v == "common") {
      s.access_log_format = AccessLogFormat::common;
    } else if (*v == "combined") {
      s.access_log_format = AccessLogFormat::combined;
    } else if (*v == "json") {
      s.access_log_format = AccessLogFormat::json;
    } else {
      r.fail(*r.get("access_log_format"),
             "access_log_format must be \"common\", \"combined\" or \"json\"");
    }
  }
  if (auto v = r.string("error_log")) s.error_log = *v;
  if (auto v = r.string("log_level")) {
    s.log_level = log::parse_level(*v);
    if (!s.log_level) {
      r.fail(*r.get("log_level"), "log_level must be debug, info, warning, error or critical");
    }
  }
  if (auto v = r.string("log_format")) {
    s.log_format = log::parse_format(*v);
    if (!s.log_format) r.fail(*r.get("log_format"), "log_format must be \"text\" or \"json\"");
  }
  if (auto v = r.boolean("xheaders")) s.xheaders = *v;
  if (auto v = r.boolean("http2")) s.http2 = *v;
  if (const toml::table* t = r.table("tls")) {
    TableReader tr(*t, r.file(), "[server.tls]");
    TLSConfig tls;
    tls.cert_file = tr.string("cert").value_or("");
    tls.key_file = tr.string("key").value_or("");
    if (tls.cert_file.empty() || tls.key_file.empty()) {
      tr.fail_here("[server.tls] needs both cert and key");
    }
    if (const toml::table* sni = tr.table("sni")) {
      for (auto&& [name, node] : *sni) {
        std::string table_name = "[server.tls.sni.\"" + std::string(name.str()) + "\"]";
        if (!node.is_table()) {
          throw ConfigError(place(r.file(), node.source()) + ": " + table_name +
                            " must be a table with cert and key");
        }
        TableReader nr(*node.as_table(), r.file(), table_name);
        auto cert = nr.string("cert");
        auto key = nr.string("key");
        if (!cert || cert->empty() || !key || key->empty()) {
          nr.fail_here(table_name + " needs both cert and key");
        }
        nr.finish();
        tls.sni[std::string(name.str())] = {*cert, *key};
      }
    }
    if (auto v = tr.string("client_ca")) tls.client_ca = *v;
    tr.finish();
    s.tls = tls;
  }
  r.finish();
}

Backend read_backend(std::string_view kind, const toml::table& t, const std::string& file) {
  TableReader r(t, file, "[route." + std::string(kind) + "]");
  auto require = [&r](std::optional<std::string> v, const char* key) {
    if (!v || v->empty()) r.fail_here(std::string("missing required key '") + key + "'");
    return *v;
  };
  if (kind == "static") {
    StaticBackend b;
    b.root = require(r.string("root"), "root");
    if (auto v = r.string("index")) b.index = *v;
    if (auto v = r.integer("max_age")) b.max_age = *v;
    if (auto v = r.boolean("precompressed")) b.precompressed = *v;
    b.cache_valid = r.duration("cache_valid");
    if (auto v = r.integer("cache_entries")) {
      if (*v < 0) r.fail(*r.get("cache_entries"), "cache_entries must not be negative");
      b.cache_entries = static_cast<std::uint64_t>(*v);
    }
    b.cache_file_size = r.size("cache_file_size");
    b.cache_memory = r.size("cache_memory");
    r.finish();
    return b;
  }
  if (kind == "redirect") {
    RedirectBackend b;
    b.to = require(r.string("to"), "to");
    if (auto v = r.integer("status")) {
      if (*v != 301 && *v != 302 && *v != 303 && *v != 307 && *v != 308) {
        r.fail(*r.get("status"), "status must be 301, 302, 303, 307 or 308");
      }
      b.status = static_cast<int>(*v);
    }
    r.finish();
    return b;
  }
  if (kind == "wsgi") {
    WSGIBackend b;
    b.app = require(r.string("app"), "app");
    if (b.app.find(':') == std::string::npos) {
      r.fail(*r.get("app"), "app must be MODULE:CALLABLE, e.g. \"myproject.wsgi:application\"");
    }
    if (auto v = r.integer("threads")) {
      if (*v < 1 || *v > 1024) r.fail(*r.get("threads"), "threads must be between 1 and 1024");
      b.threads = static_cast<int>(*v);
    }
    if (auto v = r.duration("max_wait")) b.max_wait = *v;
    if (auto v = r.string("chdir")) b.chdir = *v;
    if (auto v = r.strings("pythonpath")) b.pythonpath = *v;
    r.finish();
    return b;
  }
  if (kind == "fastcgi") {
    FastCGIBackend b;
    b.to = require(r.string("to"), "to");
    try {
      parse_bind_address(b.to);
    } catch (const std::exception& e) {
      r.fail(*r.get("to"), std::string("to: ") + e.what());
    }
    b.root = require(r.string("root"), "root");
    if (auto v = r.string("index")) b.index = *v;
    if (auto v = r.integer("max_connections")) {
      if (*v < 1 || *v > 65536) {
        r.fail(*r.get("max_connections"), "max_connections must be between 1 and 65536");
      }
      b.max_connections = static_cast<std::size_t>(*v);
    }
    if (auto v = r.duration("connect_timeout")) b.connect_timeout = *v;
    if (auto v = r.duration("read_timeout")) b.read_timeout = *v;
    if (auto v = r.duration("max_wait")) b.max_wait = *v;
    if (auto v = r.duration("resolve_interval")) b.resolve_interval = *v;
    if (auto v = r.string("resolver")) {
      try {
        DnsResolver::validate_servers(*v);
      } catch (const std::exception& e) {
        r.fail(*r.get("resolver"), e.what());
      }
      b.resolver = *v;
    }
    r.finish();
    return b;
  }
  ProxyBackend b;
  if (auto v = r.strings("to")) b.to = *v;
  if (b.to.empty()) r.fail_here("missing required key 'to'");
  for (const std::string& url : b.to) {
    try {
      parse_upstream(url);
    } catch (const std::exception& e) {
      r.fail(*r.get("to"), std::string("to: ") + e.what());
    }
  }
  if (auto v = r.string("policy")) {
    if (*v != "round_robin" && *v != "least_conn") {
      r.fail(*r.get("policy"), "policy must be \"round_robin\" or \"least_conn\"");
    }
    b.policy = *v;
  }
  if (auto v = r.duration("connect_timeout")) b.connect_timeout = *v;
  if (auto v = r.duration("read_timeout")) b.read_timeout = *v;
  if (auto v = r.integer("max_fails")) {
    if (*v < 0) r.fail(*r.get("max_fails"), "max_fails must not be negative");
    b.max_fails = *v;
  }
  if (auto v = r.duration("fail_timeout")) b.fail_timeout = *v;
  if (auto v = r.string("health_uri")) {
    if (v->empty() || (*v)[0] != '/')
      r.fail(*r.get("health_uri"), "health_uri must start with '/'");
    b.health_uri = *v;
  }
  if (auto v = r.duration("health_interval")) {
    if (v->count() <= 0) r.fail(*r.get("health_interval"), "health_interval must be positive");
    b.health_interval = *v;
  }
  if (auto v = r.duration("health_timeout")) {
    if (v->count() <= 0) r.fail(*r.get("health_timeout"), "health_timeout must be positive");
    b.health_timeout = *v;
  }
  if (auto v = r.boolean("preserve_host")) b.preserve_host = *v;
  if (auto v = r.string("ca_file")) b.ca_file = *v;
  if (auto v = r.duration("resolve_interval")) b.resolve_interval = *v;
  if (auto v = r.string("resolver")) {
    try {
      DnsResolver::validate_servers(*v);
    } catch (const std::exception& e) {
      r.fail(*r.get("resolver"), e.what());
    }
    b.resolver = *v;
  }
  r.finish();
  return b;
}

RateLimitOptions read_rate_limit(const toml::table& t, const std::string& file) {
  TableReader r(t, file, "rate_limit");
  RateLimitOptions o;
  auto requests = r.integer("requests");
  if (!requests) r.fail_here("rate_limit needs requests, e.g. { requests = 100, per = \"1s\" }");
  if (*requests < 1) r.fail(*r.get("requests"), "requests must be at least 1");
  o.requests = *requests;
  if (auto v = r.duration("per")) {
    if (v->count() < 1) r.fail(*r.get("per"), "per must be at least 1ms");
    o.per = *v;
  }
  if (auto v = r.string("key")) {
    try {
      check_rate_key(*v);
    } catch (const std::exception& e) {
      r.fail(*r.get("key"), e.what());
    }
    o.key = *v;
  }
  if (auto v = r.string("store")) {
    try {
      parse_rate_store(*v);
    } catch (const std::exception& e) {
      r.fail(*r.get("store"), e.what());
    }
    o.store = *v;
  }
  if (auto v = r.string("on_store_error")) {
    if (*v != "allow" && *v != "deny") {
      r.fail(*r.get("on_store_error"), "on_store_error must be \"allow\" or \"deny\"");
    }
    o.allow_on_store_error = *v == "allow";
  }
  if (auto v = r.integer("max_keys")) {
    if (*v < 1) r.fail(*r.get("max_keys"), "max_keys must be at least 1");
    o.max_keys = static_cast<std::size_t>(*v);
  }
  if (auto v = r.duration("timeout")) {
    if (v->count() < 1) r.fail(*r.get("timeout"), "timeout must be at least 1ms");
    o.timeout = *v;
  }
  r.finish();
  return o;
}

CorsOptions read_cors(const toml::table& t, const std::string& file) {
  TableReader r(t, file, "cors");
  CorsOptions o;
  auto origins = r.strings("origins");
  if (!origins || origins->empty()) {
    r.fail_here("cors needs origins, e.g. { origins = [\"https://app.example\"] } or [\"*\"]");
  }
  o.origins = *origins;
  if (auto v = r.strings("methods")) o.methods = *v;
  if (auto v = r.strings("headers")) o.headers = *v;
  if (auto v = r.strings("expose_headers")) o.expose_headers = *v;
  if (auto v = r.boolean("credentials")) o.credentials = *v;
  if (auto v = r.duration("max_age")) {
    o.max_age = std::chrono::duration_cast<std::chrono::seconds>(*v);
  }
  r.finish();
  try {
    CorsPolicy check(o);
  } catch (const std::exception& e) {
    r.fail_here(std::string("cors: ") + e.what());
  }
  return o;
}

RouteConfig read_route(const toml::table& t, const std::string& file) {
  TableReader r(t, file, "[[route]]");
  RouteConfig route;
  route.where = place(file, t.source());
  if (auto v = r.string("host")) route.host = *v;
  if (auto v = r.string("path")) {
    if (v->empty() || (*v)[0] != '/') r.fail(*r.get("path"), "path must start with '/'");
    route.path = *v;
  }
  if (auto v = r.boolean("strip_prefix")) route.strip_prefix = *v;
  if (const toml::table* v = r.table("rate_limit")) route.rate_limit = read_rate_limit(*v, file);
  if (const toml::table* v = r.table("cors")) route.cors = read_cors(*v, file);
  int backends = 0;
  for (std::string_view kind : {"static", "redirect", "wsgi", "fastcgi", "proxy"}) {
    if (const toml::table* b = r.table(kind)) {
      if (++backends > 1) r.fail(*b, "a route names one backend; this one names several");
      route.backend = read_backend(kind, *b, file);
    }
  }
  if (backends == 0) {
    r.fail_here("a route needs a backend: static, redirect, wsgi, fastcgi or proxy");
  }
  r.finish();
  return route;
}

AppConfig read_app(TableReader& r, const toml::table& t) {
  AppConfig app;
  app.where = place(r.file(), t.source());
  if (auto v = r.string("build")) {
    if (*v != "cmake" && !v->empty()) r.fail(*r.get("build"), "build must be \"cmake\" or \"\"");
    app.build = *v;
  }
  if (auto v = r.strings("command")) app.command = *v;
  if (app.command.empty() || app.command[0].empty()) {
    r.fail_here("[app] needs a command, e.g. command = [\"build/myapp\"]");
  }
  if (auto v = r.strings("watch")) app.watch = *v;
  r.finish();
  return app;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string format_ms(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return quote(std::to_string(d.count() / 1000) + "s");
  return quote(std::to_string(d.count()) + "ms");
}

std::string format_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + quote(items[i]);
  return out + "]";
}

}  // namespace

std::chrono::milliseconds parse_duration(std::string_view text) {
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data() || n < 0) {
    throw std::invalid_argument("'" + std::string(text) +
                                "' is not a duration (e.g. \"500ms\", \"30s\", \"5m\")");
  }
  std::string_view unit(end, text.data() + text.size() - end);
  if (unit.empty() || unit == "s") return std::chrono::seconds(n);
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit == "m") return std::chrono::minutes(n);
  if (unit == "h") return std::chrono::hours(n);
  throw std::invalid_argument("'" + std::string(text) + "': unknown unit '" + std::string(unit) +
                              "' (ms, s, m or h)");
}

std::string_view backend_name(const Backend& backend) {
  static constexpr std::string_view kNames[] = {"static", "redirect", "wsgi", "fastcgi", "proxy"};
  return kNames[backend.index()];
}

Config parse_config(std::string_view text, const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    throw ConfigError(place(source_name, e.source()) + ": " + std::string(e.description()));
  }
  Config config;
  config.file = source_name;
  TableReader r(root, source_name, "the file");
  if (const toml::table* server = r.table("server")) {
    TableReader sr(*server, source_name, "[server]");
    read_server(sr, config.server);
  }
  if (const toml::table* app = r.table("app")) {
    TableReader ar(*app, source_name, "[app]");
    config.app = read_app(ar, *app);
  }
  if (const toml::node* routes = r.get("route")) {
    if (!routes->is_array_of_tables()) {
      r.fail(*routes, "route must be an array of tables: write each as [[route]]");
    }
    for (const toml::node& t : *routes->as_array()) {
      config.routes.push_back(read_route(*t.as_table(), source_name));
    }
  }
  r.finish();
  return config;
}

Config load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

std::string format_config(const Config& config) {
  const ServerConfig& s = config.server;
  std::ostringstream out;
  out << "[server]\n";
  std::vector<std::string> binds;
  for (const BindAddress& b : s.binds) binds.push_back(b.to_string());
  if (binds.empty()) binds.emplace_back("127.0.0.1:8888");
  out << "bind = " << format_list(binds) << "\n";
  out << "workers = " << s.workers << "\n";
  if (s.max_body_size)
    out << "max_body_size = " << quote(format_byte_size(*s.max_body_size)) << "\n";
  out << "max_header_size = " << quote(format_byte_size(s.max_header_size)) << "\n";
  out << "max_connections = " << s.max_connections << "\n";
  out << "idle_timeout = " << format_ms(s.idle_timeout) << "\n";
  out << "header_timeout = " << format_ms(s.header_timeout) << "\n";
  out << "body_timeout = " << format_ms(s.body_timeout) << "\n";
  out << "write_timeout = " << format_ms(s.write_timeout) << "\n";
  out << "shutdown_timeout = " << format_ms(s.shutdown_timeout) << "\n";
  out << "drain_delay = " << format_ms(s.drain_delay) << "\n";
  out << "upgrade_timeout = " << format_ms(s.upgrade_timeout) << "\n";
  if (s.admin) out << "admin = " << quote(s.admin->to_string()) << "\n";
  out << "access_log = " << quote(s.access_log) << "\n";
  static constexpr const char* kFormats[] = {"common", "combined", "json"};
  out << "access_log_format = " << quote(kFormats[static_cast<int>(s.access_log_format)]) << "\n";
  out << "error_log = " << quote(s.error_log) << "\n";
  if (s.log_level) out << "log_level = " << quote(log::level_name(*s.log_level)) << "\n";
  out << "xheaders = " << (s.xheaders ? "true" : "false") << "\n";
  out << "http2 = " << (s.http2 ? "true" : "false") << "\n";
  if (s.tls) {
    out << "\n[server.tls]\ncert = " << quote(s.tls->cert_file)
        << "\nkey = " << quote(s.tls->key_file) << "\n";
    if (!s.tls->client_ca.empty()) out << "client_ca = " << quote(s.tls->client_ca) << "\n";
    for (const auto& [name, files] : s.tls->sni) {
      out << "\n[server.tls.sni." << quote(name) << "]\ncert = " << quote(files.first)
          << "\nkey = " << quote(files.second) << "\n";
    }
  }
  if (config.app) {
    out << "\n[app]\n";
    if (!config.app->build.empty()) out << "build = " << quote(config.app->build) << "\n";
    out << "command = " << format_list(config.app->command) << "\n";
    if (!config.app->watch.empty()) out << "watch = " << format_list(config.app->watch) << "\n";
  }
  for (const RouteConfig& r : config.routes) {
    out << "\n[[route]]\n";
    if (!r.host.empty()) out << "host = " << quote(r.host) << "\n";
    out << "path = " << quote(r.path) << "\n";
    if (r.strip_prefix) out << "strip_prefix = true\n";
    if (const auto& l = r.rate_limit) {
      out << "rate_limit = { requests = " << l->requests << ", per = " << format_ms(l->per)
          << ", key = " << quote(l->key) << ", store = " << quote(l->store)
          << ", on_store_error = " << quote(l->allow_on_store_error ? "allow" : "deny")
          << ", max_keys = " << l->max_keys << ", timeout = " << format_ms(l->timeout) << " }\n";
    }
    if (const auto& c = r.cors) {
      out << "cors = { origins = " << format_list(c->origins)
          << ", methods = " << format_list(c->methods) << ", headers = " << format_list(c->headers)
          << ", expose_headers = " << format_list(c->expose_headers)
          << ", credentials = " << (c->credentials ? "true" : "false");
      if (c->max_age) out << ", max_age = " << format_ms(*c->max_age);
      out << " }\n";
    }
    out << "[route." << backend_name(r.backend) << "]\n";
    if (auto* b = std::get_if<StaticBackend>(&r.backend)) {
      out << "root = " << quote(b->root) << "\nindex = " << quote(b->index) << "\n";
      if (b->max_age) out << "max_age = " << *b->max_age << "\n";
      if (b->precompressed) out << "precompressed = true\n";
      if (b->cache_valid) out << "cache_valid = \"" << b->cache_valid->count() << "ms\"\n";
      if (b->cache_entries) out << "cache_entries = " << *b->cache_entries << "\n";
      if (b->cache_file_size) out << "cache_file_size = " << *b->cache_file_size << "\n";
      if (b->cache_memory) out << "cache_memory = " << *b->cache_memory << "\n";
    } else if (auto* b = std::get_if<RedirectBackend>(&r.backend)) {
      out << "to = " << quote(b->to) << "\nstatus = " << b->status << "\n";
    } else if (auto* b = std::get_if<WSGIBackend>(&r.backend)) {
      out << "app = " << quote(b->app) << "\nthreads = " << b->threads << "\n";
      if (b->max_wait.count() > 0) out << "max_wait = " << format_ms(b->max_wait) << "\n";
      if (!b->chdir.empty()) out << "chdir = " << quote(b->chdir) << "\n";
      if (!b->pythonpath.empty()) out << "pythonpath = " << format_list(b->pythonpath) << "\n";
    } else if (auto* b = std::get_if<FastCGIBackend>(&r.backend)) {
      out << "to = " << quote(b->to) << "\nroot = " << quote(b->root)
          << "\nindex = " << quote(b->index) << "\n";
      out << "max_connections = " << b->max_connections << "\n";
      out << "connect_timeout = " << format_ms(b->connect_timeout) << "\n";
      out << "read_timeout = " << format_ms(b->read_timeout) << "\n";
      if (b->max_wait.count() > 0) out << "max_wait = " << format_ms(b->max_wait) << "\n";
      if (b->resolve_interval.count() > 0) {
        out << "resolve_interval = " << format_ms(b->resolve_interval) << "\n";
      }
      if (!b->resolver.empty()) out << "resolver = " << quote(b->resolver) << "\n";
    } else if (auto* b = std::get_if<ProxyBackend>(&r.backend)) {
      out << "to = " << format_list(b->to) << "\n";
      out << "policy = " << quote(b->policy) << "\n";
      out << "connect_timeout = " << format_ms(b->connect_timeout) << "\n";
      out << "read_timeout = " << format_ms(b->read_timeout) << "\n";
      out << "max_fails = " << b->max_fails << "\n";
      out << "fail_timeout = " << format_ms(b->fail_timeout) << "\n";
      if (!b->health_uri.empty()) {
        out << "health_uri = " << quote(b->health_uri) << "\n";
        out << "health_interval = " << format_ms(b->health_interval) << "\n";
        if (b->health_timeout.count() > 0) {
          out << "health_timeout = " << format_ms(b->health_timeout) << "\n";
        }
      }
      out << "preserve_host = " << (b->preserve_host ? "true" : "false") << "\n";
      if (!b->ca_file.empty()) out << "ca_file = " << quote(b->ca_file) << "\n";
      if (b->resolve_interval.count() > 0) {
        out << "resolve_interval = " << format_ms(b->resolve_interval) << "\n";
      }
      if (!b->resolver.empty()) out << "resolver = " << quote(b->resolver) << "\n";
    }
  }
  return out.str();
}

}  // namespace tronada::cli
