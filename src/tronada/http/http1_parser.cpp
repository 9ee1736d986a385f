#include "tronada/http/http1_parser.h"

#include <llhttp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <new>
#include <utility>

namespace tronada {

namespace {

static_assert(sizeof(llhttp_t) <= detail::kLlhttpStorageSize, "raise kLlhttpStorageSize");
static_assert(alignof(llhttp_t) <= 8);

llhttp_t* as_llhttp(unsigned char* storage) {
  return std::launder(reinterpret_cast<llhttp_t*>(storage));
}

const llhttp_t* as_llhttp(const unsigned char* storage) {
  return std::launder(reinterpret_cast<const llhttp_t*>(storage));
}

// Unknown methods longer than this are garbage rather than an extension method.
constexpr std::size_t kMaxMethodLength = 32;

// Request-targets are visible ASCII (RFC 9112 section 3.2). llhttp's loose build lets tabs
// and bytes over 0x7F through, so this is checked here whatever mode llhttp was built in.
bool is_target_byte(unsigned char c) {
  return c > 0x20 && c < 0x7F;
}

// Host field values: the characters of RFC 3986 reg-name, IP-literal and port.
bool is_valid_host(std::string_view host) {
  for (char ch : host) {
    unsigned char c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) continue;
    if (std::string_view("-._~!$&'()*+,;=:[]%").find(ch) == std::string_view::npos) return false;
  }
  return true;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

enum class CodingVerdict { kChunked, kMalformed, kUnsupported };

// Judges the Transfer-Encoding list; llhttp has already refused "chunked" followed by
// anything, but it takes "gzip, chunked" as plain chunked and only refuses codings without
// chunked after the header section, with the 400 that nginx reserves for malformed framing.
CodingVerdict judge_transfer_encoding(const HTTPHeaders& headers) {
  bool chunked_seen = false;
  bool last_is_chunked = false;
  bool unsupported = false;
  for (const HeaderField& field : headers) {
    if (!detail::iequals(field.name, "transfer-encoding")) continue;
    std::string_view list = field.value;
    while (!list.empty()) {
      std::size_t comma = list.find(',');
      std::string_view element = list.substr(0, comma);
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      // RFC 9110 section 5.6.1: empty list elements are ignored.
      element = detail::trim_ows(element);
      if (element.empty()) continue;
      std::string_view coding = detail::trim_ows(element.substr(0, element.find(';')));
      if (!is_valid_header_name(coding)) return CodingVerdict::kMalformed;
      if (detail::iequals(coding, "chunked")) {
        // chunked takes no parameters and must be applied once (RFC 9112 section 7.1).
        if (chunked_seen || coding.size() != element.size()) return CodingVerdict::kMalformed;
        chunked_seen = true;
        last_is_chunked = true;
      } else {
        // Coding after chunked: the body length is unknowable (RFC 9112 section 6.3).
        if (chunked_seen) return CodingVerdict::kMalformed;
        unsupported = true;
        last_is_chunked = false;
      }
    }
  }
  if (unsupported) return CodingVerdict::kUnsupported;
  return last_is_chunked ? CodingVerdict::kChunked : CodingVerdict::kMalformed;
}

bool expects_continue(const HTTPHeaders& headers) {
  for (const HeaderField& field : headers) {
    if (!detail::iequals(field.name, "expect")) continue;
    std::string_view list = field.value;
    while (!list.empty()) {
      std::size_t comma = list.find(',');
      if (detail::iequals(detail::trim_ows(list.substr(0, comma)), "100-continue")) return true;
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
  }
  return false;
}

}  // namespace

namespace detail {

// Forwards llhttp's C callbacks to the parser that owns the llhttp_t.
struct LlhttpCallbacks {
  static HTTP1RequestParser& of(llhttp_t* p) { return *static_cast<HTTP1RequestParser*>(p->data); }

  static int on_message_begin(llhttp_t* p) { return of(p).on_message_begin(); }
  static int on_url(llhttp_t* p, const char* at, size_t n) { return of(p).on_url(at, n); }
  static int on_version(llhttp_t* p, const char* at, size_t n) { return of(p).on_version(at, n); }
  static int on_version_complete(llhttp_t* p) { return of(p).on_version_complete(); }
  static int on_header_field(llhttp_t* p, const char* at, size_t n) {
    return of(p).on_header_field(at, n);
  }
  static int on_header_field_complete(llhttp_t* p) { return of(p).on_header_field_complete(); }
  static int on_header_value(llhttp_t* p, const char* at, size_t n) {
    return of(p).on_header_value(at, n);
  }
  static int on_header_value_complete(llhttp_t* p) { return of(p).on_header_value_complete(); }
  static int on_headers_complete(llhttp_t* p) { return of(p).on_headers_complete(); }
  static int on_chunk_header(llhttp_t* p) { return of(p).on_chunk_header(); }
  static int on_chunk_complete(llhttp_t* p) { return of(p).on_chunk_complete(); }
  static int on_body(llhttp_t* p, const char* at, size_t n) { return of(p).on_body(at, n); }
  static int on_message_complete(llhttp_t* p) { return of(p).on_message_complete(); }

  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t settings = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_message_begin = on_message_begin;
      s.on_url = on_url;
      s.on_version = on_version;
      s.on_version_complete = on_version_complete;
      s.on_header_field = on_header_field;
      s.on_header_field_complete = on_header_field_complete;
      s.on_header_value = on_header_value;
      s.on_header_value_complete = on_header_value_complete;
      s.on_headers_complete = on_headers_complete;
      s.on_chunk_header = on_chunk_header;
      s.on_chunk_complete = on_chunk_complete;
      s.on_body = on_body;
      s.on_message_complete = on_message_complete;
      return s;
    }();
    return settings;
  }
};

}  // namespace detail

