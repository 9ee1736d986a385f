#include "tronada/gateway/cors_policy.h"

#include <algorithm>
#include <stdexcept>

namespace tronada {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

bool contains(const std::vector<std::string>& items, std::string_view value) {
  return std::find(items.begin(), items.end(), value) != items.end();
}

// scheme://host[:port], as a browser serializes an origin: no path, query or userinfo.
void check_origin(const std::string& origin) {
  if (origin == "null") return;
  auto scheme_end = origin.find("://");
  bool ok = scheme_end != std::string::npos && scheme_end > 0 && origin.size() > scheme_end + 3 &&
            origin.find_first_of("/?#@ ", scheme_end + 3) == std::string::npos;
  if (!ok) {
    throw std::invalid_argument("origin '" + origin +
                                "' must be scheme://host[:port] (no path), \"null\" or \"*\"");
  }
}

bool is_safelisted_method(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "POST";
}

}  // namespace

CorsPolicy::CorsPolicy(CorsOptions options) : options_(std::move(options)) {
  if (options_.origins.empty())
    throw std::invalid_argument("origins must name at least one origin");
  for (const std::string& o : options_.origins) {
    if (o == "*") {
      if (options_.origins.size() > 1) {
        throw std::invalid_argument("\"*\" in origins means any origin: list it alone");
      }
      any_origin_ = true;
      continue;
    }
    check_origin(o);
    std::string l = lower(o);
    auto scheme_end = l.find("://");
    if (scheme_end != std::string::npos && l.compare(scheme_end + 3, 2, "*.") == 0) {
      // "https://*.example.com[:port]": any subdomain, with this scheme and port.
      Pattern p;
      p.prefix = l.substr(0, scheme_end + 3);
      std::string rest = l.substr(scheme_end + 4);  // ".example.com[:port]"
      auto colon = rest.find(':');
      p.suffix = rest.substr(0, colon);
      p.port = colon == std::string::npos ? "" : rest.substr(colon);
      if (p.suffix.size() < 2 || p.suffix.find('*') != std::string::npos) {
        throw std::invalid_argument("origin '" + o + "': a pattern is scheme://*.domain[:port]");
      }
      patterns_.push_back(std::move(p));
      continue;
    }
    if (l.find('*') != std::string::npos) {
      throw std::invalid_argument("origin '" + o +
                                  "': '*' only stands for a whole origin or as \"*.\" at the "
                                  "start of the host");
    }
    origins_lower_.push_back(std::move(l));
  }
  auto no_wildcard_with_credentials = [this](const std::vector<std::string>& list,
                                             const char* key) {
    if (options_.credentials && contains(list, "*")) {
      throw std::invalid_argument(std::string("\"*\" in ") + key +
                                  " is no wildcard with credentials = true (Fetch standard): "
                                  "list the names");
    }
    return contains(list, "*");
  };
  any_method_ = no_wildcard_with_credentials(options_.methods, "methods");
  any_header_ = no_wildcard_with_credentials(options_.headers, "headers");
  no_wildcard_with_credentials(options_.expose_headers, "expose_headers");
  for (const std::string& h : options_.headers) headers_lower_.push_back(lower(h));
  methods_value_ = any_method_ ? "*" : join(options_.methods);
  expose_value_ = join(options_.expose_headers);
}

bool CorsPolicy::is_preflight(std::string_view method, const HTTPHeaders& headers) {
  return method == "OPTIONS" && headers.contains("Origin") &&
         headers.contains("Access-Control-Request-Method");
}

bool CorsPolicy::origin_allowed(std::string_view origin) const {
  if (any_origin_) return true;
  // Scheme and host are case-insensitive; browsers send them lower-case already.
  std::string l = lower(origin);
  if (contains(origins_lower_, l)) return true;
  for (const Pattern& p : patterns_) {
    if (!l.starts_with(p.prefix)) continue;
    std::string_view hostport = std::string_view(l).substr(p.prefix.size());
    auto colon = hostport.find(':');
    std::string_view host = hostport.substr(0, colon);
    std::string_view port = colon == std::string_view::npos ? "" : hostport.substr(colon);
    // At least one label before the domain, and the port exactly as in the pattern.
    if (port == p.port && host.size() > p.suffix.size() && host.ends_with(p.suffix) &&
        host.find('/') == std::string_view::npos) {
      return true;
    }
  }
  return false;
}

void CorsPolicy::add_origin_fields(std::string_view origin, HTTPHeaders& fields) const {
  if (any_origin_ && !options_.credentials) {
    fields.add("Access-Control-Allow-Origin", "*");
  } else {
    fields.add("Access-Control-Allow-Origin", origin);
  }
  if (options_.credentials) fields.add("Access-Control-Allow-Credentials", "true");
}

CorsAnswer CorsPolicy::preflight(std::string_view origin, std::string_view request_method,
                                 std::string_view request_headers) const {
  CorsAnswer a;
  if (varies_on_origin()) a.vary.push_back("Origin");
  if (!origin_allowed(origin)) return a;
  request_method = trim(request_method);
  if (!any_method_ && !is_safelisted_method(request_method) &&
      !contains(options_.methods, request_method)) {
    return a;
  }
  // Every header the preflight names must be allowed; the answer echoes them, which is
  // right for a wildcard and for a list alike.
  std::string allowed_headers;
  std::string_view rest = request_headers;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string name = lower(trim(rest.substr(0, comma)));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (name.empty()) continue;
    // The wildcard never covers Authorization (Fetch: it must be listed by name).
    bool ok = contains(headers_lower_, name) || (any_header_ && name != "authorization");
    if (!ok) return a;
    if (!allowed_headers.empty()) allowed_headers += ", ";
    allowed_headers += name;
  }
  a.allowed = true;
  add_origin_fields(origin, a.fields);
  a.fields.add("Access-Control-Allow-Methods",
               methods_value_.empty() ? "GET, HEAD, POST" : methods_value_);
  if (!allowed_headers.empty()) {
    a.fields.add("Access-Control-Allow-Headers", allowed_headers);
    a.vary.push_back("Access-Control-Request-Headers");
  }
  if (options_.max_age) {
    a.fields.add("Access-Control-Max-Age", std::to_string(options_.max_age->count()));
  }
  return a;
}

CorsAnswer CorsPolicy::actual(std::optional<std::string_view> origin) const {
  CorsAnswer a;
  if (varies_on_origin()) a.vary.push_back("Origin");
  if (!origin || !origin_allowed(*origin)) return a;
  a.allowed = true;
  add_origin_fields(*origin, a.fields);
  if (!expose_value_.empty()) a.fields.add("Access-Control-Expose-Headers", expose_value_);
  return a;
}

}  // namespace tronada
