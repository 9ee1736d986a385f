#include "tronada/web/static_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <stdexcept>

#include "tronada/async/executor.h"
#include "tronada/http/http_date.h"
#include "tronada/http/url_codec.h"
#include "tronada/net/iostream.h"
#include "tronada/web/mime_types.h"
#include "tronada/web/response_transforms.h"

namespace tronada {

namespace {

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

/// An open file descriptor, closed when the last owner lets go.
struct FileHandle {
  int fd = -1;
  ~FileHandle() {
    if (fd >= 0) ::close(fd);
  }
};

struct Lookup {
  enum class Kind { file, not_found, forbidden, redirect_to_dir } kind = Kind::not_found;
  std::shared_ptr<FileHandle> file;
  std::string path;  // the file's path, for its media type
  std::uint64_t size = 0;
  long long mtime = 0;
  long long mtime_nsec = 0;
  std::string content;  // small files: read in the same hop
  bool content_read = false;
};

bool inside(const std::string& real, const std::string& root) {
  return real == root || (real.size() > root.size() && real.compare(0, root.size(), root) == 0 &&
                          (root.back() == '/' || real[root.size()] == '/'));
}

// Runs on the executor: every blocking call of a lookup in one hop.
Lookup lookup_file(const std::string& root, const std::string& rel, bool wants_dir_slash,
                   const std::vector<std::string>& index_files, std::size_t read_limit) {
  Lookup out;
  std::string full = rel.empty() ? root : root + "/" + rel;
  struct stat st {};
  if (stat(full.c_str(), &st) != 0) return out;
  if (S_ISDIR(st.st_mode)) {
    if (!wants_dir_slash) {
      out.kind = Lookup::Kind::redirect_to_dir;
      return out;
    }
    bool found = false;
    for (const auto& index : index_files) {
      std::string candidate = full + "/" + index;
      if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        full = candidate;
        found = true;
        break;
      }
    }
    if (!found) return out;  // no listings: 404, as Caddy's file_server without browse
  }
  if (!S_ISREG(st.st_mode)) return out;
  // Symlinks may point anywhere; only targets inside the root are served.
  char resolved[PATH_MAX];
  if (!realpath(full.c_str(), resolved) || !inside(resolved, root)) {
    out.kind = Lookup::Kind::forbidden;
    return out;
  }
  int fd = ::open(resolved, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    out.kind = errno == EACCES ? Lookup::Kind::forbidden : Lookup::Kind::not_found;
    return out;
  }
  out.file = std::make_shared<FileHandle>();
  out.file->fd = fd;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return Lookup{};
  out.kind = Lookup::Kind::file;
  out.path = full;
  out.size = static_cast<std::uint64_t>(st.st_size);
  out.mtime = st.st_mtim.tv_sec;
  out.mtime_nsec = st.st_mtim.tv_nsec;
  if (out.size <= read_limit) {
    out.content.resize(out.size);
    std::size_t got = 0;
    while (got < out.size) {
      ssize_t n = ::pread(fd, out.content.data() + got, out.size - got, static_cast<off_t>(got));
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    out.content.resize(got);
    out.size = got;
    out.content_read = true;
  }
  return out;
}

std::string make_etag(const Lookup& f) {
  // nginx's form: hex mtime and size. Cheap, and it changes whenever either does.
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "\"%llx-%llx\"", static_cast<unsigned long long>(f.mtime),
                        static_cast<unsigned long long>(f.size));
  return std::string(buf, static_cast<std::size_t>(n));
}

// Parses an IMF-fixdate; returns -1 if malformed.
long long parse_http_date(std::string_view s) {
  std::tm tm{};
  std::string text(s);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return -1;
  return static_cast<long long>(timegm(&tm));
}

void send_simple(HTTPServerRequest& req, int status, std::string_view text,
                 HTTPHeaders extra = {}) {
  extra.add("Content-Type", "text/plain; charset=utf-8");
  extra.add("Content-Length", std::to_string(text.size()));
  req.connection->write_response(status, extra, text);
}

}  // namespace