HTTP1RequestParser::HTTP1RequestParser(HTTP1ParserDelegate& delegate, HTTP1Limits limits)
    : delegate_(&delegate), limits_(limits), max_body_bytes_(limits.max_body_bytes) {
  llhttp_t* p = new (llhttp_storage_) llhttp_t;
  // HTTP_REQUEST and no lenient flag at all: every leniency is a smuggling vector.
  llhttp_init(p, HTTP_REQUEST, &detail::LlhttpCallbacks::settings());
  p->data = this;
}

HTTP1RequestParser::~HTTP1RequestParser() = default;

void HTTP1RequestParser::reset(HTTP1ParserDelegate& delegate, HTTP1Limits limits) {
  delegate_ = &delegate;
  limits_ = limits;
  reset();
}

void HTTP1RequestParser::reset() {
  llhttp_reset(as_llhttp(llhttp_storage_));
  state_ = State::kRunning;
  error_status_ = 0;
  error_reason_ = "";
  delegate_exception_ = nullptr;
  start_line_.method.clear();
  start_line_.target.clear();
  headers_.clear();
  trailers_.clear();
  version_text_.clear();
  in_message_ = false;
  request_line_done_ = false;
  headers_done_ = false;
  in_field_name_ = false;
  in_field_line_ = false;
  in_chunk_data_ = false;
  keep_alive_ = true;
  field_bytes_ = 0;
  head_wire_bytes_ = 0;
  body_bytes_ = 0;
  max_body_bytes_ = limits_.max_body_bytes;
  segment_begin_ = nullptr;
  recent_len_ = 0;
  framing_tail_ = FramingTail::kOther;
  resume_after_pause_ = false;
  method_probe_length_ = 0;
  in_chunk_line_ = false;
  last_chunk_seen_ = false;
  chunk_line_.reset();
  chunk_extension_bytes_ = 0;
  held_whitespace_.reset();
}

void HTTP1RequestParser::resume() {
  llhttp_t* p = as_llhttp(llhttp_storage_);
  if (state_ == State::kPaused) {
    llhttp_resume(p);
  } else if (state_ == State::kUpgrade) {
    llhttp_resume_after_upgrade(p);
  } else {
    return;
  }
  // llhttp's loose build silently swallows bytes after a request that closes the connection;
  // refusing them here behaves the same in both builds.
  state_ = keep_alive_ ? State::kRunning : State::kClosed;
}

FeedResult HTTP1RequestParser::fail(std::size_t consumed, int status, const char* reason) {
  state_ = State::kError;
  error_status_ = status;
  error_reason_ = reason;
  return {consumed, FeedStatus::kError};
}

int HTTP1RequestParser::set_error(int status, const char* reason) {
  // Only the first error counts; llhttp stops at the callback that returned it.
  if (error_status_ == 0) {
    error_status_ = status;
    error_reason_ = reason;
  }
  return -1;
}

int HTTP1RequestParser::run_delegate(auto&& call) {
  // Exceptions must not unwind through llhttp's C frames; feed() rethrows this one.
  try {
    call();
    return 0;
  } catch (...) {
    delegate_exception_ = std::current_exception();
    return set_error(500, "the request delegate threw an exception");
  }
}

uint64_t HTTP1RequestParser::body_bytes_ahead() const {
  // llhttp counts content_length down as it consumes an identity body or a chunk's data.
  if (!headers_done_ || !in_message_) return 0;
  const llhttp_t* p = as_llhttp(llhttp_storage_);
  if ((p->flags & F_CHUNKED) && !in_chunk_data_) return 0;
  return p->content_length;
}

void HTTP1RequestParser::remember_consumed(const char* begin, const char* end) {
  constexpr std::size_t kKeep = sizeof(recent_);
  std::size_t n = static_cast<std::size_t>(end - begin);
  if (n >= kKeep) {
    std::memcpy(recent_, end - kKeep, kKeep);
    recent_len_ = kKeep;
    return;
  }
  std::size_t keep_old = std::min(recent_len_, kKeep - n);
  std::memmove(recent_, recent_ + recent_len_ - keep_old, keep_old);
  std::memcpy(recent_ + keep_old, begin, n);
  recent_len_ = keep_old + n;
}

