// RootDirectory: opens files below a directory without ever leaving it, the way the
// kernel can enforce it (openat2 with RESOLVE_BENEATH) and, where that says no, by the
// rule StaticFiles has always applied (a symlink is followed only while its target
// stays inside the root).
#pragma once

#include <sys/stat.h>

#include <memory>
#include <string>
#include <string_view>

#include "tronada/net/file_region.h"

namespace tronada {

/// What a path below the root turned out to be.
struct ResolvedPath {
  enum class Kind { file, directory, not_found, forbidden };
  Kind kind = Kind::not_found;
  /// Kind::file: the file, open for reading.
  std::shared_ptr<const OpenFile> file;
  /// Kind::file and Kind::directory: its status (fstat of what was opened).
  struct stat status {};
};

/// A directory to serve files from, named by its real path (no symlinks in it).
///
/// open() is where every rule about escaping the root lives:
/// - A path that never leaves the root, symlinks included, is opened in one
///   openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) call from the root: the kernel
///   guarantees no component resolved outside it. Kernels without openat2 (before 5.6)
///   get the same from an O_NOFOLLOW walk, one component at a time, which stops at the
///   first symlink.
/// - Anything else (an absolute symlink, a ".." inside a symlink's target, a symlink on a
///   kernel without openat2) takes the old way: stat, then realpath, refused (forbidden)
///   if the real path is outside the root, else opened by that real path with no
///   symlink allowed on the way, so a link swapped in meanwhile cannot redirect it.
/// So the files served are exactly those whose real path is inside the root, as before,
/// and the realpath (a readlink per symlink) is paid only by paths through symlinks.
/// Only regular files are opened for reading: a FIFO or device below the root is
/// not_found, never opened.
///
/// Every call blocks on the file system: run it on the executor.
class RootDirectory {
 public:
  explicit RootDirectory(std::string real_root) : real_root_(std::move(real_root)) {}

  /// Opens `relative`, a path as safe_relative_path() makes them ("a/b.txt"; "" is the
  /// root itself): Kind::file with the file open O_RDONLY, Kind::directory (nothing
  /// opened), Kind::not_found, or Kind::forbidden (outside the root, or not readable).
  ResolvedPath open(std::string_view relative) const;

  const std::string& path() const { return real_root_; }

  /// Whether the kernel has openat2 (probed once per process; tests may turn it off to
  /// exercise the walk).
  static bool have_openat2();
  static void disable_openat2_for_testing(bool disabled);

 private:
  std::string real_root_;
};

}  // namespace tronada