std::optional<ByteRange> parse_range_header(std::string_view header, std::uint64_t size,
                                            bool& unsatisfiable) {
  unsatisfiable = false;
  if (header.substr(0, 6) != "bytes=") return std::nullopt;
  std::string_view spec = header.substr(6);
  while (!spec.empty() && spec.front() == ' ') spec.remove_prefix(1);
  while (!spec.empty() && spec.back() == ' ') spec.remove_suffix(1);
  if (spec.find(',') != std::string_view::npos) return std::nullopt;  // multipart: whole file
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  if (a.empty()) {
    // Suffix range: the last N bytes.
    auto n = parse_u64(b);
    if (!n) return std::nullopt;
    if (*n == 0 || size == 0) {
      unsatisfiable = true;
      return std::nullopt;
    }
    std::uint64_t len = std::min(*n, size);
    return ByteRange{size - len, size - 1};
  }
  auto first = parse_u64(a);
  if (!first) return std::nullopt;
  std::uint64_t last = size ? size - 1 : 0;
  if (!b.empty()) {
    auto l = parse_u64(b);
    if (!l || *l < *first) return std::nullopt;
    last = std::min(*l, last);
  }
  if (*first >= size) {
    unsatisfiable = true;
    return std::nullopt;
  }
  return ByteRange{*first, last};
}

