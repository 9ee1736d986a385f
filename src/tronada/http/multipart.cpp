#include "tronada/http/multipart.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "tronada/http/url_codec.h"

namespace tronada {

namespace {

constexpr std::size_t kMaxBoundarySize = 70;  // RFC 2046 section 5.1.1
// RFC 2046 sets no bound on transport padding; no client sends any, so a short cap keeps
// the bytes held while deciding about a boundary line small.
constexpr std::size_t kMaxTransportPadding = 256;

bool is_bchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::strchr("'()+_,-./:=? ", c) != nullptr;
}

bool is_lwsp(char c) {
  return c == ' ' || c == '\t';
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

using Params = std::vector<std::pair<std::string, std::string>>;

// Parses `;name=value` parameters (value a token, a quoted string, or -- leniently, for
// clients that do not quote filenames -- raw text up to the next ';'). Names are
// lowercased. In a quoted string only \" and \\ are escapes, as in Tornado and Werkzeug:
// browsers do not escape backslashes in filenames (the HTML standard percent-encodes '"'
// and newlines instead), so "a\b.txt" must stay as written. A repeated name is an error,
// not a choice between two readings that another parser might make differently.
std::optional<Params> parse_params(std::string_view s) {
  Params params;
  std::size_t i = 0;
  auto skip_ows = [&] {
    while (i < s.size() && is_lwsp(s[i])) ++i;
  };
  while (true) {
    skip_ows();
    if (i == s.size()) return params;
    if (s[i] != ';') return std::nullopt;
    ++i;
    skip_ows();
    if (i == s.size()) return params;  // a trailing ';'
    std::size_t name_start = i;
    while (i < s.size() && detail::is_tchar(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view name = s.substr(name_start, i - name_start);
    skip_ows();
    if (name.empty() || i == s.size() || s[i] != '=') return std::nullopt;
    ++i;
    skip_ows();
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        char c = s[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < s.size() && (s[i] == '"' || s[i] == '\\')) c = s[i++];
        value += c;
      }
      if (!closed) return std::nullopt;
    } else {
      std::size_t end = std::min(s.find(';', i), s.size());
      value = std::string(detail::trim_ows(s.substr(i, end - i)));
      i = end;
    }
    std::string lowered = ascii_lower(name);
    for (const auto& param : params) {
      if (param.first == lowered) return std::nullopt;
    }
    params.emplace_back(std::move(lowered), std::move(value));
  }
}

const std::string* find_param(const Params& params, std::string_view name) {
  for (const auto& param : params) {
    if (param.first == name) return &param.second;
  }
  return nullptr;
}

// RFC 5987 ext-value "UTF-8'lang'percent-encoded"; other charsets are not decoded.
std::optional<std::string> decode_ext_value(std::string_view v) {
  std::size_t first = v.find('\'');
  if (first == std::string_view::npos || !detail::iequals(v.substr(0, first), "utf-8")) {
    return std::nullopt;
  }
  std::size_t second = v.find('\'', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  return url_decode(v.substr(second + 1));
}

}  // namespace

bool is_valid_multipart_boundary(std::string_view boundary) {
  return !boundary.empty() && boundary.size() <= kMaxBoundarySize && boundary.back() != ' ' &&
         std::all_of(boundary.begin(), boundary.end(), is_bchar);
}

std::optional<std::string> parse_boundary(std::string_view content_type) {
  std::size_t semicolon = std::min(content_type.find(';'), content_type.size());
  if (!detail::iequals(detail::trim_ows(content_type.substr(0, semicolon)),
                       "multipart/form-data")) {
    return std::nullopt;
  }
  auto params = parse_params(content_type.substr(semicolon));
  if (!params) return std::nullopt;
  const std::string* boundary = find_param(*params, "boundary");
  if (boundary == nullptr || !is_valid_multipart_boundary(*boundary)) return std::nullopt;
  return *boundary;
}

MultipartParser::MultipartParser(std::string_view boundary, MultipartDelegate& delegate,
                                 MultipartLimits limits)
    : delegate_(delegate), limits_(limits) {
  if (!is_valid_multipart_boundary(boundary)) {
    throw std::invalid_argument("invalid multipart boundary: " + std::string(boundary));
  }
  delimiter_ = "\r\n--";
  delimiter_ += boundary;
}

MultipartParser::Status MultipartParser::status() const {
  switch (state_) {
    case State::done:
      return Status::finished;
    case State::failed:
      return Status::failed;
    default:
      return Status::need_more;
  }
}

MultipartParser::Status MultipartParser::feed(std::string_view s) {
  try {
    std::size_t i = 0;
    while (i < s.size()) {
      switch (state_) {
        case State::preamble:
        case State::body:
          if (scan_for_delimiter(s, i)) {
            after_.clear();
            state_ = State::after_boundary;
          }
          break;
        case State::after_boundary:
          step_after_boundary(s[i], i);
          break;
        case State::headers:
          consume_headers(s, i);
          break;
        case State::done:
        case State::failed:
          return status();
      }
    }
  } catch (...) {
    fail(MultipartError::aborted, "multipart delegate aborted the body");
    throw;
  }
  return status();
}

MultipartParser::Status MultipartParser::finish() {
  if (state_ == State::preamble) {
    fail(MultipartError::no_initial_boundary, "multipart body has no boundary line");
  } else if (state_ != State::done && state_ != State::failed) {
    fail(MultipartError::incomplete, "multipart body ends before its closing boundary");
  }
  return status();
}

// Returns true, with `i` just past it, once a whole delimiter has matched; everything
// before it has been emitted. Otherwise consumes all of `s`, holding back (as matched_)
// only a delimiter prefix at its very end.
bool MultipartParser::scan_for_delimiter(std::string_view s, std::size_t& i) {
  const std::string_view delim = delimiter_;
  if (matched_ > 0) {
    while (i < s.size() && matched_ < delim.size() && s[i] == delim[matched_]) {
      ++i;
      ++matched_;
    }
    if (matched_ == delim.size()) {
      matched_ = 0;
      return true;
    }
    if (i == s.size()) return false;
    // The held bytes were data. No delimiter can start inside them: the delimiter's only
    // CR is its first byte, since a boundary has none. The mismatching byte is scanned
    // afresh below.
    emit(delim.substr(0, matched_));
    matched_ = 0;
  }
  std::size_t start = i;
  while (i < s.size()) {
    const void* cr = std::memchr(s.data() + i, '\r', s.size() - i);
    if (cr == nullptr) {
      i = s.size();
      break;
    }
    std::size_t pos = static_cast<std::size_t>(static_cast<const char*>(cr) - s.data());
    std::size_t n = std::min(delim.size(), s.size() - pos);
    if (s.substr(pos, n) == delim.substr(0, n)) {
      emit(s.substr(start, pos - start));
      i = pos + n;
      if (n == delim.size()) return true;
      matched_ = n;
      return false;
    }
    i = pos + 1;
  }
  emit(s.substr(start, i - start));
  return false;
}

// After "\r\n--boundary": "--" closes the body, LWSP* CRLF ends a boundary line, and
// anything else means the bytes were not a delimiter after all.
void MultipartParser::step_after_boundary(char c, std::size_t& i) {
  if (after_.empty()) {
    if (c == '-' || is_lwsp(c) || c == '\r') {
      after_ += c;
      ++i;
    } else {
      not_a_delimiter();
    }
    return;
  }
  char last = after_.back();
  if (after_ == "-") {
    if (c == '-') {
      ++i;
      close_delimiter_complete();
    } else {
      not_a_delimiter();
    }
  } else if (last == '\r') {
    if (c == '\n') {
      ++i;
      boundary_line_complete();
    } else {
      not_a_delimiter();
    }
  } else if ((is_lwsp(c) && after_.size() < kMaxTransportPadding) || c == '\r') {
    after_ += c;
    ++i;
  } else {
    not_a_delimiter();
  }
}

// The current byte has not been consumed and is scanned again as data: it cannot complete
// a delimiter that started in the held bytes, whose only CR (if any) is followed by it.
void MultipartParser::not_a_delimiter() {
  state_ = in_part_ ? State::body : State::preamble;
  emit(delimiter_);
  emit(after_);
  after_.clear();
}

void MultipartParser::boundary_line_complete() {
  if (in_part_) {
    in_part_ = false;
    delegate_.on_part_end();
  }
  if (parts_ == limits_.max_parts) {
    fail(MultipartError::too_many_parts,
         "multipart body has more than " + std::to_string(limits_.max_parts) + " parts");
    return;
  }
  ++parts_;
  header_buf_ = "\r\n";
  state_ = State::headers;
}

void MultipartParser::close_delimiter_complete() {
  if (in_part_) {
    in_part_ = false;
    delegate_.on_part_end();
  }
  state_ = State::done;
  delegate_.on_finish();
}

void MultipartParser::consume_headers(std::string_view s, std::size_t& i) {
  const std::size_t capacity = limits_.max_header_bytes + 2;  // plus the leading CRLF
  const std::size_t old_size = header_buf_.size();
  const std::size_t take = std::min(s.size() - i, capacity - std::min(capacity, old_size));
  header_buf_.append(s.substr(i, take));
  // The terminator may straddle the previous chunk, so look back three bytes.
  std::size_t end = header_buf_.find("\r\n\r\n", old_size >= 3 ? old_size - 3 : 0);
  if (end == std::string::npos) {
    i += take;
    if (i < s.size()) {
      fail(MultipartError::headers_too_large,
           "multipart part headers exceed " + std::to_string(limits_.max_header_bytes) + " bytes");
    }
    return;
  }
  i += end + 4 - old_size;
  header_buf_.resize(end + 4);
  begin_part();
}

void MultipartParser::begin_part() {
  MultipartPartHeaders part;
  // Lines between the leading CRLF and the blank line, each ending in CRLF.
  std::string_view block = std::string_view(header_buf_).substr(2, header_buf_.size() - 4);
  while (!block.empty()) {
    std::size_t eol = block.find("\r\n");
    std::string_view line = block.substr(0, eol);
    block.remove_prefix(eol + 2);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_valid_header_name(line.substr(0, colon))) {
      // Also catches obsolete line folding: a continuation line starts with a space.
      fail(MultipartError::malformed_headers, "malformed multipart part header line");
      return;
    }
    std::string_view value = detail::trim_ows(line.substr(colon + 1));
    if (!is_valid_header_value(value)) {
      fail(MultipartError::malformed_headers, "forbidden byte in multipart part header");
      return;
    }
    part.headers.add(line.substr(0, colon), value);
  }

  std::vector<std::string_view> dispositions = part.headers.get_all("Content-Disposition");
  if (dispositions.size() != 1) {
    fail(MultipartError::missing_content_disposition,
         dispositions.empty() ? "multipart part has no Content-Disposition"
                              : "multipart part has several Content-Disposition headers");
    return;
  }
  std::string_view disposition = dispositions.front();
  std::size_t semicolon = std::min(disposition.find(';'), disposition.size());
  if (!detail::iequals(detail::trim_ows(disposition.substr(0, semicolon)), "form-data")) {
    fail(MultipartError::not_form_data, "multipart part is not form-data");
    return;
  }
  auto params = parse_params(disposition.substr(semicolon));
  if (!params) {
    fail(MultipartError::malformed_headers, "malformed multipart Content-Disposition");
    return;
  }
  const std::string* name = find_param(*params, "name");
  if (name == nullptr) {
    fail(MultipartError::missing_name, "multipart part has no name");
    return;
  }
  part.name = *name;
  if (const std::string* filename = find_param(*params, "filename")) part.filename = *filename;
  if (const std::string* ext = find_param(*params, "filename*")) {
    if (auto decoded = decode_ext_value(*ext)) part.filename = std::move(*decoded);
  }
  part.content_type = std::string(part.headers.get("Content-Type").value_or("text/plain"));

  header_buf_.clear();
  header_buf_.shrink_to_fit();
  in_part_ = true;
  matched_ = 0;
  state_ = State::body;
  delegate_.on_part_begin(part);
}

void MultipartParser::emit(std::string_view data) {
  if (in_part_ && !data.empty()) delegate_.on_part_data(data);
}

void MultipartParser::fail(MultipartError error, std::string message) {
  if (state_ == State::failed) return;
  state_ = State::failed;
  error_ = error;
  error_message_ = std::move(message);
  header_buf_.clear();
  after_.clear();
}

namespace {

class FormCollector : public MultipartDelegate {
 public:
  MultipartForm form;

  void on_part_begin(const MultipartPartHeaders& part) override {
    current_ = MultipartFile{part.name, part.filename.value_or(""), part.content_type, {}};
  }
  void on_part_data(std::string_view data) override { current_.body.append(data); }
  void on_part_end() override {
    if (current_.filename.empty()) {
      form.fields.add(std::move(current_.name), std::move(current_.body));
    } else {
      form.files.push_back(std::move(current_));
    }
    current_ = {};
  }
  void on_finish() override {}

 private:
  MultipartFile current_;
};

}  // namespace

MultipartForm parse_multipart(std::string_view body, std::string_view boundary,
                              MultipartLimits limits) {
  if (!is_valid_multipart_boundary(boundary)) {
    throw FormError("invalid multipart boundary");
  }
  FormCollector collector;
  MultipartParser parser(boundary, collector, limits);
  parser.feed(body);
  if (parser.finish() != MultipartParser::Status::finished) {
    throw FormError(parser.error_message());
  }
  return std::move(collector.form);
}

}  // namespace tronada
