#include "tronada/http/cookies.h"

#include <algorithm>
#include <stdexcept>

#include "tronada/http/http_date.h"
#include "tronada/http/http_headers.h"

namespace tronada {

namespace {

bool is_python_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Python's str.strip(), which Tornado applies to both halves of a pair.
std::string_view strip(std::string_view s) {
  while (!s.empty() && is_python_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_python_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_octal(char c) {
  return c >= '0' && c <= '7';
}

// http.cookies._unquote: only a value wrapped in quotes is touched, so a lone '"' or a
// backslash in an unquoted value passes through unchanged.
std::string unquote_cookie_value(std::string_view v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
  v = v.substr(1, v.size() - 2);
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    // A backslash before a newline or at the end stays, as Python's regex ("(.)") does.
    if (v[i] != '\\' || i + 1 == v.size() || v[i + 1] == '\n') {
      out += v[i];
      continue;
    }
    // Python matches \[0-3][0-7][0-7] first, then any other "\x" as x.
    if (i + 3 < v.size() && v[i + 1] >= '0' && v[i + 1] <= '3' && is_octal(v[i + 2]) &&
        is_octal(v[i + 3])) {
      out += static_cast<char>((v[i + 1] - '0') * 64 + (v[i + 2] - '0') * 8 + (v[i + 3] - '0'));
      i += 3;
    } else {
      out += v[i + 1];
      i += 1;
    }
  }
  return out;
}

// RFC 6265 section 4.1.1 cookie-octet.
bool is_cookie_octet(unsigned char c) {
  return c == 0x21 || (c >= 0x23 && c <= 0x2B) || (c >= 0x2D && c <= 0x3A) ||
         (c >= 0x3C && c <= 0x5B) || (c >= 0x5D && c <= 0x7E);
}

bool is_valid_cookie_value(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return std::all_of(v.begin(), v.end(),
                     [](char c) { return is_cookie_octet(static_cast<unsigned char>(c)); });
}

bool is_valid_domain(std::string_view d) {
  if (d.empty()) return false;
  return std::all_of(d.begin(), d.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
  });
}

// RFC 6265 path-value: any CHAR except CTLs or ';'. Non-ASCII is refused too, since
// browsers would percent-encode it differently from what the caller wrote.
bool is_valid_path(std::string_view p) {
  return std::all_of(p.begin(), p.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7F && c != ';';
  });
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Years 1970..9999: four-digit years are all IMF-fixdate can carry.
constexpr long long kMaxExpires = 253402300799;  // 9999-12-31T23:59:59Z

void check_name(std::string_view name) {
  if (!is_valid_header_name(name)) {
    throw std::invalid_argument("invalid cookie name: " + std::string(name));
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_cookie_header(std::string_view header) {
  std::vector<std::pair<std::string, std::string>> cookies;
  while (true) {
    std::size_t end = header.find(';');
    std::string_view chunk = header.substr(0, end);
    std::size_t eq = chunk.find('=');
    if (eq != std::string_view::npos) {
      std::string_view name = strip(chunk.substr(0, eq));
      std::string_view value = strip(chunk.substr(eq + 1));
      if (!name.empty()) cookies.emplace_back(std::string(name), unquote_cookie_value(value));
    }
    if (end == std::string_view::npos) break;
    header.remove_prefix(end + 1);
  }
  return cookies;
}

std::string format_set_cookie(std::string_view name, std::string_view value,
                              const CookieOptions& options) {
  check_name(name);
  if (!is_valid_cookie_value(value)) {
    throw std::invalid_argument("invalid value for cookie " + std::string(name));
  }
  if (options.domain && !options.domain->empty() && !is_valid_domain(*options.domain)) {
    throw std::invalid_argument("invalid cookie domain: " + *options.domain);
  }
  if (!is_valid_path(options.path)) {
    throw std::invalid_argument("invalid cookie path: " + options.path);
  }
  std::string_view same_site;
  if (!options.same_site.empty()) {
    for (std::string_view canonical : {"Lax", "Strict", "None"}) {
      if (detail::iequals(options.same_site, canonical)) same_site = canonical;
    }
    if (same_site.empty()) {
      throw std::invalid_argument("invalid SameSite value: " + options.same_site);
    }
    if (same_site == "None" && !options.secure) {
      throw std::invalid_argument("SameSite=None requires Secure (cookie " + std::string(name) +
                                  ")");
    }
  }
  bool has_domain = options.domain && !options.domain->empty();
  if (starts_with(name, "__Secure-") && !options.secure) {
    throw std::invalid_argument("a __Secure- cookie requires Secure");
  }
  if (starts_with(name, "__Host-") && (!options.secure || has_domain || options.path != "/")) {
    throw std::invalid_argument("a __Host- cookie requires Secure, Path=/ and no Domain");
  }

  std::string out;
  out.reserve(name.size() + value.size() + 96);
  out.append(name).append("=").append(value);
  if (has_domain) out.append("; Domain=").append(*options.domain);
  if (!options.path.empty()) out.append("; Path=").append(options.path);
  if (options.expires_unix) {
    long long t = std::clamp(*options.expires_unix, 0LL, kMaxExpires);
    out.append("; Expires=").append(format_http_date(t));
  }
  if (options.max_age) {
    out.append("; Max-Age=").append(std::to_string(std::max(*options.max_age, 0LL)));
  }
  if (options.secure) out.append("; Secure");
  if (options.http_only) out.append("; HttpOnly");
  if (!same_site.empty()) out.append("; SameSite=").append(same_site);
  return out;
}

std::string format_clear_cookie(std::string_view name, std::string_view path,
                                const std::optional<std::string>& domain) {
  CookieOptions options;
  options.domain = domain;
  options.path = std::string(path);
  options.expires_unix = 0;
  options.max_age = 0;
  options.secure = starts_with(name, "__Secure-") || starts_with(name, "__Host-");
  return format_set_cookie(name, "", options);
}

}  // namespace tronada
