// OpenFileCache: what serving a file needs, kept per loop so that a file served again
// costs no system call but the write (nginx's open_file_cache, h2o's file cache).
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tronada/async/future.h"
#include "tronada/loop/io_loop.h"
#include "tronada/net/file_region.h"

namespace tronada {

/// What tells one version of a file from another: a file replaced (rename), rewritten,
/// truncated or touched differs in at least one of these.
struct FileIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_sec = 0;
  std::int64_t mtime_nsec = 0;
  std::int64_t ctime_sec = 0;
  std::int64_t ctime_nsec = 0;

  static FileIdentity of(const struct stat& st);
  bool operator==(const FileIdentity&) const = default;
};

/// One representation of a file (the file itself, or a precompressed sibling) with
/// everything a response needs, computed once.
struct CachedRepresentation {
  std::shared_ptr<const OpenFile> file;
  FileIdentity identity;
  std::string etag;           // quoted, nginx's form: "<hex mtime>-<hex size>"
  std::string last_modified;  // IMF-fixdate
  std::string content_length;
  /// The bytes, for files small enough to keep (has_content).
  std::string content;
  bool has_content = false;

  std::uint64_t size() const { return identity.size; }
};

/// What a URL path resolved to. Immutable once made: responses in flight keep using an
/// entry the cache has since replaced or evicted, and its files stay open until they
/// finish.
struct CachedFile {
  enum class Kind { file, not_found, forbidden, redirect_to_dir };
  Kind kind = Kind::not_found;
  /// The media type, from the path of the file served (an index file's for a directory).
  std::string_view media_type;
  CachedRepresentation identity;
  /// Precompressed siblings (file.br, file.gz), when present and enabled.
  std::optional<CachedRepresentation> brotli;
  std::optional<CachedRepresentation> gzip;

  bool has_variants() const { return brotli || gzip; }
  /// Heap bytes of file contents held (what the memory cap counts).
  std::size_t content_bytes() const;
  /// Descriptors held: files kept in memory need theirs no more and close it at once.
  std::size_t open_files() const;
};

/// The cache's limits (nginx: open_file_cache max=, open_file_cache_valid).
struct OpenFileCacheOptions {
  /// How long an entry is trusted without looking at the file again. 0: every request
  /// looks (a change is seen at once).
  std::chrono::milliseconds valid_for = std::chrono::seconds(1);
  /// Entries kept, least recently used evicted first. 0 disables the cache (concurrent
  /// lookups of one path still share one trip to the file system).
  std::size_t max_entries = 4096;
  /// Bytes of file contents kept, at most, over all entries.
  std::size_t max_memory = 32 * 1024 * 1024;
  /// Descriptors kept open, at most (large files, sent from their descriptor). 0: a
  /// quarter of the process's soft RLIMIT_NOFILE, so that the cache can never starve
  /// accept() of descriptors, whatever cache_entries says.
  std::size_t max_open_files = 0;
};

/// An LRU map from a key (the request path) to a CachedFile, used by one loop thread and
/// held by shared_ptr (a lookup on the executor holds it until it lands).
///
/// A fresh entry (looked at within valid_for) is returned by find() with no system call
/// and no allocation. Otherwise load() runs the loader on the executor, once per key
/// however many requests wait for it, and publishes what it found. The loader gets the
/// entry it replaces so that revalidation can keep it when the file did not change.
/// Only Kind::file results are kept; other outcomes go to the requests that waited.
///
/// Memory: entries are bounded by max_entries, their contents by max_memory and their
/// descriptors by max_open_files (an entry added evicts the least recently used until all
/// three hold). An evicted entry lives on while responses still use it.
class OpenFileCache : public std::enable_shared_from_this<OpenFileCache> {
 public:
  /// Runs on the executor: resolves the key afresh. `previous` is the entry being
  /// revalidated (null on a miss); returning it unchanged keeps it.
  using Loader =
      std::function<std::shared_ptr<const CachedFile>(const std::shared_ptr<const CachedFile>&)>;

  explicit OpenFileCache(OpenFileCacheOptions options);
  OpenFileCache(const OpenFileCache&) = delete;
  OpenFileCache& operator=(const OpenFileCache&) = delete;

  /// The entry for `key` if it was validated less than valid_for before `now` (the
  /// loop's time); marks it used. Valid until the cache is next changed (load, or a load
  /// landing), which is enough to answer one request from it.
  const CachedFile* find(std::string_view key, TimePoint now);
  /// Looks `key` up afresh on the executor and keeps what it found. A request that comes
  /// while a lookup of its key is under way shares that lookup. Fails only if the loader
  /// threw.
  Future<std::shared_ptr<const CachedFile>> load(std::string_view key, Loader loader, IOLoop& loop);

  const OpenFileCacheOptions& options() const { return options_; }
  std::size_t size() const { return slots_.size(); }
  std::size_t content_bytes() const { return content_bytes_; }
  std::size_t open_files() const { return open_files_; }

 private:
  struct Slot {
    std::string key;
    std::shared_ptr<const CachedFile> entry;  // null while the first load runs
    TimePoint validated_at{};
    // The load under way: when it began, and who waits for it.
    bool loading = false;
    TimePoint load_started{};
    std::vector<Promise<std::shared_ptr<const CachedFile>>> waiters;
  };
  using Slots = std::list<Slot>;

  void finish_load(Slots::iterator slot, std::shared_ptr<const CachedFile> found,
                   std::exception_ptr error);
  void drop(Slots::iterator slot);
  void evict(Slots::iterator keep);

  OpenFileCacheOptions options_;
  Slots slots_;                                                  // most recently used first
  std::unordered_map<std::string_view, Slots::iterator> index_;  // keys point into slots_
  std::size_t content_bytes_ = 0;
  std::size_t open_files_ = 0;
  std::size_t max_open_files_;
};

}  // namespace tronada
