#include "tronada/web/open_file_cache.h"

#include <sys/resource.h>

#include <algorithm>

namespace tronada {

FileIdentity FileIdentity::of(const struct stat& st) {
  FileIdentity id;
  id.device = static_cast<std::uint64_t>(st.st_dev);
  id.inode = static_cast<std::uint64_t>(st.st_ino);
  id.size = static_cast<std::uint64_t>(st.st_size);
  id.mtime_sec = st.st_mtim.tv_sec;
  id.mtime_nsec = st.st_mtim.tv_nsec;
  // ctime too: `touch -m -d` can put the old mtime back on new contents of the same
  // size, but it cannot hide the change from ctime.
  id.ctime_sec = st.st_ctim.tv_sec;
  id.ctime_nsec = st.st_ctim.tv_nsec;
  return id;
}

std::size_t CachedFile::content_bytes() const {
  std::size_t n = identity.content.size();
  if (brotli) n += brotli->content.size();
  if (gzip) n += gzip->content.size();
  return n;
}

std::size_t CachedFile::open_files() const {
  return (identity.file ? 1 : 0) + (brotli && brotli->file ? 1 : 0) + (gzip && gzip->file ? 1 : 0);
}

OpenFileCache::OpenFileCache(OpenFileCacheOptions options) : options_(options) {
  max_open_files_ = options_.max_open_files;
  if (max_open_files_ == 0) {
    rlimit limit{};
    rlim_t soft = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 ? limit.rlim_cur : 1024;
    if (soft == RLIM_INFINITY || soft > (rlim_t{1} << 30)) soft = rlim_t{1} << 30;
    max_open_files_ = std::max<std::size_t>(16, static_cast<std::size_t>(soft) / 4);
  }
}

const CachedFile* OpenFileCache::find(std::string_view key, TimePoint now) {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  Slot& slot = *it->second;
  if (!slot.entry || now - slot.validated_at >= options_.valid_for) return nullptr;
  if (it->second != slots_.begin()) slots_.splice(slots_.begin(), slots_, it->second);
  return slot.entry.get();
}

Future<std::shared_ptr<const CachedFile>> OpenFileCache::load(std::string_view key, Loader loader,
                                                              IOLoop& loop) {
  Promise<std::shared_ptr<const CachedFile>> promise(&loop);
  Future<std::shared_ptr<const CachedFile>> future = promise.get_future();
  auto found = index_.find(key);
  Slots::iterator slot;
  if (found == index_.end()) {
    slots_.emplace_front();
    slot = slots_.begin();
    slot->key.assign(key);
    index_.emplace(slot->key, slot);
  } else {
    slot = found->second;
    slots_.splice(slots_.begin(), slots_, slot);
  }
  slot->waiters.push_back(std::move(promise));
  if (slot->loading) return future;  // coalesced with the lookup under way

  slot->loading = true;
  slot->load_started = loop.time();
  auto result = std::make_shared<std::shared_ptr<const CachedFile>>();
  loop.run_in_threadpool(
      [loader = std::move(loader), previous = slot->entry, result] { *result = loader(previous); },
      // Loading slots are never evicted, so the iterator is still good when this lands.
      [self = shared_from_this(), slot, result](std::exception_ptr error) {
        self->finish_load(slot, std::move(*result), error);
      });
  return future;
}

void OpenFileCache::finish_load(Slots::iterator slot, std::shared_ptr<const CachedFile> found,
                                std::exception_ptr error) {
  auto waiters = std::move(slot->waiters);
  slot->waiters.clear();
  slot->loading = false;
  if (!error && found && found->kind == CachedFile::Kind::file && options_.max_entries > 0) {
    if (slot->entry) {
      content_bytes_ -= slot->entry->content_bytes();
      open_files_ -= slot->entry->open_files();
    }
    slot->entry = found;
    content_bytes_ += found->content_bytes();
    open_files_ += found->open_files();
    // Trusted from when the look began: a change after that is seen valid_for later.
    slot->validated_at = slot->load_started;
    evict(slot);
  } else {
    // Errors, missing files, redirects: answered, not kept (as nginx's default,
    // open_file_cache_errors off), so a stream of random paths cannot push out files.
    drop(slot);
  }
  for (auto& w : waiters) {
    if (error) {
      w.try_set_exception(error);
    } else {
      w.try_set_result(found);
    }
  }
}

void OpenFileCache::drop(Slots::iterator slot) {
  if (slot->entry) {
    content_bytes_ -= slot->entry->content_bytes();
    open_files_ -= slot->entry->open_files();
  }
  index_.erase(std::string_view(slot->key));
  slots_.erase(slot);
}

void OpenFileCache::evict(Slots::iterator keep) {
  while (slots_.size() > options_.max_entries || content_bytes_ > options_.max_memory ||
         open_files_ > max_open_files_) {
    // The least recently used that is neither the one just added nor being looked up.
    auto victim = slots_.end();
    for (auto it = slots_.end(); it != slots_.begin();) {
      --it;
      if (it != keep && !it->loading) {
        victim = it;
        break;
      }
    }
    if (victim == slots_.end()) return;
    drop(victim);
  }
}

}  // namespace tronada
