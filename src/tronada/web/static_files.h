// StaticFiles: serves a directory tree over HTTP the way nginx and Caddy's file_server
// do: conditional requests, single ranges, index files, no escape from the root.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tronada/async/task.h"
#include "tronada/http/http_server_request.h"

namespace tronada {

struct StaticFileOptions {
  std::string root;
  std::vector<std::string> index_files = {"index.html"};
  /// Cache-Control max-age; unset sends no Cache-Control.
  std::optional<std::chrono::seconds> max_age;
  /// Files at most this big are read in one executor hop; larger ones are streamed in
  /// pieces of this size with backpressure, so a large file never sits in memory whole.
  std::size_t chunk_size = 256 * 1024;
};

/// A byte range of a file: [first, last], inclusive as in Content-Range.
struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};

/// Parses a Range header for a file of `size` bytes. Returns the range for a single
/// satisfiable range, std::nullopt with `unsatisfiable` set for 416, and std::nullopt
/// with `unsatisfiable` clear when the header should be ignored (multiple ranges, other
/// units, syntax errors: RFC 9110 lets a server answer those with the whole file).
std::optional<ByteRange> parse_range_header(std::string_view header, std::uint64_t size,
                                            bool& unsatisfiable);

/// Maps a URL path ("/a/b%20c.txt") to a path relative to the root ("a/b c.txt"),
/// refusing anything that could leave the root: ".." segments, NUL, backslashes,
/// malformed escapes. Returns nullopt to refuse (404).
std::optional<std::string> safe_relative_path(std::string_view url_path);

/// Serves files below one root directory. File system calls run on the executor; the
/// loop only moves bytes. Symlinks are followed only while their target stays inside
/// the root.
class StaticFiles {
 public:
  explicit StaticFiles(StaticFileOptions options);

  /// Answers `request` with the file named by `url_path` (relative to where this tree
  /// is mounted, starting with '/'). GET and HEAD; other methods get 405. Completes
  /// with the status it answered; `body_bytes`, if given, gets the file bytes handed to
  /// the connection (for access logs) and must outlive the task.
  Task<int> serve(std::shared_ptr<HTTPServerRequest> request, std::string url_path,
                  std::uint64_t* body_bytes = nullptr) const;

  const StaticFileOptions& options() const { return options_; }
  /// The root with symlinks resolved, as used for the containment check.
  const std::string& real_root() const { return real_root_; }

 private:
  StaticFileOptions options_;
  std::string real_root_;
};

}  // namespace tronada
