#include "tronada/web/static_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <span>
#include <stdexcept>

#include "tronada/async/executor.h"
#include "tronada/base/log.h"
#include "tronada/http/http_date.h"
#include "tronada/http/url_codec.h"
#include "tronada/net/iostream.h"
#include "tronada/web/mime_types.h"
#include "tronada/web/response_transforms.h"
#include "tronada/web/root_directory.h"

namespace tronada {

namespace {

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string decimal(std::uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  return std::string(buf, end);
}

std::string make_etag(const FileIdentity& id, std::string_view suffix) {
  // nginx's form: hex mtime and size. Cheap, and it changes whenever either does. An
  // encoded sibling says which it is, so no cache takes one for the other.
  char buf[64];
  char* p = buf;
  *p++ = '"';
  p = std::to_chars(p, buf + sizeof buf, static_cast<unsigned long long>(id.mtime_sec), 16).ptr;
  *p++ = '-';
  p = std::to_chars(p, buf + sizeof buf, id.size, 16).ptr;
  std::string etag(buf, p);
  etag.append(suffix);
  etag += '"';
  return etag;
}

/// Everything a response needs about one file, computed on the executor. Small files
/// come with their bytes, read in the same hop.
CachedRepresentation represent(const ResolvedPath& r, std::string_view etag_suffix,
                               std::size_t read_limit) {
  CachedRepresentation rep;
  rep.file = r.file;
  rep.identity = FileIdentity::of(r.status);
  if (rep.identity.size <= read_limit) {
    rep.content.resize(static_cast<std::size_t>(rep.identity.size));
    std::size_t got = 0;
    while (got < rep.content.size()) {
      ssize_t n = ::pread(r.file->fd(), rep.content.data() + got, rep.content.size() - got,
                          static_cast<off_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    // Truncated between fstat and the read: what we have is this version's whole body
    // (the next lookup sees the new size and replaces the entry).
    rep.content.resize(got);
    rep.identity.size = got;
    rep.has_content = true;
    // Served from memory from now on; revalidation looks the path up afresh anyway. So
    // the descriptor closes now, and only large files hold one.
    rep.file.reset();
  }
  rep.etag = make_etag(rep.identity, etag_suffix);
  rep.last_modified = format_http_date(rep.identity.mtime_sec);
  rep.content_length = decimal(rep.identity.size);
  return rep;
}

/// How a lookup finds a path's file: the settings it needs, copied, since it runs on
/// the executor while the options may be reloaded.
struct LookupPlan {
  std::shared_ptr<const RootDirectory> root;
  std::string relative;
  bool wants_dir_slash = false;
  std::vector<std::string> index_files;
  std::size_t read_limit = 0;
  bool precompressed = false;
};

// The precompressed siblings looked for, best first (smaller files, and clients that
// take br take gzip too).
struct Sibling {
  std::string_view extension;
  std::string_view etag_suffix;
};
constexpr Sibling kBrotli{".br", "-br"};
constexpr Sibling kGzip{".gz", "-gz"};

// Runs on the executor: every blocking call of a lookup in one hop.
std::shared_ptr<const CachedFile> look_up(const LookupPlan& plan,
                                          const std::shared_ptr<const CachedFile>& previous) {
  auto out = std::make_shared<CachedFile>();
  const RootDirectory& root = *plan.root;
  ResolvedPath r = root.open(plan.relative);
  std::string path = plan.relative;
  if (r.kind == ResolvedPath::Kind::directory) {
    if (!plan.wants_dir_slash) {
      out->kind = CachedFile::Kind::redirect_to_dir;
      return out;
    }
    bool found = false;
    for (const auto& index : plan.index_files) {
      std::string candidate = path.empty() ? index : path + "/" + index;
      ResolvedPath ri = root.open(candidate);
      // As before: the first index that is a file is the one, even if it turns out to be
      // a link out of the root (403).
      if (ri.kind == ResolvedPath::Kind::file || ri.kind == ResolvedPath::Kind::forbidden) {
        r = std::move(ri);
        path = std::move(candidate);
        found = true;
        break;
      }
    }
    if (!found) return out;  // no listings: 404, as Caddy's file_server without browse
  }
  if (r.kind == ResolvedPath::Kind::forbidden) {
    out->kind = CachedFile::Kind::forbidden;
    return out;
  }
  if (r.kind != ResolvedPath::Kind::file) return out;

  std::optional<ResolvedPath> siblings[2];
  if (plan.precompressed) {
    for (int i = 0; i < 2; ++i) {
      ResolvedPath rs = root.open(path + std::string((i == 0 ? kBrotli : kGzip).extension));
      if (rs.kind == ResolvedPath::Kind::file) siblings[i] = std::move(rs);
    }
  }
  // Revalidation: the same versions of the same files keep the entry (and its bytes).
  if (previous && previous->kind == CachedFile::Kind::file &&
      previous->identity.identity == FileIdentity::of(r.status) &&
      previous->media_type == mime_type_for(path)) {
    auto same = [](const std::optional<CachedRepresentation>& cached,
                   const std::optional<ResolvedPath>& now) {
      if (!cached || !now) return !cached && !now;
      return cached->identity == FileIdentity::of(now->status);
    };
    if (same(previous->brotli, siblings[0]) && same(previous->gzip, siblings[1])) return previous;
  }

  out->kind = CachedFile::Kind::file;
  out->media_type = mime_type_for(path);
  out->identity = represent(r, "", plan.read_limit);
  if (siblings[0]) out->brotli = represent(*siblings[0], kBrotli.etag_suffix, plan.read_limit);
  if (siblings[1]) out->gzip = represent(*siblings[1], kGzip.etag_suffix, plan.read_limit);
  return out;
}

// Parses an IMF-fixdate; returns -1 if malformed.
long long parse_http_date(std::string_view s) {
  std::tm tm{};
  std::string text(s);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return -1;
  return static_cast<long long>(timegm(&tm));
}

/// Whether the request's Accept-Encoding fields accept `coding` (RFC 9110 12.5.3): listed
/// with a non-zero q, or covered by "*" with one. Reads the fields in place.
bool accepts_coding(const HTTPHeaders& headers, std::string_view coding) {
  int listed = -1, star = -1;  // -1 absent, 0 refused (q=0), 1 accepted
  for (const HeaderField& f : headers) {
    if (!detail::iequals(f.name, "Accept-Encoding")) continue;
    std::string_view rest = f.value;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string_view element = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      auto semicolon = element.find(';');
      std::string_view name = detail::trim_ows(element.substr(0, semicolon));
      bool accepted = true;
      if (semicolon != std::string_view::npos) {
        // Parameters: only q matters; "q=0", "q=0.0", "q=0.000" refuse.
        std::string_view params = element.substr(semicolon + 1);
        auto q = params.find("q=");
        if (q == std::string_view::npos) q = params.find("Q=");
        if (q != std::string_view::npos) {
          std::string_view value = detail::trim_ows(params.substr(q + 2));
          value = value.substr(0, value.find(';'));
          accepted = value.find_first_of("123456789") != std::string_view::npos;
        }
      }
      if (detail::iequals(name, coding) || (coding == "gzip" && detail::iequals(name, "x-gzip"))) {
        listed = accepted;
      } else if (name == "*") {
        star = accepted;
      }
    }
  }
  if (listed >= 0) return listed == 1;
  return star == 1;
}

void send_simple(HTTPServerRequest& req, int status, std::string_view text,
                 HTTPHeaders extra = {}) {
  extra.add("Content-Type", "text/plain; charset=utf-8");
  extra.add("Content-Length", std::to_string(text.size()));
  req.connection->write_response(status, extra, text);
}

/// Formats into a caller's buffer (on its stack): header values without an allocation.
class TextBuffer {
 public:
  TextBuffer(char* buf, std::size_t capacity) : begin_(buf), p_(buf), end_(buf + capacity) {}
  void put(std::string_view s) {
    std::size_t n = std::min(s.size(), static_cast<std::size_t>(end_ - p_));
    std::memcpy(p_, s.data(), n);
    p_ += n;
  }
  void put(std::uint64_t v) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
    put(std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
  std::string_view view() const {
    return std::string_view(begin_, static_cast<std::size_t>(p_ - begin_));
  }

 private:
  char* begin_;
  char* p_;
  char* end_;
};

struct RequestConditions {
  std::optional<std::string_view> if_none_match, if_modified_since, range, if_range;
};

RequestConditions conditions_of(const HTTPHeaders& headers) {
  RequestConditions c;
  auto take = [](std::optional<std::string_view>& slot, const HeaderField& f,
                 std::string_view name) {
    if (!slot && detail::iequals(f.name, name)) slot = f.value;
  };
  for (const HeaderField& f : headers) {
    switch (f.name.size()) {  // the four names differ in length
      case 5:
        take(c.range, f, "Range");
        break;
      case 8:
        take(c.if_range, f, "If-Range");
        break;
      case 13:
        take(c.if_none_match, f, "If-None-Match");
        break;
      case 17:
        take(c.if_modified_since, f, "If-Modified-Since");
        break;
      default:
        break;
    }
  }
  return c;
}

bool is_get_or_head(const HTTPServerRequest& req) {
  return req.method == "GET" || req.method == "HEAD";
}

void send_method_not_allowed(HTTPServerRequest& req) {
  HTTPHeaders h;
  h.add("Allow", "GET, HEAD");
  send_simple(req, 405, "method not allowed\n", std::move(h));
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
  root_ = std::make_shared<RootDirectory>(real_root_);
  if (options_.max_age) cache_control_ = "max-age=" + std::to_string(options_.max_age->count());
}

StaticFiles::~StaticFiles() = default;

const std::shared_ptr<OpenFileCache>& StaticFiles::cache_for(IOLoop& loop) const {
  if (first_loop_.load(std::memory_order_acquire) == &loop) return first_cache_;
  std::lock_guard<std::mutex> lock(caches_mutex_);
  OpenFileCacheOptions o;
  o.valid_for = options_.cache_valid;
  o.max_entries = options_.cache_entries;
  o.max_memory = options_.cache_memory;
  if (!first_cache_) {
    first_cache_ = std::make_shared<OpenFileCache>(o);
    first_loop_.store(&loop, std::memory_order_release);
    return first_cache_;
  }
  for (const auto& [l, c] : other_caches_) {
    if (l == &loop) return c;
  }
  other_caches_.emplace_back(&loop, std::make_shared<OpenFileCache>(o));
  return other_caches_.back().second;
}

int StaticFiles::serve_cached(HTTPServerRequest& req, std::string_view url_path,
                              std::uint64_t* body_bytes) const {
  if (!is_get_or_head(req)) {
    send_method_not_allowed(req);
    return 405;
  }
  // Connections that cannot send files are answered by serve(), which can read them.
  if (!req.connection->can_write_file()) return 0;
  IOLoop& loop = IOLoop::current();
  const CachedFile* f = cache_for(loop)->find(url_path, loop.time());
  if (!f) return 0;
  return answer(req, *f, body_bytes).status;
}

StaticFiles::Answer StaticFiles::answer(HTTPServerRequest& req, const CachedFile& f,
                                        std::uint64_t* body_bytes) const {
  HTTPConnection& conn = *req.connection;
  // The representation: the file, or a precompressed sibling the client accepts.
  const CachedRepresentation* rep = &f.identity;
  std::string_view encoding;
  if (f.has_variants()) {
    if (f.brotli && accepts_coding(req.headers, "br")) {
      rep = &*f.brotli;
      encoding = "br";
    } else if (f.gzip && accepts_coding(req.headers, "gzip")) {
      rep = &*f.gzip;
      encoding = "gzip";
    }
  }

  // Every field is a view into the entry (or a literal, or a buffer on this frame): no
  // HTTPHeaders and no allocation on the way to the connection. All are checked: literal
  // names, and values we formatted (dates, ETags, lengths) or took from the media-type
  // table, none from the request.
  HeaderRef fields[10];
  std::size_t n = 0;
  auto add = [&](std::string_view name, std::string_view value) {
    fields[n++] = {name, value, true};
  };
  add("Content-Type", f.media_type);
  add("Last-Modified", rep->last_modified);
  add("ETag", rep->etag);
  add("Accept-Ranges", "bytes");
  if (!cache_control_.empty()) add("Cache-Control", cache_control_);
  if (!encoding.empty()) add("Content-Encoding", encoding);
  if (f.has_variants()) add("Vary", "Accept-Encoding");

  // The request fields this answer depends on, in one pass over them (the first of each,
  // as HTTPHeaders::get finds) rather than one search per name.
  RequestConditions c = conditions_of(req.headers);

  // Conditional requests (RFC 9110 13.2.2): If-None-Match wins over If-Modified-Since.
  bool not_modified = false;
  if (auto inm = c.if_none_match) {
    not_modified = etag_matches(*inm, rep->etag);
  } else if (auto ims = c.if_modified_since) {
    // Clients send back the Last-Modified they got: equal text needs no date parsing.
    if (*ims == rep->last_modified) {
      not_modified = true;
    } else {
      long long since = parse_http_date(*ims);
      not_modified = since >= 0 && rep->identity.mtime_sec <= since;
    }
  }
  if (not_modified) {
    conn.write_whole_response(304, std::span<const HeaderRef>(fields, n), {});
    return {304, {}};
  }

  std::uint64_t size = rep->size();
  std::uint64_t first = 0, last = size ? size - 1 : 0;
  int status = 200;
  char range_buf[80];
  if (auto range = c.range) {
    // If-Range: only honour the range if the validator still matches.
    bool honour = true;
    if (auto if_range = c.if_range) {
      honour = *if_range == rep->etag || *if_range == rep->last_modified;
    }
    bool unsatisfiable = false;
    auto r = honour ? parse_range_header(*range, size, unsatisfiable) : std::nullopt;
    if (unsatisfiable) {
      HTTPHeaders e;
      e.add("Content-Range", "bytes */" + rep->content_length);
      if (f.has_variants()) e.add("Vary", "Accept-Encoding");
      send_simple(req, 416, "range not satisfiable\n", std::move(e));
      return {416, {}};
    }
    if (r) {
      status = 206;
      first = r->first;
      last = r->last;
      TextBuffer text(range_buf, sizeof range_buf);
      text.put("bytes ");
      text.put(first);
      text.put("-");
      text.put(last);
      text.put("/");
      text.put(size);
      add("Content-Range", text.view());
    }
  }
  std::uint64_t length = size == 0 ? 0 : last - first + 1;
  char length_buf[24];
  std::string_view content_length = rep->content_length;
  if (status == 206) {
    TextBuffer text(length_buf, sizeof length_buf);
    text.put(length);
    content_length = text.view();
  }
  add("Content-Length", content_length);
  std::span<const HeaderRef> head(fields, n);

  if (req.method == "HEAD" || length == 0) {
    conn.write_whole_response(status, head, {});
    return {status, {}};
  }
  if (body_bytes) *body_bytes = length;
  if (rep->has_content) {
    conn.write_whole_response(
        status, head,
        std::string_view(rep->content)
            .substr(static_cast<std::size_t>(first), static_cast<std::size_t>(length)));
    return {status, {}};
  }
  FileRegion region{rep->file, first, length};
  conn.write_head(status, head);
  if (!conn.can_write_file()) return {status, std::move(region)};
  conn.write_file(std::move(region));
  conn.finish();
  return {status, {}};
}

Task<int> StaticFiles::serve(std::shared_ptr<HTTPServerRequest> request, std::string url_path,
                             std::uint64_t* body_bytes) const {
  HTTPServerRequest& req = *request;
  if (int status = serve_cached(req, url_path, body_bytes)) co_return status;
  auto rel = safe_relative_path(url_path);
  if (!rel) {
    send_simple(req, 404, "not found\n");
    co_return 404;
  }
  // Entries are kept under the path as safe_relative_path spells it ("/a/b.txt",
  // "/dir/"): every spelling of one file ("//a/./b.txt", "/a/%62.txt") shares one entry
  // and one descriptor, so no stream of variants can fill the cache. serve_cached's
  // lookup by the request's own path finds those spelled this way already.
  bool dir_slash = url_path.empty() || url_path.back() == '/';
  std::string key = "/" + *rel;
  if (dir_slash && !rel->empty()) key += '/';
  LookupPlan plan;
  plan.root = root_;
  plan.relative = std::move(*rel);
  plan.wants_dir_slash = dir_slash;
  plan.index_files = options_.index_files;
  plan.read_limit = options_.cache_file_size;
  if (options_.cache_entries > 0)
    plan.read_limit = std::min(plan.read_limit, options_.cache_memory);
  plan.precompressed = options_.precompressed;
  IOLoop& loop = IOLoop::current();
  // Held across the wait: the cache outlives a reload that drops this StaticFiles.
  std::shared_ptr<OpenFileCache> cache = cache_for(loop);
  Answer a;
  if (const CachedFile* fresh = cache->find(key, loop.time())) {
    // Fresh under its canonical spelling, or the connection cannot send files itself.
    a = answer(req, *fresh, body_bytes);
    if (!a.rest.file) co_return a.status;
    co_return co_await stream_region(request, std::move(a), body_bytes);
  }
  // Built outside the co_await expression: GCC 12 mishandles init-captures of
  // temporaries inside co_await operands.
  auto loader = [plan = std::move(plan)](const std::shared_ptr<const CachedFile>& previous) {
    return look_up(plan, previous);
  };
  Future<std::shared_ptr<const CachedFile>> lookup = cache->load(key, std::move(loader), loop);
  std::shared_ptr<const CachedFile> f;
  try {
    f = co_await lookup;
  } catch (const std::exception& e) {
    log::error("static", std::string("file lookup failed: ") + e.what());
  }
  if (!f) {
    send_simple(req, 500, "internal server error\n");
    co_return 500;
  }
  switch (f->kind) {
    case CachedFile::Kind::not_found:
      send_simple(req, 404, "not found\n");
      co_return 404;
    case CachedFile::Kind::forbidden:
      send_simple(req, 403, "forbidden\n");
      co_return 403;
    case CachedFile::Kind::redirect_to_dir: {
      HTTPHeaders h;
      std::string location = req.path + "/";
      if (!req.query.empty()) location += "?" + req.query;
      h.add("Location", location);
      send_simple(req, 301, "moved permanently\n", std::move(h));
      co_return 301;
    }
    case CachedFile::Kind::file:
      break;
  }
  a = answer(req, *f, body_bytes);
  if (!a.rest.file) co_return a.status;
  co_return co_await stream_region(request, std::move(a), body_bytes);
}

Task<int> StaticFiles::stream_region(std::shared_ptr<HTTPServerRequest> request, Answer a,
                                     std::uint64_t* body_bytes) const {
  // A connection that cannot send files: pieces read on the executor, each written
  // after the client drained the previous ones, so memory stays at about two pieces.
  HTTPConnection& conn = *request->connection;
  std::uint64_t offset = a.rest.offset;
  std::uint64_t end = a.rest.offset + a.rest.length;
  std::shared_ptr<const OpenFile> file = a.rest.file;
  std::size_t chunk = options_.chunk_size;
  if (body_bytes) *body_bytes = 0;
  try {
    while (offset < end && !conn.closed()) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, end - offset));
      auto read_piece = [file, offset, want] {
        std::string buf(want, '\0');
        ssize_t n = ::pread(file->fd(), buf.data(), want, static_cast<off_t>(offset));
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
    co_return a.status;  // the client went away
  }
  conn.finish();
  co_return a.status;
}

}  // namespace tronada