int HTTP1RequestParser::byte_before(const char* at, std::size_t distance) const {
  std::size_t in_segment = static_cast<std::size_t>(at - segment_begin_);
  if (distance <= in_segment) return static_cast<unsigned char>(at[-static_cast<long>(distance)]);
  std::size_t back = distance - in_segment;
  if (back > recent_len_) return -1;
  return static_cast<unsigned char>(recent_[recent_len_ - back]);
}

bool HTTP1RequestParser::preceded_by(const char* at, std::string_view expected) const {
  for (std::size_t i = 1; i <= expected.size(); ++i) {
    if (byte_before(at, i) != static_cast<unsigned char>(expected[expected.size() - i])) {
      return false;
    }
  }
  return true;
}

FeedResult HTTP1RequestParser::feed(const char* data, std::size_t len) {
  switch (state_) {
    case State::kRunning:
      break;
    case State::kPaused:
      return {0, FeedStatus::kPaused};
    case State::kUpgrade:
      return {0, FeedStatus::kUpgrade};
    case State::kError:
      return {0, FeedStatus::kError};
    case State::kProbingMethod:
      return probe_method(data, 0, len);
    case State::kClosed:
      if (len == 0) return {0, FeedStatus::kNeedMore};
      return fail(0, 400, "data after a request that closed the connection");
  }
  if (len == 0) return {0, FeedStatus::kNeedMore};

  // Outside the body, CR and LF only come as CRLF and a line never starts with whitespace.
  // llhttp's strict build checks the former itself; its loose build (the default) takes
  // "\r\n\rX" as the end of the header section, the bare CR behind request smuggling. Both
  // builds accept obs-fold, which RFC 9112 section 5.2 lets a server refuse, and pass the
  // continuation on as more of the value (or, after an empty value, silently skip it).
  // So framing bytes are screened here before llhttp reads them; body bytes are skipped
  // because llhttp knows how many are coming. A suspect byte is only an error if llhttp, once
  // it has read everything before it, is not about to read body data.
  //
  // The same screen finds whitespace before a CR, which in a field line is trailing OWS and
  // is dropped rather than shown to llhttp (see the class comment), and chunk-size lines are
  // read by scan_chunk_line(). Both are decided only once llhttp has read up to them, since
  // only then is it known whether they are in a field line, the request line or the body.
  const char* const end = data + len;
  const char* pos = data;
  if (framing_tail_ == FramingTail::kCR && *data != '\n') {
    return fail(0, 400, "bare CR in the request framing");
  }
  if (held_whitespace_ && !held_whitespace_->empty()) {
    FeedResult held = release_held_whitespace(data, end, &pos);
    if (held.status != FeedStatus::kNeedMore || pos == end) return held;
  }
  FramingTail tail = framing_tail_;
  framing_tail_ = FramingTail::kOther;
  // Whitespace runs that start before this were found not to be a field line's trailing OWS.
  const char* whitespace_floor = pos;
  // What the last scan found clean, see below.
  const char* clean_begin = nullptr;
  const char* clean_end = nullptr;
  while (pos < end) {
    if (in_chunk_line_) {
      FeedResult result = scan_chunk_line(data, pos, end);
      if (result.status != FeedStatus::kNeedMore) return result;
      pos = data + result.consumed;
      // After the last chunk's line come the trailers, whose lines must not start with
      // whitespace either.
      tail = in_chunk_line_ ? FramingTail::kOther : FramingTail::kCRLF;
      continue;
    }
    uint64_t ahead = body_bytes_ahead();
    const char* scan = pos + std::min<uint64_t>(ahead, static_cast<uint64_t>(end - pos));
    if (ahead > 0) tail = FramingTail::kOther;
    const char* suspect = nullptr;
    const char* reason = nullptr;
    const char* trailing_whitespace = nullptr;  // SP/HTAB before a CR or the end of input
    // Chunk data ends here and must be followed by CRLF; the loose build skips any byte
    // there, so "3\r\nabcX5\r\n" would read "5" as the next chunk size.
    if (in_chunk_data_ && scan < end && ahead <= static_cast<uint64_t>(end - pos) &&
        tail != FramingTail::kCR && *scan != '\r') {
      suspect = scan;
      reason = "chunk data not followed by CRLF";
    }
    const char* q = scan;
    if (suspect == nullptr && clean_begin != nullptr && scan >= clean_begin && scan < clean_end &&
        *scan != '\n') {
      // The last scan found nothing in [clean_begin, clean_end), so scanning again from `scan`
      // would not either (each verdict depends on the byte and the two before it, and a LF
      // at `scan`, whose CR is out of sight now, is the one exception): pick up at
      // clean_end, with the tail the bytes since `scan` leave. Without this, every pause (two
      // per chunk) would rescan the rest of the input, quadratic in the chunks per read.
      q = clean_end;
      tail = FramingTail::kOther;
      if (q - scan >= 1 && q[-1] == '\r') {
        tail = FramingTail::kCR;
      } else if (q - scan >= 2 && q[-1] == '\n') {
        tail = FramingTail::kCRLF;
      }
    }
    if (suspect == nullptr) {
      ScanStop found = scan_framing(q, end, tail, whitespace_floor);
      suspect = found.suspect;
      trailing_whitespace = found.trailing_whitespace;
    }
    if (suspect == nullptr && trailing_whitespace == nullptr && tail == FramingTail::kCR) {
      suspect = end - 1;  // LF may come next
    }
    const char* stop = suspect != nullptr               ? suspect
                       : trailing_whitespace != nullptr ? trailing_whitespace
                                                        : end;
    clean_begin = reason == nullptr ? scan : nullptr;
    clean_end = stop;
    if (stop > pos) {
      bool in_head = !headers_done_;
      FeedResult result = execute(data, pos, stop, end);
      if (result.status != FeedStatus::kNeedMore) return result;
      const char* reached = data + result.consumed;
      if (in_head && !headers_done_) {
        // Whitespace padding and empty lines never reach the callbacks that count field
        // bytes; this bounds them, a buffer late at worst.
        head_wire_bytes_ += static_cast<std::size_t>(reached - pos);
        if (limits_.max_request_line != 0 && limits_.max_header_bytes != 0 &&
            head_wire_bytes_ > limits_.max_request_line + limits_.max_header_bytes) {
          return request_line_done_ ? fail(result.consumed, 431, "request header section too large")
                                    : fail(result.consumed, 414, "request line too long");
        }
      }
      pos = reached;
      if (reached != stop || in_chunk_line_) {
        tail = FramingTail::kOther;  // llhttp stopped at a chunk header: scan again from there
        continue;
      }
    }
    if (trailing_whitespace != nullptr) {
      const char* run_end = trailing_whitespace;
      while (run_end < end && (*run_end == ' ' || *run_end == '\t')) ++run_end;
      tail = FramingTail::kOther;
      if (!in_field_section()) {
        whitespace_floor = run_end;  // the request line or the body: llhttp judges it
        continue;
      }
      if (!count_dropped_whitespace(static_cast<std::size_t>(run_end - trailing_whitespace))) {
        return fail(static_cast<std::size_t>(pos - data), 431, "request header section too large");
      }
      if (run_end == end) {
        if (!held_whitespace_) held_whitespace_ = std::make_unique<std::string>();
        held_whitespace_->assign(trailing_whitespace, end);
        return {len, FeedStatus::kNeedMore};
      }
      pos = run_end;  // the CR
      continue;
    }
    if (suspect == nullptr) {
      framing_tail_ = tail;
      break;
    }
    if (body_bytes_ahead() > 0) continue;  // inside the body: data, not framing
    char c = *suspect;
    if (reason == nullptr && c == '\r' && suspect + 1 == end) {
      FeedResult result = execute(data, suspect, end, end);
      if (result.status == FeedStatus::kNeedMore) framing_tail_ = FramingTail::kCR;
      return result;
    }
    if (reason == nullptr) {
      reason = c == '\r'   ? "bare CR in the request framing"
               : c == '\n' ? "bare LF in the request framing (lines end with CRLF)"
                           : "obsolete line folding is not allowed";
    }
    return fail(static_cast<std::size_t>(suspect - data), 400, reason);
  }
  return {len, FeedStatus::kNeedMore};
}

