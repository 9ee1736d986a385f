// Where a FastCGI request goes: the URL path normalised as nginx does, then Caddy's
// php_fastcgi rules applied against the document root, with the file system asked off
// the loop thread.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tronada/async/future.h"
#include "tronada/loop/io_loop.h"

namespace tronada {

struct FastCGIConfig;

/// Decodes `url_path` (percent-encoded, as in the request line), merges repeated slashes
/// and removes "." and ".." segments (RFC 3986 5.2.4), keeping a trailing slash, as nginx
/// does before it picks a location: "/a/./b/../c.php" is "/a/c.php", "/x.php/." is
/// "/x.php/". Escapes are decoded first, so "%2e%2e" is ".." and "%2f" a slash, as in
/// nginx. Returns nullopt for what nginx answers 400: a malformed escape, a NUL byte, a
/// path that does not start with '/', or a ".." that climbs above the root ("/../x",
/// "/a/%2e%2e/../x").
std::optional<std::string> normalize_url_path(std::string_view url_path);

/// Where a request goes, by Caddy's php_fastcgi rules.
struct FastCGITarget {
  enum class Kind { script, file, redirect_slash, not_found, bad_request };
  Kind kind = Kind::not_found;
  /// The normalised URL path (decoded; see normalize_url_path); empty for bad_request.
  std::string path;
  std::string script_name;      // "/index.php" (decoded)
  std::string path_info;        // "/extra", "/" or empty
  std::string script_filename;  // the script under the root, as SCRIPT_FILENAME
};

/// What resolution needs to know about one path.
struct FileInfo {
  enum class Type { missing, file, directory, other };
  Type type = Type::missing;
  std::string real_path;  // symlinks resolved; empty when missing
};

/// realpath() and stat() of `path`. Blocking: call it off the loop thread.
FileInfo look_up_file(const std::string& path);

/// The file system as resolution sees it; called on executor threads, so it must be
/// thread-safe. Tests replace it.
using FileLookup = std::function<FileInfo(const std::string& path)>;

/// Decides how `url_path` (percent-encoded) is served: a malformed or escaping path is
/// bad_request (400); a path with a backslash, or whose file lies outside the root
/// (after symlinks), is never a script or file. Calls `lookup` a few times: blocking, so
/// never on the loop thread (FastCGIResolver runs it on the executor).
FastCGITarget resolve_fastcgi_target(const FastCGIConfig& config, std::string_view url_path,
                                     const FileLookup& lookup = look_up_file);

/// Resolves the targets of one FastCGI route without blocking the loop: the path is
/// normalised on the loop (no I/O), the file system is asked on the executor, and the
/// answer is kept for `ttl` so that a busy path costs no executor hop. A script added or
/// removed is therefore seen at most `ttl` late (nginx's open_file_cache_valid, off by
/// default there, makes the same trade for longer); 0 asks the file system every time.
///
/// Thread-safe: one resolver may serve several loops. Executor jobs hold what they use,
/// so the resolver may go (a reload) while one runs.
class FastCGIResolver {
 public:
  struct Options {
    Duration ttl = std::chrono::seconds(1);
    /// Paths kept at most; when full, expired answers go, then all of them.
    std::size_t max_entries = 4096;
    FileLookup lookup = look_up_file;
  };
  FastCGIResolver() : FastCGIResolver(Options{}) {}
  explicit FastCGIResolver(Options options);
  ~FastCGIResolver();
  FastCGIResolver(const FastCGIResolver&) = delete;
  FastCGIResolver& operator=(const FastCGIResolver&) = delete;

  /// The target of `url_path` for `config` (which the executor job holds until it is
  /// done). Completes on the calling loop's thread; at once for a cached or malformed
  /// path. Never fails: a lookup that throws resolves to not_found.
  Future<FastCGITarget> resolve(std::shared_ptr<const FastCGIConfig> config,
                                std::string_view url_path);

  /// Forgets every cached answer.
  void clear();

 private:
  struct Cache;
  FileLookup lookup_;
  // Shared with the executor jobs, which store what they found.
  std::shared_ptr<Cache> cache_;
};

}  // namespace tronada
