#include "cli/file_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace tronada::cli {

namespace fs = std::filesystem;

namespace {

// Saving a file shows up differently per editor: vim writes a new file and renames it,
// others truncate and write. These cover both, and deletions.
constexpr std::uint32_t kEvents =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

FileWatcher::FileWatcher(WatchFilter filter) : filter_(std::move(filter)) {
  fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error(std::string("inotify_init1: ") + std::strerror(errno));
}

FileWatcher::~FileWatcher() {
  if (fd_ >= 0) ::close(fd_);
}

void FileWatcher::add(const fs::path& path, const std::set<std::string>& skip) {
  if (fs::is_directory(path)) {
    add_tree(path, skip);
  } else if (fs::exists(path)) {
    fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
    add_dir(dir, Watch{dir, {path.filename().string()}, {}});
  } else {
    throw std::runtime_error("cannot watch " + path.string() + ": no such file or folder");
  }
}

void FileWatcher::add_tree(const fs::path& dir, const std::set<std::string>& skip) {
  add_dir(dir, Watch{dir, {}, skip});
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (e.is_directory() && !e.is_symlink() && name[0] != '.' && !skip.count(name)) {
      add_tree(e.path(), skip);
    }
  }
}

void FileWatcher::add_dir(const fs::path& dir, Watch watch) {
  int wd = ::inotify_add_watch(fd_, dir.c_str(), kEvents);
  if (wd < 0) {
    throw std::runtime_error("cannot watch " + dir.string() + ": " + std::strerror(errno));
  }
  // inotify gives one descriptor per folder: a second add() for the same folder widens it.
  auto [it, inserted] = watches_.emplace(wd, watch);
  if (!inserted) {
    if (it->second.only.empty() || watch.only.empty()) {
      it->second.only.clear();
    } else {
      it->second.only.insert(watch.only.begin(), watch.only.end());
    }
  }
}

bool FileWatcher::counts(const std::string& name) const {
  if (name.empty() || name[0] == '.' || name.back() == '~' || name == "4913") return false;
  if (ends_with(name, ".swp") || ends_with(name, ".swx") || ends_with(name, ".tmp")) return false;
  if (filter_.suffixes.empty()) return true;
  for (const std::string& s : filter_.suffixes) {
    if (ends_with(name, s)) return true;
  }
  return false;
}

std::vector<fs::path> FileWatcher::read_changes() {
  std::vector<fs::path> changed;
  alignas(inotify_event) char buffer[16 * 1024];
  for (;;) {
    ssize_t n = ::read(fd_, buffer, sizeof buffer);
    if (n <= 0) break;  // EAGAIN: drained
    for (char* p = buffer; p < buffer + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      auto it = watches_.find(ev->wd);
      if (it == watches_.end() || ev->len == 0) continue;
      Watch& w = it->second;
      std::string name = ev->name;
      if ((ev->mask & IN_ISDIR) != 0) {
        // A new folder under a watched tree is watched too (and may already hold files).
        if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) != 0 && w.only.empty() && name[0] != '.' &&
            !w.skip.count(name)) {
          std::error_code ec;
          if (fs::is_directory(w.dir / name, ec)) {
            fs::path dir = w.dir / name;
            std::set<std::string> skip = w.skip;  // `w` may move as the map grows
            add_tree(dir, skip);
            changed.push_back(dir);
          }
        }
        continue;
      }
      if (!w.only.empty() && !w.only.count(name)) continue;
      if (!counts(name)) continue;
      changed.push_back(w.dir / name);
    }
  }
  return changed;
}

}  // namespace tronada::cli