HTTP1RequestParser::ScanStop HTTP1RequestParser::scan_framing(const char* q, const char* end,
                                                              FramingTail& tail,
                                                              const char* whitespace_floor) {
  // Most bytes are none of CR, LF, SP and HTAB and are skipped a table lookup at a time;
  // this runs over every byte of every request head.
  static constexpr auto kNotable = [] {
    std::array<bool, 256> table{};
    table['\r'] = table['\n'] = table[' '] = table['\t'] = true;
    return table;
  }();
  ScanStop found;
  while (q < end) {
    if (tail == FramingTail::kCR) {
      if (*q != '\n') {
        found.suspect = q - 1;
        return found;
      }
      tail = FramingTail::kCRLF;
      ++q;
      continue;
    }
    if (tail == FramingTail::kCRLF) {
      if (*q == ' ' || *q == '\t') {
        found.suspect = q;  // obs-fold, or whitespace before the first field line
        return found;
      }
      tail = FramingTail::kOther;
    }
    while (q < end && !kNotable[static_cast<unsigned char>(*q)]) ++q;
    if (q == end) break;
    if (*q == '\r') {
      tail = FramingTail::kCR;
      ++q;
    } else if (*q == '\n') {
      found.suspect = q;
      return found;
    } else {
      // A whitespace run: trailing OWS if a CR (or the end of the input) comes next. Runs
      // below the floor were already found to be something else.
      const char* run = q;
      while (q < end && (*q == ' ' || *q == '\t')) ++q;
      if ((q == end || *q == '\r') && run >= whitespace_floor) {
        found.trailing_whitespace = run;
        return found;
      }
    }
  }
  return found;
}