std::optional<std::string> safe_relative_path(std::string_view url_path) {
  auto decoded = url_decode(url_path);
  if (!decoded) return std::nullopt;
  std::string out;
  std::size_t pos = 0;
  const std::string& p = *decoded;
  while (pos <= p.size()) {
    auto slash = p.find('/', pos);
    std::string_view seg(p.data() + pos, (slash == std::string::npos ? p.size() : slash) - pos);
    if (seg.find('\0') != std::string_view::npos || seg.find('\\') != std::string_view::npos) {
      return std::nullopt;
    }
    if (seg == "..") return std::nullopt;
    if (!seg.empty() && seg != ".") {
      if (!out.empty()) out += '/';
      out.append(seg);
    }
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  return out;
}

StaticFiles::StaticFiles(StaticFileOptions options) : options_(std::move(options)) {
  char resolved[PATH_MAX];
  if (!realpath(options_.root.c_str(), resolved)) {
    throw std::runtime_error("static root " + options_.root + " does not exist or is unreadable");
  }
  struct stat st {};
  if (stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw std::runtime_error("static root " + options_.root + " is not a directory");
  }
  real_root_ = resolved;
}

Task<int> StaticFiles::serve(std::shared_ptr<HTTPServerRequest> request, std::string url_path,
                             std::uint64_t* body_bytes) const {
  HTTPServerRequest& req = *request;
  bool head = req.method == "HEAD";
  if (!head && req.method != "GET") {
    HTTPHeaders h;
    h.add("Allow", "GET, HEAD");
    send_simple(req, 405, "method not allowed\n", std::move(h));
    co_return 405;
  }
  auto rel = safe_relative_path(url_path);
  if (!rel) {
    send_simple(req, 404, "not found\n");
    co_return 404;
  }
  bool dir_slash = url_path.empty() || url_path.back() == '/';
  // The executor job gets its own copies; built outside the co_await expression because
  // GCC 12 mishandles init-captures of temporaries inside co_await operands.
  auto job = [root = real_root_, relative = std::move(*rel), dir_slash,
              index = options_.index_files, limit = options_.chunk_size] {
    return lookup_file(root, relative, dir_slash, index, limit);
  };
  Future<Lookup> lookup = run_in_executor(std::move(job));
  Lookup f = co_await lookup;
  switch (f.kind) {
    case Lookup::Kind::not_found:
      send_simple(req, 404, "not found\n");
      co_return 404;
    case Lookup::Kind::forbidden:
      send_simple(req, 403, "forbidden\n");
      co_return 403;
    case Lookup::Kind::redirect_to_dir: {
      HTTPHeaders h;
      std::string location = req.path + "/";
      if (!req.query.empty()) location += "?" + req.query;
      h.add("Location", location);
      send_simple(req, 301, "moved permanently\n", std::move(h));
      co_return 301;
    }
    case Lookup::Kind::file:
      break;
  }

  std::string etag = make_etag(f);
  std::string last_modified = format_http_date(f.mtime);
  HTTPHeaders h;
  h.add("Content-Type", std::string(mime_type_for(f.path)));
  h.add("Last-Modified", last_modified);
  h.add("ETag", etag);
  h.add("Accept-Ranges", "bytes");
  if (options_.max_age) {
    h.add("Cache-Control", "max-age=" + std::to_string(options_.max_age->count()));
  }

  // Conditional requests (RFC 9110 13.2.2): If-None-Match wins over If-Modified-Since.
  bool not_modified = false;
  if (auto inm = req.headers.get("If-None-Match")) {
    not_modified = etag_matches(*inm, etag);
  } else if (auto ims = req.headers.get("If-Modified-Since")) {
    long long since = parse_http_date(*ims);
    not_modified = since >= 0 && f.mtime <= since;
  }
  if (not_modified) {
    req.connection->write_response(304, h, {});
    co_return 304;
  }

  std::uint64_t first = 0, last = f.size ? f.size - 1 : 0;
  int status = 200;
  if (auto range = req.headers.get("Range")) {
    // If-Range: only honour the range if the validator still matches.
    bool honour = true;
    if (auto if_range = req.headers.get("If-Range")) {
      honour = *if_range == etag || *if_range == last_modified;
    }
    bool unsatisfiable = false;
    auto r = honour ? parse_range_header(*range, f.size, unsatisfiable) : std::nullopt;
    if (unsatisfiable) {
      HTTPHeaders e;
      e.add("Content-Range", "bytes */" + std::to_string(f.size));
      send_simple(req, 416, "range not satisfiable\n", std::move(e));
      co_return 416;
    }
    if (r) {
      status = 206;
      first = r->first;
      last = r->last;
      h.add("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                                 std::to_string(f.size));
    }
  }
  std::uint64_t length = f.size == 0 ? 0 : last - first + 1;
  h.add("Content-Length", std::to_string(length));
  HTTPConnection& conn = *req.connection;
  if (head || length == 0) {
    conn.write_response(status, h, {});
    co_return status;
  }
  if (f.content_read) {
    if (body_bytes) *body_bytes = length;
    conn.write_response(status, h,
                        std::string_view(f.content).substr(static_cast<std::size_t>(first),
                                                           static_cast<std::size_t>(length)));
    co_return status;
  }
  // Large file: pieces read on the executor, each written after the client drained
  // the previous ones, so memory stays at about two pieces per download.
  conn.write_headers(status, h);
  std::uint64_t offset = first;
  std::uint64_t end = last + 1;
  auto file = f.file;
  std::size_t chunk = options_.chunk_size;
  try {
    while (offset < end && !conn.closed()) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, end - offset));
      auto read_piece = [file, offset, want] {
        std::string buf(want, '\0');
        ssize_t n = ::pread(file->fd, buf.data(), want, static_cast<off_t>(offset));
        buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        return buf;
      };
      Future<std::string> pending = run_in_executor(std::move(read_piece));
      std::string piece = co_await pending;
      if (piece.empty()) break;  // truncated under us: the short body closes the connection
      offset += piece.size();
      if (body_bytes) *body_bytes += piece.size();
      conn.write(piece);
      co_await conn.drain();
    }
  } catch (const StreamClosedError&) {
    co_return status;  // the client went away
  }
  conn.finish();
  co_return status;
}

}  // namespace tronada
