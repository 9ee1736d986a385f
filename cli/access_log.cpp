#include "cli/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "tronada/base/log.h"
#include "tronada/gateway/proxy_handler.h"
#include "tronada/http/http_server_request.h"
#include "tronada/loop/periodic_callback.h"
#include "tronada/web/request_handler.h"

namespace tronada::cli {

namespace {

constexpr std::size_t kFlushBytes = 64 * 1024;

// Quotes a field for the log formats: what a client sent must not be able to forge a
// line (newlines) or break the quoting, so control bytes, quotes and backslashes are
// escaped as nginx does (\xHH).
void append_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
}

void append_field(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += '-';
  } else {
    append_escaped(out, s);
  }
}

void append_json_string(std::string& out, std::string_view key, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  out += key;
  out += "\":\"";
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      // Bytes a client sent need not be UTF-8; \u00XX keeps every line valid JSON.
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

}  // namespace

std::string format_access_line(const AccessRecord& r, AccessLogFormat format) {
  std::string out;
  out.reserve(160 + r.uri.size() + r.user_agent.size());
  std::time_t t = static_cast<std::time_t>(r.unix_time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  if (format == AccessLogFormat::json) {
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    out += '{';
    append_json_string(out, "time", when);
    out += ',';
    append_json_string(out, "remote_addr", r.remote_ip);
    out += ',';
    append_json_string(out, "method", r.method);
    out += ',';
    append_json_string(out, "uri", r.uri);
    out += ',';
    append_json_string(out, "protocol", r.version);
    out += ",\"status\":" + std::to_string(r.status);
    out += ",\"bytes\":" + std::to_string(r.bytes);
    char dur[32];
    std::snprintf(dur, sizeof dur, "%.3f", r.seconds * 1000.0);
    out += ",\"duration_ms\":";
    out += dur;
    out += ',';
    append_json_string(out, "host", r.host);
    out += ',';
    append_json_string(out, "referer", r.referer);
    out += ',';
    append_json_string(out, "user_agent", r.user_agent);
    out += ',';
    append_json_string(out, "route", r.route);
    if (!r.upstream.empty()) {
      out += ',';
      append_json_string(out, "upstream", r.upstream);
      out += ",\"upstream_ms\":";
      if (r.upstream_seconds >= 0) {
        std::snprintf(dur, sizeof dur, "%.3f", r.upstream_seconds * 1000.0);
        out += dur;
      } else {
        out += "null";
      }
    }
    out += "}\n";
    return out;
  }
  char when[40];
  std::strftime(when, sizeof when, "[%d/%b/%Y:%H:%M:%S +0000]", &tm);
  append_field(out, r.remote_ip);
  out += " - - ";
  out += when;
  out += " \"";
  append_escaped(out, r.method);
  out += ' ';
  append_escaped(out, r.uri);
  out += ' ';
  append_escaped(out, r.version);
  out += "\" ";
  out += std::to_string(r.status);
  out += ' ';
  // CLF writes "-" for an empty body.
  out += r.bytes ? std::to_string(r.bytes) : "-";
  if (format == AccessLogFormat::combined) {
    out += " \"";
    append_field(out, r.referer);
    out += "\" \"";
    append_field(out, r.user_agent);
    out += '"';
  }
  out += '\n';
  return out;
}

AccessLog::AccessLog(IOLoop& loop, std::string target, AccessLogFormat format)
    : target_(std::move(target)), format_(format) {
  open();
  flusher_ =
      std::make_unique<PeriodicCallback>([this] { flush(); }, std::chrono::seconds(1), 0.0, &loop);
  flusher_->start();
}

AccessLog::~AccessLog() {
  flusher_.reset();
  flush();
  if (own_fd_) ::close(fd_);
}

namespace {

int open_for_append(const std::string& target) {
  int fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    throw std::runtime_error("cannot open access log " + target + ": " + std::strerror(errno));
  }
  return fd;
}

}  // namespace

void AccessLog::check_writable(const std::string& target) {
  if (target != "-") ::close(open_for_append(target));
}

void AccessLog::open() {
  if (target_ == "-") {
    fd_ = STDOUT_FILENO;
    own_fd_ = false;
    return;
  }
  fd_ = open_for_append(target_);
  own_fd_ = true;
}

void AccessLog::reopen() {
  flush();
  if (!own_fd_) return;
  int old = fd_;
  try {
    open();
    ::close(old);
  } catch (const std::exception& e) {
    fd_ = old;  // keep logging to the old file rather than losing lines
    log::error("access", e.what());
  }
}

void AccessLog::log(const RequestHandler& handler, std::string_view route) {
  const HTTPServerRequest& req = handler.request();
  AccessRecord r;
  r.remote_ip = req.remote_ip;
  r.method = req.method;
  r.uri = req.uri;
  r.version = req.version;
  r.status = handler.get_status();
  r.bytes = handler.bytes_written();
  std::optional<std::string_view> referer = req.headers.get("Referer");
  std::optional<std::string_view> agent = req.headers.get("User-Agent");
  r.referer = referer.value_or("");
  r.user_agent = agent.value_or("");
  r.host = req.host;
  r.seconds = req.request_time();
  r.unix_time = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  r.route = route;
  std::string upstream;
  if (format_ == AccessLogFormat::json) {
    // The one backend with an upstream per try: asked here rather than through a hook
    // every handler would carry.
    if (const auto* proxy = dynamic_cast<const ProxyHandler*>(&handler)) {
      upstream = proxy->upstream_address();
      r.upstream = upstream;
      r.upstream_seconds = proxy->upstream_seconds();
    }
  }
  log(r);
}

void AccessLog::log(const AccessRecord& record) {
  buffer_ += format_access_line(record, format_);
  if (buffer_.size() >= kFlushBytes) flush();
}

void AccessLog::flush() {
  std::size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      // A full disk must not take the server down; say so once per flush and drop.
      log::error("access", std::string("cannot write the access log: ") + std::strerror(errno));
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  buffer_.clear();
}

}  // namespace tronada::cli