bool HTTP1RequestParser::in_field_section() const {
  // llhttp has read part of a field line, of the header section or of the trailers; the
  // other conditions hold then anyway, and guard against ever dropping a body byte.
  return in_message_ && in_field_line_ && !in_chunk_line_ && body_bytes_ahead() == 0;
}

bool HTTP1RequestParser::count_dropped_whitespace(std::size_t n) {
  // llhttp would have passed these bytes to on_header_value, which counts them.
  field_bytes_ += n;
  return limits_.max_header_bytes == 0 || field_bytes_ <= limits_.max_header_bytes;
}

FeedResult HTTP1RequestParser::release_held_whitespace(const char* data, const char* end,
                                                       const char** pos) {
  const char* q = data;
  while (q < end && (*q == ' ' || *q == '\t')) ++q;
  std::size_t more = static_cast<std::size_t>(q - data);
  if (q == end || *q == '\r') {
    if (!count_dropped_whitespace(more)) return fail(0, 431, "request header section too large");
    if (q == end) {
      held_whitespace_->append(data, q);
    } else {
      held_whitespace_->clear();  // trailing OWS after all: dropped
    }
    *pos = q;
    return {more, FeedStatus::kNeedMore};
  }
  // Whitespace inside a field value (or a field name, which llhttp refuses): llhttp reads it
  // now, and on_header_value counts it instead.
  std::string held = std::move(*held_whitespace_);
  held_whitespace_->clear();
  field_bytes_ -= held.size();
  const char* held_end = held.data() + held.size();
  FeedResult result = execute(held.data(), held.data(), held_end, held_end);
  if (result.status != FeedStatus::kNeedMore) return {0, result.status};
  *pos = data;
  return {0, FeedStatus::kNeedMore};
}

FeedResult HTTP1RequestParser::scan_chunk_line(const char* data, const char* pos, const char* end) {
  // llhttp gets the size digits and the CRLF, in as few calls as the input allows; the
  // extensions are checked here and skipped.
  using Byte = detail::ChunkLineScanner::Byte;
  const char* run = pos;
  for (const char* q = pos; q < end; ++q) {
    Byte kind = chunk_line_.next(static_cast<unsigned char>(*q));
    std::size_t at = static_cast<std::size_t>(q - data);
    if (kind == Byte::kError) return fail(at, 400, chunk_line_.error());
    if (limits_.max_chunk_line != 0 && chunk_line_.line_bytes() > limits_.max_chunk_line) {
      return fail(at, 400, "chunk-size line too long");
    }
    if (kind == Byte::kExtension) {
      if (chunk_extension_bytes_ != UINT32_MAX) ++chunk_extension_bytes_;
      if (limits_.max_chunk_extension_bytes != 0 &&
          chunk_extension_bytes_ > limits_.max_chunk_extension_bytes) {
        return fail(at, 413, "chunk extensions too large");
      }
      if (q > run) {
        FeedResult result = execute(data, run, q, end);
        if (result.status != FeedStatus::kNeedMore) return result;
      }
      run = q + 1;
    } else if (kind == Byte::kEnd) {
      in_chunk_line_ = false;
      return execute(data, run, q + 1, end);
    }
  }
  if (end > run) return execute(data, run, end, end);
  return {static_cast<std::size_t>(end - data), FeedStatus::kNeedMore};
}

FeedResult HTTP1RequestParser::execute(const char* data, const char* segment,
                                       const char* segment_end, const char* data_end) {
  llhttp_t* p = as_llhttp(llhttp_storage_);
  segment_begin_ = segment;
  llhttp_errno_t err = llhttp_execute(p, segment, static_cast<std::size_t>(segment_end - segment));
  if (delegate_exception_) {
    state_ = State::kError;
    std::rethrow_exception(std::exchange(delegate_exception_, nullptr));
  }
  switch (err) {
    case HPE_OK:
      remember_consumed(segment, segment_end);
      return {static_cast<std::size_t>(segment_end - data), FeedStatus::kNeedMore};
    case HPE_PAUSED:
      if (resume_after_pause_) {
        // One of our callbacks stopped llhttp so that feed() sees where it is: go on.
        resume_after_pause_ = false;
        const char* stop = llhttp_get_error_pos(p);
        remember_consumed(segment, stop);
        llhttp_resume(p);
        return {static_cast<std::size_t>(stop - data), FeedStatus::kNeedMore};
      }
      [[fallthrough]];
    case HPE_PAUSED_UPGRADE: {
      const char* stop = llhttp_get_error_pos(p);
      // The next request starts afresh: a body byte is no method prefix, and a CRLF that
      // ended this request does not make a leading space of the next one a fold.
      recent_len_ = 0;
      framing_tail_ = FramingTail::kOther;
      state_ = err == HPE_PAUSED ? State::kPaused : State::kUpgrade;
      return {static_cast<std::size_t>(stop - data),
              err == HPE_PAUSED ? FeedStatus::kPaused : FeedStatus::kUpgrade};
    }
    default:
      return map_llhttp_error(err, data, llhttp_get_error_pos(p), data_end);
  }
}

