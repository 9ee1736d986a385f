#include "tronada/web/root_directory.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>

namespace tronada {

namespace {

// -1: not probed yet; 0: no openat2 (ENOSYS, or disabled by a test); 1: available.
std::atomic<int> g_openat2{-1};
std::atomic<bool> g_openat2_disabled{false};

/// A descriptor closed at the end of its scope unless released.
struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd, o.fd);
    return *this;
  }
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

int sys_openat2(int dirfd, const char* path, int flags, std::uint64_t resolve) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.resolve = resolve;
  for (;;) {
    long r = ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    // EAGAIN: a rename raced with RESOLVE_BENEATH's check; the kernel asks to retry.
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    return static_cast<int>(r);
  }
}

int openat_retrying(int dirfd, const char* path, int flags) {
  for (;;) {
    int r = ::openat(dirfd, path, flags | O_CLOEXEC);
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Reading a regular file's descriptor: O_NONBLOCK and O_NOCTTY change nothing for it, and
// make sure that whatever a race swapped in can neither block the open nor become our
// terminal.
constexpr int kReadFlags = O_RDONLY | O_NONBLOCK | O_NOCTTY;

/// The outcome of one way of opening: decided, or "ask the realpath rule".
struct Attempt {
  bool decided = false;
  ResolvedPath result;
};

Attempt decide(ResolvedPath::Kind kind) {
  Attempt a;
  a.decided = true;
  a.result.kind = kind;
  return a;
}

Attempt undecided() {
  return {};
}

/// From a descriptor that names the path (O_PATH) and a way to open it for reading: the
/// result for a regular file, a directory, or anything else.
template <typename OpenForReading>
Attempt finish_open(int path_fd, OpenForReading open_for_reading) {
  struct stat st {};
  if (::fstat(path_fd, &st) != 0) return decide(ResolvedPath::Kind::not_found);
  if (S_ISDIR(st.st_mode)) {
    Attempt a = decide(ResolvedPath::Kind::directory);
    a.result.status = st;
    return a;
  }
  if (!S_ISREG(st.st_mode)) return decide(ResolvedPath::Kind::not_found);
  Fd fd(open_for_reading());
  if (fd.fd < 0) {
    if (errno == EACCES || errno == EPERM) return decide(ResolvedPath::Kind::forbidden);
    if (errno == ENOENT || errno == ENOTDIR) return decide(ResolvedPath::Kind::not_found);
    return undecided();  // a symlink or an escape appeared since: the old rule decides
  }
  struct stat opened {};
  if (::fstat(fd.fd, &opened) != 0 || !S_ISREG(opened.st_mode) || !same_file(st, opened)) {
    return undecided();  // replaced between the two opens
  }
  Attempt a = decide(ResolvedPath::Kind::file);
  a.result.status = opened;
  a.result.file = std::make_shared<OpenFile>(fd.release());
  return a;
}

/// One openat2 call resolves the whole path, symlinks included, refusing (EXDEV) any
/// step that leaves the root and any /proc-style magic link.
Attempt open_beneath(int root, const char* path, std::uint64_t resolve) {
  Fd path_fd(sys_openat2(root, path, O_PATH, resolve));
  if (path_fd.fd < 0) {
    switch (errno) {
      case ENOENT:
      case ENOTDIR:
      case EACCES:
      case ENAMETOOLONG:
        return decide(ResolvedPath::Kind::not_found);  // as stat failing was
      default:
        return undecided();  // EXDEV, ELOOP...: the realpath rule decides
    }
  }
  return finish_open(path_fd.fd, [&] { return sys_openat2(root, path, kReadFlags, resolve); });
}

/// Without openat2: one component at a time, never following a symlink. The first
/// symlink met hands the path to the realpath rule.
Attempt open_by_walk(int root, std::string_view path) {
  Fd dir;
  int parent = root;
  for (;;) {
    auto slash = path.find('/');
    std::string name(path.substr(0, slash));
    bool last = slash == std::string_view::npos;
    Fd next(openat_retrying(parent, name.c_str(), O_PATH | O_NOFOLLOW));
    if (next.fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR || errno == EACCES || errno == ENAMETOOLONG) {
        return decide(ResolvedPath::Kind::not_found);
      }
      return undecided();
    }
    struct stat st {};
    if (::fstat(next.fd, &st) != 0) return decide(ResolvedPath::Kind::not_found);
    if (S_ISLNK(st.st_mode)) return undecided();
    if (last) {
      return finish_open(
          next.fd, [&] { return openat_retrying(parent, name.c_str(), kReadFlags | O_NOFOLLOW); });
    }
    if (!S_ISDIR(st.st_mode)) return decide(ResolvedPath::Kind::not_found);
    dir = std::move(next);
    parent = dir.fd;
    path.remove_prefix(slash + 1);
  }
}

bool inside(const std::string& real, const std::string& root) {
  return real == root || (real.size() > root.size() && real.compare(0, root.size(), root) == 0 &&
                          (root.back() == '/' || real[root.size()] == '/'));
}

}  // namespace

