// HTTPServerRequest: one request as handlers see it, whatever protocol carried it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "tronada/http/http_connection.h"
#include "tronada/http/http_headers.h"
#include "tronada/loop/io_loop.h"

namespace tronada {

/// A request received by an HTTP server (Tornado's HTTPServerRequest). `connection` is
/// the channel for the response; keep the request (a shared_ptr) as long as you may
/// still answer it.
class HTTPServerRequest {
 public:
  std::string method;   // "GET"
  std::string uri;      // the request-target as sent: "/path?query"
  std::string path;     // "/path", still percent-encoded
  std::string query;    // "a=1&b=2", without '?'
  std::string version;  // "HTTP/1.1", "HTTP/2"
  HTTPHeaders headers;
  std::string body;  // empty when the body is streamed to a delegate
  /// The client's address; with xheaders on, from X-Real-IP / X-Forwarded-For.
  std::string remote_ip;
  /// The client's TCP port; 0 over a Unix socket. Not rewritten by xheaders.
  int remote_port = 0;
  /// "http" or "https"; with xheaders on, from X-Forwarded-Proto / X-Scheme.
  std::string protocol = "http";
  /// Host header (or :authority, or the host of an absolute-form target).
  std::string host;
  /// `host` without the port.
  std::string host_name;
  TimePoint start_time = Clock::now();
  std::shared_ptr<HTTPConnection> connection;

  /// Seconds since the request started, or until `finish_time` once finished.
  double request_time() const;
  void mark_finished() { finish_time_ = Clock::now(); }
  bool supports_http_1_1() const { return version == "HTTP/1.1"; }
  /// "https://example.com/path?query"
  std::string full_url() const;

  /// Fills path, query from `uri` (origin-form or absolute-form) and host/host_name from
  /// the Host header. Returns false for a target that is neither.
  bool parse_target();
  /// parse_target() with the Host field's value already found by the caller (HTTP/2
  /// knows it from receiving the fields), which saves searching for it.
  bool parse_target(std::string_view host_field);

 private:
  // Both parse_targets once `host` holds the Host field's value (or what it held).
  bool parse_target_rest();

  TimePoint finish_time_{};
};

/// A new request whose memory (the object with its shared_ptr control block) comes from
/// the per-thread pool: the connections make one per request.
std::shared_ptr<HTTPServerRequest> make_server_request();

/// Splits "host:port" / "[v6]:port" into the host part.
std::string_view split_host_name(std::string_view host);

}  // namespace tronada