FeedResult HTTP1RequestParser::map_llhttp_error(int err, const char* data, const char* error_pos,
                                                const char* data_end) {
  const llhttp_t* p = as_llhttp(llhttp_storage_);
  std::size_t consumed = 0;
  if (error_pos != nullptr && error_pos >= data && error_pos <= data_end) {
    consumed = static_cast<std::size_t>(error_pos - data);
  }
  if (error_status_ != 0) return fail(consumed, error_status_, error_reason_);
  switch (err) {
    case HPE_INVALID_METHOD: {
      // llhttp only knows its list of methods. A well-formed token it does not know is an
      // unimplemented method (501, RFC 9110 section 9.1); anything else is garbage (400). The
      // rest of the token may still be on its way, so the verdict can wait for more input.
      int before = error_pos != nullptr ? byte_before(error_pos, 1) : -1;
      method_probe_length_ = before >= 0 && detail::is_tchar(static_cast<unsigned char>(before));
      state_ = State::kProbingMethod;
      return probe_method(data, consumed, static_cast<std::size_t>(data_end - data));
    }
    case HPE_INVALID_VERSION: {
      // A well-formed version we do not speak gets 505 (HTTP/1.2, HTTP/3.0); a mangled one
      // ("HTTP/11", junk after it) is a syntax error.
      const std::string& v = version_text_;
      bool well_formed = v.size() == 3 && is_digit(v[0]) && v[1] == '.' && is_digit(v[2]);
      if (well_formed && v != "1.0" && v != "1.1") {
        return fail(consumed, 505, "HTTP version not supported");
      }
      return fail(consumed, 400, "malformed HTTP version");
    }
    case HPE_INVALID_CONSTANT:
      // RTSP methods are tokens llhttp knows but refuses with an HTTP version.
      if (p->method >= HTTP_DESCRIBE) return fail(consumed, 501, "method not implemented");
      return fail(consumed, 400, "malformed request line");
    case HPE_PAUSED_H2_UPGRADE:
      return fail(consumed, 505, "HTTP/2 connection preface on an HTTP/1 connection");
    case HPE_INVALID_URL:
      return fail(consumed, 400, "invalid request target");
    case HPE_INVALID_HEADER_TOKEN:
      return fail(consumed, 400, "invalid character in a header field");
    case HPE_UNEXPECTED_CONTENT_LENGTH:
      return fail(consumed, 400,
                  (p->flags & F_TRANSFER_ENCODING) != 0
                      ? "Content-Length together with Transfer-Encoding"
                      : "more than one Content-Length");
    case HPE_INVALID_CONTENT_LENGTH:
      return fail(consumed, 400, "invalid Content-Length");
    case HPE_INVALID_TRANSFER_ENCODING:
      return fail(consumed, 400, "chunked is not the final transfer coding");
    case HPE_INVALID_CHUNK_SIZE:
      return fail(consumed, 400, "invalid chunk size");
    case HPE_CLOSED_CONNECTION:
      return fail(consumed, 400, "data after a request that closed the connection");
    case HPE_UNEXPECTED_SPACE:
      return fail(consumed, 400, "obsolete line folding is not allowed");
    case HPE_CR_EXPECTED:
    case HPE_LF_EXPECTED:
    case HPE_STRICT:
      return fail(consumed, 400, "bare CR or LF in the request framing");
    default:
      return fail(consumed, 400, "malformed request");
  }
}

FeedResult HTTP1RequestParser::probe_method(const char* data, std::size_t offset, std::size_t len) {
  for (std::size_t i = offset; i < len; ++i) {
    unsigned char c = static_cast<unsigned char>(data[i]);
    if (c == ' ') {
      return method_probe_length_ > 0 ? fail(i, 501, "method not implemented")
                                      : fail(i, 400, "malformed request line");
    }
    if (!detail::is_tchar(c)) return fail(i, 400, "invalid character in method");
    if (++method_probe_length_ > kMaxMethodLength) return fail(i, 400, "method too long");
  }
  return {len, FeedStatus::kNeedMore};
}

void HTTP1RequestParser::begin_message() {
  // clear() keeps the strings' capacity for the next request on this connection.
  start_line_.method.clear();
  start_line_.target.clear();
  headers_.clear();
  trailers_.clear();
  version_text_.clear();
  in_message_ = true;
  request_line_done_ = false;
  headers_done_ = false;
  in_field_name_ = false;
  in_field_line_ = false;
  in_chunk_data_ = false;
  field_bytes_ = 0;
  body_bytes_ = 0;
  max_body_bytes_ = limits_.max_body_bytes;
  in_chunk_line_ = false;
  last_chunk_seen_ = false;
  chunk_extension_bytes_ = 0;
}

