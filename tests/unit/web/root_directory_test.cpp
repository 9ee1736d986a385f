// RootDirectory: the same answers with openat2 and with the O_NOFOLLOW walk, and exactly
// the old realpath rule for symlinks.
#include "tronada/web/root_directory.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using namespace tronada;
namespace fs = std::filesystem;
using Kind = ResolvedPath::Kind;

namespace {

std::string read_all(const ResolvedPath& r) {
  std::string out(static_cast<std::size_t>(r.status.st_size), '\0');
  EXPECT_EQ(::pread(r.file->fd(), out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
  return out;
}

/// A site below a temporary directory, with a secret beside it:
///   site/index.html, site/sub/a.txt, site/fifo
///   site/inside-abs.txt -> /abs/site/sub/a.txt   (absolute, stays inside)
///   site/inside-rel.txt -> sub/a.txt
///   site/inside-up.txt  -> ../site/sub/a.txt     (leaves and comes back: still inside)
///   site/escape.txt     -> ../secret.txt
///   site/escape-dir     -> ..                    (a directory out of the root)
///   site/dangling.txt   -> nowhere.txt
class RootDirectoryTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    RootDirectory::disable_openat2_for_testing(!GetParam());
    char tmpl[] = "/tmp/tronada-root-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    char real[PATH_MAX];
    ASSERT_NE(realpath(tmpl, real), nullptr);
    base_ = real;
    site_ = base_ / "site";
    fs::create_directories(site_ / "sub");
    std::ofstream(site_ / "index.html") << "<h1>home</h1>";
    std::ofstream(site_ / "sub" / "a.txt") << "alpha";
    std::ofstream(base_ / "secret.txt") << "outside";
    ASSERT_EQ(mkfifo((site_ / "fifo").c_str(), 0644), 0);
    fs::create_symlink(site_ / "sub" / "a.txt", site_ / "inside-abs.txt");
    fs::create_symlink("sub/a.txt", site_ / "inside-rel.txt");
    fs::create_symlink("../site/sub/a.txt", site_ / "inside-up.txt");
    fs::create_symlink("../secret.txt", site_ / "escape.txt");
    fs::create_symlink("..", site_ / "escape-dir");
    fs::create_symlink("nowhere.txt", site_ / "dangling.txt");
  }
  void TearDown() override {
    RootDirectory::disable_openat2_for_testing(false);
    fs::remove_all(base_);
  }

  fs::path base_;
  fs::path site_;
};

TEST_P(RootDirectoryTest, FilesAndDirectories) {
  RootDirectory root(site_.string());
  ResolvedPath r = root.open("sub/a.txt");
  ASSERT_EQ(r.kind, Kind::file);
  EXPECT_EQ(read_all(r), "alpha");
  EXPECT_EQ(root.open("").kind, Kind::directory);
  EXPECT_EQ(root.open("sub").kind, Kind::directory);
  EXPECT_EQ(root.open("missing.txt").kind, Kind::not_found);
  EXPECT_EQ(root.open("sub/a.txt/more").kind, Kind::not_found);
  EXPECT_EQ(root.open("dangling.txt").kind, Kind::not_found);
}

TEST_P(RootDirectoryTest, SymlinksThatStayInsideAreFollowed) {
  RootDirectory root(site_.string());
  for (const char* name : {"inside-abs.txt", "inside-rel.txt", "inside-up.txt"}) {
    ResolvedPath r = root.open(name);
    ASSERT_EQ(r.kind, Kind::file) << name;
    EXPECT_EQ(read_all(r), "alpha") << name;
  }
}

TEST_P(RootDirectoryTest, SymlinksOutOfTheRootAreForbidden) {
  RootDirectory root(site_.string());
  EXPECT_EQ(root.open("escape.txt").kind, Kind::forbidden);
  EXPECT_EQ(root.open("escape-dir/secret.txt").kind, Kind::forbidden);
  // A directory out of the root is still a directory (a redirect, as before); what is
  // in it is never opened.
  EXPECT_EQ(root.open("escape-dir").kind, Kind::directory);
}

TEST_P(RootDirectoryTest, DirectoryTurnedIntoASymlinkOutOfTheRoot) {
  RootDirectory root(site_.string());
  ASSERT_EQ(root.open("sub/a.txt").kind, Kind::file);
  fs::create_directories(base_ / "elsewhere");
  std::ofstream(base_ / "elsewhere" / "a.txt") << "not yours";
  fs::rename(site_ / "sub", base_ / "old-sub");
  fs::create_symlink(base_ / "elsewhere", site_ / "sub");
  EXPECT_EQ(root.open("sub/a.txt").kind, Kind::forbidden);
}

TEST_P(RootDirectoryTest, OnlyRegularFilesAreOpened) {
  RootDirectory root(site_.string());
  // Opening a FIFO for reading would block until a writer came: it is never opened.
  EXPECT_EQ(root.open("fifo").kind, Kind::not_found);
}

TEST_P(RootDirectoryTest, UnreadableFileIsForbidden) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads every file";
  RootDirectory root(site_.string());
  fs::permissions(site_ / "index.html", fs::perms::none);
  EXPECT_EQ(root.open("index.html").kind, Kind::forbidden);
}

TEST_P(RootDirectoryTest, RootReplacedIsServedAsItIsNow) {
  RootDirectory root(site_.string());
  fs::rename(site_, base_ / "old-site");
  fs::create_directories(site_);
  std::ofstream(site_ / "new.txt") << "new";
  EXPECT_EQ(root.open("index.html").kind, Kind::not_found);
  EXPECT_EQ(root.open("new.txt").kind, Kind::file);
  fs::remove_all(site_);
  EXPECT_EQ(root.open("new.txt").kind, Kind::not_found);
}

INSTANTIATE_TEST_SUITE_P(Resolution, RootDirectoryTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("openat2") : std::string("walk");
                         });

}  // namespace
