#include "tronada/base/log.h"

#include <limits.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <string>

namespace tronada::log {
namespace {

std::atomic<Level> g_level{Level::info};
std::atomic<Format> g_format{Format::text};
std::atomic<std::FILE*> g_sink{nullptr};

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// Writes `lines` (whole lines) in pieces of at most PIPE_BUF bytes that end at a line's
// end: the workers of one server share a pipe or an O_APPEND file, where only a write
// of up to PIPE_BUF bytes is atomic, so a bigger batch could interleave with another
// process's mid-line. A single longer line goes alone, as it would unbatched.
void write_whole_lines(std::FILE* sink, std::string_view lines) {
  while (!lines.empty()) {
    std::size_t n = lines.size();
    if (n > PIPE_BUF) {
      std::size_t cut = lines.rfind('\n', PIPE_BUF - 1);
      n = cut == std::string_view::npos ? lines.find('\n') : cut;
      n = n == std::string_view::npos ? lines.size() : n + 1;
    }
    std::fwrite(lines.data(), 1, n, sink);
    std::fflush(sink);
    lines.remove_prefix(n);
  }
}

// Lines an IOLoop thread wrote since its last flush (see set_deferred_flush).
struct Deferred {
  bool on = false;
  std::string lines;
  ~Deferred() { flush(); }
  void flush() {
    if (lines.empty()) return;
    std::FILE* sink = g_sink.load();
    if (!sink) sink = stderr;
    write_whole_lines(sink, lines);
    lines.clear();
  }
};
thread_local Deferred t_deferred;

// A process that forks from a loop thread writes what that thread holds first, so the
// child does not inherit (and write again) its parent's pending lines.
void flush_before_fork() {
  t_deferred.flush();
}
[[maybe_unused]] const bool g_atfork_registered = [] {
  pthread_atfork(&flush_before_fork, nullptr, nullptr);
  return true;
}();

// A burst (a pipelined batch, a flood of errors answered at info) is written once this
// much is held, so the buffer stays small.
constexpr std::size_t kDeferredLimit = 16 * 1024;

std::string timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

Level level() {
  return g_level.load(std::memory_order_relaxed);
}
void set_level(Level l) {
  g_level.store(l, std::memory_order_relaxed);
}
Format format() {
  return g_format.load(std::memory_order_relaxed);
}
void set_format(Format f) {
  g_format.store(f, std::memory_order_relaxed);
}
void set_sink(std::FILE* sink) {
  t_deferred.flush();  // what was written before goes where it was meant to
  g_sink.store(sink);
}

void set_deferred_flush(bool on) {
  if (!on) t_deferred.flush();
  t_deferred.on = on;
}

void flush_deferred() {
  t_deferred.flush();
}

std::string_view level_name(Level l) {
  switch (l) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warning:
      return "warning";
    case Level::error:
      return "error";
    case Level::critical:
      return "critical";
    case Level::off:
      return "off";
  }
  return "unknown";
}

std::optional<Level> parse_level(std::string_view name) {
  for (Level l :
       {Level::debug, Level::info, Level::warning, Level::error, Level::critical, Level::off}) {
    if (name == level_name(l)) return l;
  }
  if (name == "warn") return Level::warning;
  return std::nullopt;
}

std::optional<Format> parse_format(std::string_view name) {
  if (name == "text") return Format::text;
  if (name == "json") return Format::json;
  return std::nullopt;
}

void write(Level l, std::string_view logger, std::string_view message) {
  std::string line;
  line.reserve(message.size() + 64);
  if (format() == Format::json) {
    line += "{\"time\":\"" + timestamp() + "\",\"level\":\"";
    line += level_name(l);
    line += "\",\"logger\":";
    append_json_string(line, logger);
    line += ",\"message\":";
    append_json_string(line, message);
    line += "}\n";
  } else {
    line += timestamp();
    line += ' ';
    line += level_name(l);
    line += " [";
    line += logger;
    line += "] ";
    line += message;
    line += '\n';
  }
  if (t_deferred.on && l <= Level::info) {
    t_deferred.lines += line;
    if (t_deferred.lines.size() >= kDeferredLimit) t_deferred.flush();
    return;
  }
  t_deferred.flush();
  std::FILE* sink = g_sink.load();
  if (!sink) sink = stderr;
  // One fwrite per line: stdio locks the stream, so lines from threads never interleave.
  std::fwrite(line.data(), 1, line.size(), sink);
  std::fflush(sink);
}

}  // namespace tronada::log