int HTTP1RequestParser::on_message_begin() {
  begin_message();
  return 0;
}

int HTTP1RequestParser::on_url(const char* at, std::size_t length) {
  for (std::size_t i = 0; i < length; ++i) {
    if (!is_target_byte(static_cast<unsigned char>(at[i]))) {
      return set_error(400, "invalid character in request target");
    }
  }
  if (limits_.max_request_line != 0) {
    // method SP target SP "HTTP/1.1"
    const llhttp_t* p = as_llhttp(llhttp_storage_);
    std::size_t line = std::strlen(llhttp_method_name(static_cast<llhttp_method_t>(p->method))) +
                       start_line_.target.size() + length + 10;
    if (line > limits_.max_request_line) return set_error(414, "request line too long");
  }
  start_line_.target.append(at, length);
  return 0;
}

int HTTP1RequestParser::on_version(const char* at, std::size_t length) {
  // llhttp also takes RTSP/ and ICE/ request lines, and reports no protocol name.
  if (version_text_.empty() && !preceded_by(at, "HTTP/")) {
    return set_error(400, "protocol is not HTTP");
  }
  if (version_text_.size() + length > 8) return set_error(400, "malformed HTTP version");
  version_text_.append(at, length);
  return 0;
}

int HTTP1RequestParser::on_version_complete() {
  const llhttp_t* p = as_llhttp(llhttp_storage_);
  // llhttp accepts HTTP/0.9 and HTTP/2.0 request lines; neither is HTTP/1.
  if (p->http_major != 1 || p->http_minor > 1) {
    return set_error(505, "HTTP version not supported");
  }
  request_line_done_ = true;
  return 0;
}

int HTTP1RequestParser::on_header_field(const char* at, std::size_t length) {
  HTTPHeaders& fields = current_fields();
  if (!in_field_name_) {
    if (limits_.max_header_count != 0 && fields.size() >= limits_.max_header_count) {
      return set_error(431, "too many header fields");
    }
    if (fields.fields_.empty()) fields.reserve(16);
    fields.fields_.emplace_back();
    in_field_name_ = true;
    in_field_line_ = true;
  }
  field_bytes_ += length;
  if (limits_.max_header_bytes != 0 && field_bytes_ > limits_.max_header_bytes) {
    return set_error(431, "request header section too large");
  }
  HTTPHeaders::append_text(fields.fields_.back().name, std::string_view(at, length));
  return 0;
}

int HTTP1RequestParser::on_header_field_complete() {
  HTTPHeaders& fields = current_fields();
  // llhttp's loose build takes "Name :" (whitespace before the colon, RFC 9112 section 5.1
  // says 400) and both builds take an empty name.
  if (!in_field_name_ || !is_valid_header_name(fields.fields_.back().name)) {
    return set_error(400, "invalid header field name");
  }
  in_field_name_ = false;
  return 0;
}

int HTTP1RequestParser::on_header_value(const char* at, std::size_t length) {
  HTTPHeaders& fields = current_fields();
  if (fields.fields_.empty()) return set_error(400, "header value without a name");
  field_bytes_ += length;
  if (limits_.max_header_bytes != 0 && field_bytes_ > limits_.max_header_bytes) {
    return set_error(431, "request header section too large");
  }
  HTTPHeaders::append_text(fields.fields_.back().value, std::string_view(at, length));
  return 0;
}

int HTTP1RequestParser::on_header_value_complete() {
  HTTPHeaders& fields = current_fields();
  if (fields.fields_.empty()) return set_error(400, "header value without a name");
  std::string& value = fields.fields_.back().value;
  std::string_view trimmed = detail::trim_ows(value);
  if (trimmed.size() != value.size()) {
    std::size_t begin = static_cast<std::size_t>(trimmed.data() - value.data());
    std::size_t size = trimmed.size();
    value.erase(0, begin);
    value.resize(size);
  }
  field_bytes_ += 4;
  in_field_line_ = false;
  if (limits_.max_header_bytes != 0 && field_bytes_ > limits_.max_header_bytes) {
    return set_error(431, "request header section too large");
  }
  return 0;
}