bool RootDirectory::have_openat2() {
  if (g_openat2_disabled.load(std::memory_order_relaxed)) return false;
  int known = g_openat2.load(std::memory_order_relaxed);
  if (known >= 0) return known == 1;
  Fd probe(sys_openat2(AT_FDCWD, "/", O_PATH, RESOLVE_BENEATH));
  // ENOSYS: before Linux 5.6; E2BIG/EINVAL: a kernel that knows other open_how fields.
  bool have = probe.fd >= 0 || (errno != ENOSYS && errno != E2BIG && errno != EINVAL &&
                                errno != EPERM /* seccomp filters that do not know it */);
  g_openat2.store(have ? 1 : 0, std::memory_order_relaxed);
  return have;
}

void RootDirectory::disable_openat2_for_testing(bool disabled) {
  g_openat2_disabled.store(disabled, std::memory_order_relaxed);
}

ResolvedPath RootDirectory::open(std::string_view relative) const {
  // The root is looked up by its path on every call, as before: a root directory that
  // was replaced (rm -r and mkdir, a deploy's rename) is served as it is now.
  Fd root(openat_retrying(AT_FDCWD, real_root_.c_str(), O_PATH | O_DIRECTORY));
  if (root.fd < 0) return {};
  std::string path(relative.empty() ? std::string_view(".") : relative);
  bool beneath = have_openat2();
  Attempt fast = beneath
                     ? open_beneath(root.fd, path.c_str(), RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
                     : open_by_walk(root.fd, path);
  if (fast.decided) return std::move(fast.result);

  // The realpath rule, as StaticFiles always had it: what stat sees decides between
  // directory, not found and file; a file is served only if its real path is inside the
  // root.
  std::string full = relative.empty() ? real_root_ : real_root_ + "/" + path;
  struct stat st {};
  if (::stat(full.c_str(), &st) != 0) return {};
  if (S_ISDIR(st.st_mode)) {
    ResolvedPath r;
    r.kind = ResolvedPath::Kind::directory;
    r.status = st;
    return r;
  }
  if (!S_ISREG(st.st_mode)) return {};
  char resolved[PATH_MAX];
  if (!::realpath(full.c_str(), resolved) || !inside(resolved, real_root_)) {
    ResolvedPath r;
    r.kind = ResolvedPath::Kind::forbidden;
    return r;
  }
  // Opened by its real path with no symlink allowed on the way: a link swapped in after
  // realpath looked cannot send the open elsewhere.
  std::string_view real(resolved);
  real.remove_prefix(real_root_.size());
  while (!real.empty() && real.front() == '/') real.remove_prefix(1);
  if (real.empty()) return {};
  std::string real_path(real);
  Attempt strict =
      beneath ? open_beneath(root.fd, real_path.c_str(), RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
              : open_by_walk(root.fd, real_path);
  if (strict.decided && strict.result.kind != ResolvedPath::Kind::directory) {
    return std::move(strict.result);
  }
  return {};
}

}  // namespace tronada
