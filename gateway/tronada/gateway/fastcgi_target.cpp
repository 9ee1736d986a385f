#include "tronada/gateway/fastcgi_target.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "tronada/async/executor.h"
#include "tronada/gateway/fastcgi_handler.h"
#include "tronada/http/http_headers.h"
#include "tronada/http/url_codec.h"

namespace tronada {

namespace {

/// True if `real` (a resolved path) is `real_root` or lies below it.
bool inside_root(const std::string& real_root, const std::string& real) {
  if (real.empty()) return false;
  if (real == real_root) return true;
  return real.size() > real_root.size() && real.starts_with(real_root) &&
         (real_root.back() == '/' || real[real_root.size()] == '/');
}

/// Position just past the first `split` (case-insensitive) followed by '/' or the end.
std::size_t split_position(std::string_view path, std::string_view split) {
  if (split.empty()) return std::string_view::npos;
  for (std::size_t i = 0; i + split.size() <= path.size(); ++i) {
    if (!detail::iequals(path.substr(i, split.size()), split)) continue;
    std::size_t end = i + split.size();
    if (end == path.size() || path[end] == '/') return end;
  }
  return std::string_view::npos;
}

}  // namespace

std::optional<std::string> normalize_url_path(std::string_view url_path) {
  if (!url_path.starts_with('/')) return std::nullopt;
  auto decoded = url_decode(url_path);
  if (!decoded) return std::nullopt;
  const std::string& in = *decoded;
  if (in.find('\0') != std::string::npos) return std::nullopt;
  // RFC 3986 5.2.4 over whole segments, with empty segments dropped (nginx's
  // merge_slashes). A "." or ".." as the last segment leaves a trailing slash, as the
  // RFC's "/a/b/.." -> "/a/" does.
  std::string out = "/";
  bool trailing = false;
  std::size_t pos = 1;
  while (pos <= in.size()) {
    std::size_t slash = in.find('/', pos);
    std::size_t end = slash == std::string::npos ? in.size() : slash;
    std::string_view seg(in.data() + pos, end - pos);
    if (seg == "..") {
      if (out.size() == 1) return std::nullopt;  // above the root
      out.pop_back();                            // the segment's own slash
      out.erase(out.rfind('/') + 1);
      trailing = true;
    } else if (seg == ".") {
      trailing = true;
    } else if (!seg.empty()) {
      out.append(seg);
      out += '/';
      trailing = false;
    }
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  // `out` ends with '/' after every kept segment; it stays only when the path asked.
  bool asked = trailing || in.back() == '/';
  if (out.size() > 1 && !asked) out.pop_back();
  return out;
}

FileInfo look_up_file(const std::string& path) {
  FileInfo info;
  char resolved[PATH_MAX];
  if (!::realpath(path.c_str(), resolved)) return info;
  struct stat st {};
  if (::stat(resolved, &st) != 0) return info;
  info.real_path = resolved;
  if (S_ISREG(st.st_mode)) {
    info.type = FileInfo::Type::file;
  } else if (S_ISDIR(st.st_mode)) {
    info.type = FileInfo::Type::directory;
  } else {
    info.type = FileInfo::Type::other;
  }
  return info;
}

namespace {

/// Caddy's rules over a normalised path; every file system question goes to `lookup`.
FastCGITarget resolve_normalized(const FastCGIConfig& config, std::string path,
                                 const FileLookup& lookup) {
  FastCGITarget t;
  t.path = path;
  // Refused as StaticFiles refuses it (a Windows-style separator is never ours to map).
  if (path.find('\\') != std::string::npos) return t;
  const std::string& root = config.root;
  bool trailing_slash = path.size() > 1 && path.back() == '/';
  // The file system path: no trailing slash ("/a.php/" names no file).
  std::string bare = trailing_slash ? path.substr(0, path.size() - 1) : path;

  auto script = [&](std::string name, std::string info) -> FastCGITarget {
    FastCGITarget s;
    s.path = path;
    FileInfo f = lookup(root + name);
    if (f.type != FileInfo::Type::file || !inside_root(root, f.real_path)) return s;
    s.kind = FastCGITarget::Kind::script;
    s.script_name = std::move(name);
    s.path_info = std::move(info);
    s.script_filename = root + s.script_name;
    return s;
  };

  std::size_t split = split_position(path, config.split);
  if (split != std::string::npos) {
    auto s = script(path.substr(0, split), path.substr(split));
    if (s.kind == FastCGITarget::Kind::script || !config.try_files) return s;
  } else if (config.try_files) {
    if (bare == "/") {
      auto s = script("/" + config.index, "");
      if (s.kind == FastCGITarget::Kind::script) return s;
      t.kind = FastCGITarget::Kind::file;
      return t;
    }
    FileInfo f = lookup(root + bare);
    bool inside = inside_root(root, f.real_path);
    if (f.type == FileInfo::Type::directory) {
      std::string index = bare + "/" + config.index;
      if (inside && lookup(root + index).type == FileInfo::Type::file) {
        if (!trailing_slash) {
          t.kind = FastCGITarget::Kind::redirect_slash;
          return t;
        }
        return script(index, "");
      }
      if (inside) {
        t.kind = FastCGITarget::Kind::file;  // StaticFiles: index.html or 404
        return t;
      }
    } else if (f.type == FileInfo::Type::file && inside) {
      t.kind = FastCGITarget::Kind::file;
      return t;
    }
  } else {
    return t;
  }
  // Caddy's front controller: whatever is not a file runs /index.php.
  return script("/" + config.index, "");
}

}  // namespace

FastCGITarget resolve_fastcgi_target(const FastCGIConfig& config, std::string_view url_path,
                                     const FileLookup& lookup) {
  auto path = normalize_url_path(url_path);
  if (!path) {
    FastCGITarget t;
    t.kind = FastCGITarget::Kind::bad_request;
    return t;
  }
  return resolve_normalized(config, std::move(*path), lookup);
}

/// Answers by normalised path, each good until its deadline.
struct FastCGIResolver::Cache {
  Duration ttl;
  std::size_t max_entries;
  std::mutex mutex;
  struct Entry {
    FastCGITarget target;
    TimePoint expires;
  };
  std::unordered_map<std::string, Entry> entries;

  std::optional<FastCGITarget> find(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = entries.find(key);
    if (it == entries.end() || Clock::now() >= it->second.expires) return std::nullopt;
    return it->second.target;
  }

  void store(const std::string& key, const FastCGITarget& target) {
    std::lock_guard<std::mutex> lock(mutex);
    TimePoint now = Clock::now();
    if (entries.size() >= max_entries && !entries.contains(key)) {
      std::erase_if(entries, [now](const auto& kv) { return kv.second.expires <= now; });
      if (entries.size() >= max_entries) entries.clear();
    }
    entries.insert_or_assign(key, Entry{target, now + ttl});
  }
};

FastCGIResolver::FastCGIResolver(Options options)
    : lookup_(options.lookup ? std::move(options.lookup) : FileLookup(look_up_file)) {
  if (options.ttl > Duration::zero() && options.max_entries > 0) {
    cache_ = std::make_shared<Cache>();
    cache_->ttl = options.ttl;
    cache_->max_entries = options.max_entries;
  }
}

FastCGIResolver::~FastCGIResolver() = default;

Future<FastCGITarget> FastCGIResolver::resolve(std::shared_ptr<const FastCGIConfig> config,
                                               std::string_view url_path) {
  auto path = normalize_url_path(url_path);
  if (!path) {
    FastCGITarget t;
    t.kind = FastCGITarget::Kind::bad_request;
    return make_ready_future<FastCGITarget>(std::move(t));
  }
  if (cache_) {
    if (auto hit = cache_->find(*path)) return make_ready_future<FastCGITarget>(std::move(*hit));
  }
  // The job holds what it reads (the config's root and rules, the lookup, the cache) by
  // value: a reload may drop the route while it runs.
  auto job = [config = std::move(config), path = std::move(*path), lookup = lookup_,
              cache = cache_] {
    FastCGITarget t;
    try {
      t = resolve_normalized(*config, path, lookup);
    } catch (...) {
      t = FastCGITarget{};  // a file system that fails serves nothing
      t.path = path;
    }
    if (cache) cache->store(path, t);
    return t;
  };
  return run_in_executor(std::move(job));
}

void FastCGIResolver::clear() {
  if (!cache_) return;
  std::lock_guard<std::mutex> lock(cache_->mutex);
  cache_->entries.clear();
}

}  // namespace tronada