int HTTP1RequestParser::on_headers_complete() {
  llhttp_t* p = as_llhttp(llhttp_storage_);
  // Covers "GET /" lines, which llhttp reads as HTTP/0.9.
  if (p->http_major != 1 || p->http_minor > 1) {
    return set_error(505, "HTTP version not supported");
  }
  request_line_done_ = true;
  headers_done_ = true;
  in_field_line_ = false;

  const std::string_view method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  const std::string& target = start_line_.target;
  // RFC 9112 section 3.2: "*" is for server-wide OPTIONS; CONNECT takes host:port only.
  if (target == "*" && p->method != HTTP_OPTIONS) {
    return set_error(400, "asterisk-form target on a method other than OPTIONS");
  }
  if (p->method == HTTP_CONNECT && (target.find_first_of("/?#*") != std::string::npos ||
                                    target.find(':') == std::string::npos)) {
    return set_error(400, "CONNECT needs an authority-form (host:port) target");
  }

  // RFC 9112 section 3.2: Host is required on HTTP/1.1, never repeated, and well-formed.
  std::size_t hosts = 0;
  bool has_transfer_encoding = false;
  for (const HeaderField& field : headers_) {
    if (detail::iequals(field.name, "host")) {
      ++hosts;
      if (!is_valid_host(field.value)) return set_error(400, "invalid Host header");
    } else if (detail::iequals(field.name, "transfer-encoding")) {
      has_transfer_encoding = true;
    }
  }
  if (hosts > 1) return set_error(400, "more than one Host header");
  if (hosts == 0 && p->http_minor == 1) return set_error(400, "missing Host header");

  if (has_transfer_encoding) {
    if (p->http_minor == 0) return set_error(400, "Transfer-Encoding on an HTTP/1.0 request");
    switch (judge_transfer_encoding(headers_)) {
      case CodingVerdict::kChunked:
        break;
      case CodingVerdict::kMalformed:
        return set_error(400, "chunked is not the final transfer coding");
      case CodingVerdict::kUnsupported:
        return set_error(501, "transfer coding not implemented");
    }
  }

  RequestInfo info;
  info.keep_alive = llhttp_should_keep_alive(p) != 0;
  info.chunked = (p->flags & F_CHUNKED) != 0;
  if ((p->flags & F_CONTENT_LENGTH) != 0) info.content_length = p->content_length;
  info.expect_continue = p->http_minor == 1 && expects_continue(headers_);
  info.upgrade = p->upgrade != 0;
  keep_alive_ = info.keep_alive;

  start_line_.method.assign(method);
  start_line_.version_major = p->http_major;
  start_line_.version_minor = p->http_minor;
  field_bytes_ = 0;  // trailers get a budget of their own

  HeadersAction action = HeadersAction::kContinue;
  if (run_delegate([&] {
        action = delegate_->on_headers(std::move(start_line_), std::move(headers_), info);
      }) != 0) {
    return -1;
  }
  if (action == HeadersAction::kDeclineUpgrade) p->upgrade = 0;

  if (info.content_length && max_body_bytes_ != 0 && *info.content_length > max_body_bytes_) {
    return set_error(413, "request body too large");
  }
  // llhttp reads a chunked body next, unless what follows is another protocol already: an
  // accepted CONNECT ends the message here (llhttp__after_headers_complete).
  if (info.chunked && !(p->upgrade != 0 && p->method == HTTP_CONNECT)) return begin_chunk_line();
  return 0;
}

int HTTP1RequestParser::begin_chunk_line() {
  // Stop llhttp right before the chunk-size line so that feed() reads it (scan_chunk_line).
  in_chunk_line_ = true;
  chunk_line_.reset();
  resume_after_pause_ = true;
  return HPE_PAUSED;
}

int HTTP1RequestParser::on_chunk_header() {
  const llhttp_t* p = as_llhttp(llhttp_storage_);
  uint64_t size = p->content_length;
  in_chunk_data_ = size > 0;
  if (max_body_bytes_ != 0 && size > max_body_bytes_ - std::min(body_bytes_, max_body_bytes_)) {
    return set_error(413, "request body too large");
  }
  if (size == 0) {
    last_chunk_seen_ = true;  // trailers follow
    return 0;
  }
  // Stop llhttp so that feed() screens the framing after the data from its first byte: if
  // the data ended in CR, the loose build would take a bare LF after it for the CRLF.
  resume_after_pause_ = true;
  return HPE_PAUSED;
}

int HTTP1RequestParser::on_chunk_complete() {
  in_chunk_data_ = false;
  // The last chunk completes with the trailers; any other is followed by a chunk-size line.
  return last_chunk_seen_ ? 0 : begin_chunk_line();
}

int HTTP1RequestParser::on_body(const char* at, std::size_t length) {
  body_bytes_ += length;
  if (max_body_bytes_ != 0 && body_bytes_ > max_body_bytes_) {
    return set_error(413, "request body too large");
  }
  return run_delegate([&] { delegate_->on_body(std::string_view(at, length)); });
}

int HTTP1RequestParser::on_message_complete() {
  if (!trailers_.empty()) {
    if (run_delegate([&] { delegate_->on_trailers(std::move(trailers_)); }) != 0) return -1;
  }
  if (run_delegate([&] { delegate_->on_message_complete(); }) != 0) return -1;
  in_message_ = false;
  headers_done_ = false;
  in_chunk_data_ = false;
  head_wire_bytes_ = 0;
  const llhttp_t* p = as_llhttp(llhttp_storage_);
  // Upgrades stop with HPE_PAUSED_UPGRADE by themselves; everything else pauses here so the
  // connection answers pipelined requests one at a time.
  return p->upgrade != 0 ? 0 : HPE_PAUSED;
}

}  // namespace tronada
