// StaticFiles: serves a directory tree over HTTP the way nginx and Caddy's file_server
// do: conditional requests, single ranges, index files, no escape from the root.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tronada/async/task.h"
#include "tronada/http/http_server_request.h"
#include "tronada/web/open_file_cache.h"

namespace tronada {

class RootDirectory;

struct StaticFileOptions {
  std::string root;
  std::vector<std::string> index_files = {"index.html"};
  /// Cache-Control max-age; unset sends no Cache-Control.
  std::optional<std::chrono::seconds> max_age;
  /// For connections that cannot send files themselves (HTTPConnection::write_file):
  /// a large file is read on the executor in pieces of this size, with backpressure.
  std::size_t chunk_size = 256 * 1024;

  // The open-file cache, one per loop thread (OpenFileCache; nginx's open_file_cache).
  /// How long a file looked up is trusted before it is looked at again; 0: every request
  /// looks, and changes are seen at once.
  std::chrono::milliseconds cache_valid = std::chrono::seconds(1);
  /// Paths kept (least recently used go first); 0 turns the cache off.
  std::size_t cache_entries = 4096;
  /// Files up to this size are kept in memory, and answered without a read; larger ones
  /// are sent from the open file (sendfile on plain connections).
  std::size_t cache_file_size = 64 * 1024;
  /// Most bytes of file contents the cache of one loop keeps.
  std::size_t cache_memory = 32 * 1024 * 1024;
  /// Serve file.br or file.gz, when present, to clients that accept that encoding, with
  /// Content-Encoding, `Vary: Accept-Encoding` and their own ETag (Caddy's precompressed,
  /// nginx's gzip_static). Off by default, as there: whoever puts foo.gz next to foo
  /// must mean it as foo's encoded form.
  bool precompressed = false;
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

/// Serves files below one root directory, as nginx does with open_file_cache and
/// sendfile: what a path resolves to (the open file, its validators and, for small files,
/// its bytes) is kept per loop thread, so a file served again costs no system call but
/// the write, and no trip to the executor. Lookups (misses, and revalidations once an
/// entry is cache_valid old) run on the executor. Large files go out with
/// HTTPConnection::write_file. Symlinks are followed only while their target stays
/// inside the root (RootDirectory).
///
/// Freshness: within cache_valid of its last lookup an entry is served as it was found;
/// after that, a file replaced, rewritten, truncated or removed is seen on its next
/// request (identity: device, inode, size, mtime, ctime). A file truncated while a large
/// response is being sent from it ends that response early (the connection closes or the
/// HTTP/2 stream is reset), never hangs it.
class StaticFiles {
 public:
  explicit StaticFiles(StaticFileOptions options);
  ~StaticFiles();
  StaticFiles(const StaticFiles&) = delete;
  StaticFiles& operator=(const StaticFiles&) = delete;

  /// Answers `request` with the file named by `url_path` (relative to where this tree
  /// is mounted, starting with '/'). GET and HEAD; other methods get 405. Completes
  /// with the status it answered; `body_bytes`, if given, gets the file bytes handed to
  /// the connection (for access logs) and must outlive the task.
  Task<int> serve(std::shared_ptr<HTTPServerRequest> request, std::string url_path,
                  std::uint64_t* body_bytes = nullptr) const;

  /// The part of serve() that needs no waiting: answers from a fresh cache entry (or
  /// with 405) and returns the status, or returns 0 when the request needs a lookup, for
  /// serve() to do. Lets a caller skip a coroutine per request on the hot path.
  int serve_cached(HTTPServerRequest& request, std::string_view url_path,
                   std::uint64_t* body_bytes = nullptr) const;

  const StaticFileOptions& options() const { return options_; }
  /// The root with symlinks resolved, as used for the containment check.
  const std::string& real_root() const { return real_root_; }
  /// The calling loop thread's cache (made on first use).
  OpenFileCache& cache() const { return *cache_for(IOLoop::current()); }

 private:
  /// What answering from an entry left to do: `rest`, when set, is a file region the
  /// connection cannot send itself (no write_file), to be read on the executor.
  struct Answer {
    int status = 0;
    FileRegion rest;
  };
  Answer answer(HTTPServerRequest& request, const CachedFile& file,
                std::uint64_t* body_bytes) const;
  /// Sends `a.rest` on a connection without write_file, then finishes the response.
  Task<int> stream_region(std::shared_ptr<HTTPServerRequest> request, Answer a,
                          std::uint64_t* body_bytes) const;
  const std::shared_ptr<OpenFileCache>& cache_for(IOLoop& loop) const;

  StaticFileOptions options_;
  std::string real_root_;
  std::shared_ptr<const RootDirectory> root_;
  std::string cache_control_;  // "max-age=N", made once

  // One cache per loop thread. The first loop's is found without the lock (most
  // programs run one loop per process); others are looked up under it.
  mutable std::atomic<IOLoop*> first_loop_{nullptr};
  mutable std::shared_ptr<OpenFileCache> first_cache_;
  mutable std::mutex caches_mutex_;
  mutable std::vector<std::pair<IOLoop*, std::shared_ptr<OpenFileCache>>> other_caches_;
};

}  // namespace tronada
