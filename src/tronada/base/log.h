// Process-wide logging: levels, text or JSON lines, one sink (stderr by default).
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace tronada::log {

enum class Level { debug = 10, info = 20, warning = 30, error = 40, critical = 50, off = 100 };
enum class Format { text, json };

/// Current threshold: messages below it are dropped before they are formatted.
Level level();
void set_level(Level level);
Format format();
void set_format(Format format);
/// Where log lines go; the stream is not owned. nullptr restores stderr.
void set_sink(std::FILE* sink);

inline bool enabled(Level l) {
  return l >= level();
}

/// Writes one line; `logger` names the part of the system ("loop", "http", "wsgi").
/// Safe from any thread: a line is written with one call so lines never interleave.
void write(Level l, std::string_view logger, std::string_view message);

/// While on (off by default; a single-process app turns it on for its loop thread), this
/// thread's info and debug lines (an access line per request) collect in a per-thread
/// buffer instead of costing a write each; flush_deferred() writes them in one call. A
/// running IOLoop flushes before each poll, so a line waits at most for the rest of the
/// loop iteration that wrote it. Warnings and errors are never held back (they flush
/// what is pending first, in order). A batch goes out in writes of at most PIPE_BUF
/// bytes that end at a line's end, so processes sharing a pipe never interleave
/// mid-line; a fork from this thread writes its pending lines first. IOLoop::start()
/// turns it on for the loop's thread while the loop runs.
void set_deferred_flush(bool on);
void flush_deferred();

std::optional<Level> parse_level(std::string_view name);
std::optional<Format> parse_format(std::string_view name);
std::string_view level_name(Level l);

inline void debug(std::string_view logger, std::string_view m) {
  if (enabled(Level::debug)) write(Level::debug, logger, m);
}
inline void info(std::string_view logger, std::string_view m) {
  if (enabled(Level::info)) write(Level::info, logger, m);
}
inline void warning(std::string_view logger, std::string_view m) {
  if (enabled(Level::warning)) write(Level::warning, logger, m);
}
inline void error(std::string_view logger, std::string_view m) {
  if (enabled(Level::error)) write(Level::error, logger, m);
}

}  // namespace tronada::log
