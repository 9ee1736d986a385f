// The access log of the server commands: one line per finished request, in Common or
// Combined Log Format (what nginx, Apache and every log analyser read) or JSON lines.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cli/config.h"

namespace tronada {
class IOLoop;
class PeriodicCallback;
class RequestHandler;
}  // namespace tronada

namespace tronada::cli {

/// What one log line says about a request.
struct AccessRecord {
  std::string_view remote_ip;
  std::string_view method;
  std::string_view uri;
  std::string_view version;  // "HTTP/1.1"
  int status = 0;
  std::uint64_t bytes = 0;
  std::string_view referer;
  std::string_view user_agent;
  std::string_view host;
  double seconds = 0;  // from the first byte of the request to the end of the response
  std::int64_t unix_time = 0;
  // JSON only: the route that served the request (its host + path in the config; empty
  // when none matched), and for proxied requests the upstream of the last try and that
  // try's time (negative: no whole response; both absent for other backends).
  std::string_view route;
  std::string_view upstream;
  double upstream_seconds = -1;
};

/// Formats a record as one line with its newline (no I/O, so it is tested alone).
std::string format_access_line(const AccessRecord& record, AccessLogFormat format);

/// Writes access lines to a file or stdout. Lines are gathered in memory and written
/// once a second or when 64 KiB are waiting, so a busy server makes one write() per
/// many requests rather than one per request; a crash loses at most a second of lines.
///
/// Lifetime: owns the file descriptor and its flush timer; destroy it on the loop
/// thread before the loop closes (it flushes what is left).
class AccessLog {
 public:
  /// `target` is a path or "-" for stdout. Throws std::runtime_error when the file
  /// cannot be opened for appending.
  AccessLog(IOLoop& loop, std::string target, AccessLogFormat format);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  /// Opens and closes `target` for appending, so a server can refuse an unwritable log
  /// before it binds or forks. Throws std::runtime_error as the constructor does.
  static void check_writable(const std::string& target);

  /// `route`: the route that served it (JSON only; see route_wanted()).
  void log(const RequestHandler& handler, std::string_view route = {});
  /// Whether the lines say which route served a request (the JSON format does), so the
  /// caller looks it up only then.
  bool route_wanted() const { return format_ == AccessLogFormat::json; }
  void log(const AccessRecord& record);
  void flush();
  /// Reopens the file by name (after logrotate moved it; SIGUSR1 calls this).
  void reopen();

 private:
  void open();

  std::string target_;
  AccessLogFormat format_;
  int fd_ = -1;
  bool own_fd_ = false;
  std::string buffer_;
  std::unique_ptr<PeriodicCallback> flusher_;
};

}  // namespace tronada::cli
