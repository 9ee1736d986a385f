// Cookie and Set-Cookie header values (RFC 6265): parsing what browsers send and
// formatting what we send back. Pure functions; the framework does the header plumbing.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tronada {

/// Parses a Cookie request header value into (name, value) pairs in header order.
///
/// As lenient as browsers and Tornado's `parse_cookie`: pairs are split on ';', names and
/// values are trimmed of whitespace, the first '=' separates name from value, and a value
/// wrapped in double quotes is unquoted with Python's `http.cookies` rules (`\"`, `\\`,
/// `\ooo` octal escapes). A pair without '=' or with an empty name is skipped rather than
/// kept under the name "" as Tornado does: no handler can ask for it, and it is what a
/// stray ';' produces. Duplicates are all kept; RFC 6265 section 5.4 has browsers send the
/// cookie with the longest path first, so the first occurrence is the most specific one.
/// Values are raw bytes (not URL- or UTF-8-decoded). Never throws except std::bad_alloc.
std::vector<std::pair<std::string, std::string>> parse_cookie_header(std::string_view header);

/// The attributes of a Set-Cookie header.
struct CookieOptions {
  /// Domain attribute; omitted (a host-only cookie) when empty.
  std::optional<std::string> domain;
  /// Path attribute; omitted when empty (the browser then uses the request's directory).
  std::string path = "/";
  /// Max-Age in seconds; a negative value is sent as 0 (delete now).
  std::optional<long long> max_age;
  /// Expires as a Unix time, sent as an IMF-fixdate clamped to years 1970..9999.
  std::optional<long long> expires_unix;
  bool secure = false;
  bool http_only = false;
  /// "Lax", "Strict", "None" (any letter case; sent in this spelling) or empty for none.
  std::string same_site;
};

/// Formats a Set-Cookie header value: `name=value; Domain=..; Path=..; Expires=..;
/// Max-Age=..; Secure; HttpOnly; SameSite=..` (absent attributes omitted).
///
/// Throws std::invalid_argument, rather than quoting or escaping, for anything that could
/// inject an attribute or another header or that browsers would reject:
/// - `name` is not an RFC 9110 token;
/// - `value` contains a byte outside RFC 6265's cookie-octet (CTLs, whitespace, DQUOTE,
///   ',', ';', '\\', non-ASCII), except that one pair of enclosing double quotes is
///   allowed; encode such data first (create_signed_value's output is safe);
/// - `domain` holds anything but letters, digits, '-', '.', '_' (or is empty);
/// - `path` holds a CTL, ';' or non-ASCII byte;
/// - `same_site` is not empty, Lax, Strict or None;
/// - `same_site` is None without `secure`: browsers drop such cookies, so a silent drop at
///   runtime becomes an error at the call site instead of adding Secure behind the caller's
///   back (which would hide the cookie from plain-HTTP pages that expect it);
/// - the name has the `__Secure-` prefix without `secure`, or the `__Host-` prefix without
///   `secure`, with a domain, or with a path other than "/" (RFC 6265bis section 4.1.3).
std::string format_set_cookie(std::string_view name, std::string_view value,
                              const CookieOptions& options = {});

/// Formats a Set-Cookie header value that deletes cookie `name` (for `path` and `domain`,
/// which must match the ones it was set with): an empty value, `Expires` at the epoch and
/// `Max-Age=0`, the pair Tornado's clear_cookie sends so that old and new browsers agree.
/// Cookies with the `__Secure-` or `__Host-` prefix get `Secure`, without which browsers
/// ignore the deletion. Throws std::invalid_argument like format_set_cookie.
std::string format_clear_cookie(std::string_view name, std::string_view path = "/",
                                const std::optional<std::string>& domain = std::nullopt);

}  // namespace tronada
