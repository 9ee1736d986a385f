// Watches source files for `tronada run --reload` with inotify: folders recursively
// (new subfolders included), single files through their folder.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace tronada::cli {

/// Which changes count: `suffixes` empty means every file; build output, hidden files
/// and editors' temporary files never count.
struct WatchFilter {
  std::vector<std::string> suffixes;  // e.g. {".py", ".toml"}
};

/// Owns one inotify descriptor (closed by the destructor) and its watches.
class FileWatcher {
 public:
  explicit FileWatcher(WatchFilter filter = {});
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  /// A folder (watched with everything below it, except `skip` folders by name such as
  /// build/) or one file. Throws std::runtime_error for a path that does not exist.
  void add(const std::filesystem::path& path, const std::set<std::string>& skip = {});

  /// The descriptor to poll for readability.
  int fd() const { return fd_; }

  /// Reads the pending events and returns the changed paths that pass the filter.
  /// Never blocks.
  std::vector<std::filesystem::path> read_changes();

 private:
  struct Watch {
    std::filesystem::path dir;
    std::set<std::string> only;  // file names, for a watched file; empty: any
    std::set<std::string> skip;
  };
  void add_tree(const std::filesystem::path& dir, const std::set<std::string>& skip);
  void add_dir(const std::filesystem::path& dir, Watch watch);
  bool counts(const std::string& name) const;

  int fd_ = -1;
  WatchFilter filter_;
  std::map<int, Watch> watches_;  // by watch descriptor
};

}  // namespace tronada::cli
