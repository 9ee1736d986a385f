// CorsPolicy: a route's cross-origin resource sharing rules and the answers they give,
// by the Fetch standard's CORS protocol. Sans-I/O: header values in, header fields out.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/http/http_headers.h"

namespace tronada {

/// What a route allows (the `cors = {...}` table of a [[route]]).
struct CorsOptions {
  /// "https://a.example" (scheme://host[:port], no path), "https://*.a.example" (any
  /// subdomain, this scheme and port), "null", or "*" alone: any.
  std::vector<std::string> origins;
  /// Methods a preflight may ask for; GET, HEAD and POST always pass (Fetch's
  /// CORS-safelisted methods). "*": any, only without credentials.
  std::vector<std::string> methods = {"GET", "HEAD", "POST"};
  /// Request headers a preflight may ask for (case-insensitive). "*": any but
  /// Authorization, only without credentials.
  std::vector<std::string> headers;
  /// Response headers scripts may read besides the safelisted ones. "*": all, only
  /// without credentials.
  std::vector<std::string> expose_headers;
  /// Cookies and HTTP authentication may go along: the origin is echoed (never "*")
  /// and Access-Control-Allow-Credentials: true is sent.
  bool credentials = false;
  /// How long a browser may cache a preflight's answer; unset: no Max-Age (browsers
  /// then keep it 5 s).
  std::optional<std::chrono::seconds> max_age;
};

/// The CORS part of one response: fields to add, and whether the response must say
/// `Vary: Origin` (and which other request headers it varies on).
struct CorsAnswer {
  bool allowed = false;  // the origin (and for a preflight, method and headers) passed
  HTTPHeaders fields;    // Access-Control-* fields to add; empty when not allowed
  std::vector<std::string_view> vary;  // request headers the answer depended on
};

/// Decides CORS for one route. A preflight (OPTIONS with Origin and
/// Access-Control-Request-Method) is answered by the server itself, whatever the
/// backend; other requests from an allowed origin get Access-Control-Allow-Origin (and
/// credentials, exposed headers) added to the backend's response. A request from an
/// origin not allowed gets no CORS fields at all, which is how a browser learns "no";
/// the request itself is not refused (CORS protects the reader, not the server).
class CorsPolicy {
 public:
  /// Throws std::invalid_argument for an origin that is not scheme://host[:port], "null"
  /// or a lone "*", and for "*" in methods, headers or expose_headers together with
  /// credentials (the Fetch standard reads it literally then, which is never meant).
  explicit CorsPolicy(CorsOptions options);

  const CorsOptions& options() const { return options_; }

  /// An OPTIONS request with Origin and Access-Control-Request-Method.
  static bool is_preflight(std::string_view method, const HTTPHeaders& headers);

  /// The answer to a preflight (sent as 204 with these fields).
  CorsAnswer preflight(std::string_view origin, std::string_view request_method,
                       std::string_view request_headers) const;
  /// The fields for any other request's response; `origin` is nullopt without Origin.
  CorsAnswer actual(std::optional<std::string_view> origin) const;

  /// Whether `origin` may read responses.
  bool origin_allowed(std::string_view origin) const;
  /// Whether answers depend on Origin (all but "*" without credentials): such responses
  /// must carry Vary: Origin even when the request had no Origin, or a shared cache
  /// could hand one origin's answer to another.
  bool varies_on_origin() const { return !(any_origin_ && !options_.credentials); }

 private:
  void add_origin_fields(std::string_view origin, HTTPHeaders& fields) const;

  CorsOptions options_;
  bool any_origin_ = false;
  bool any_method_ = false;
  bool any_header_ = false;
  std::vector<std::string> origins_lower_;
  struct Pattern {
    std::string prefix;  // "https://"
    std::string suffix;  // ".example.com"
    std::string port;    // ":8443", or "" for the scheme's default
  };
  std::vector<Pattern> patterns_;
  std::vector<std::string> headers_lower_;
  std::string methods_value_;  // Access-Control-Allow-Methods
  std::string expose_value_;   // Access-Control-Expose-Headers
};

}  // namespace tronada
