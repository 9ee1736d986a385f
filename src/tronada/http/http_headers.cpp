#include "tronada/http/http_headers.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tronada {

namespace detail {

namespace {

constexpr std::array<bool, 256> make_tchar_table() {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}

constexpr std::array<bool, 256> kTchar = make_tchar_table();

constexpr char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

}  // namespace

bool is_tchar(unsigned char c) {
  return kTchar[c];
}

bool iequals_n(const char* a, const char* b, std::size_t n) {
  // Eight bytes at a time while they are equal as they are: a name is nearly always
  // looked up in the case it was sent in ("Content-Length"), so folding is rarely needed.
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    if (x != y) break;
  }
  for (; i < n; ++i) {
    if (a[i] != b[i] && ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  std::size_t begin = 0;
  std::size_t end = s.size();
  while (begin < end && (s[begin] == ' ' || s[begin] == '\t')) ++begin;
  while (end > begin && (s[end - 1] == ' ' || s[end - 1] == '\t')) --end;
  return s.substr(begin, end - begin);
}

}  // namespace detail

namespace {

// Strings given up by destroyed headers, for add() to reuse. Under AddressSanitizer or
// ThreadSanitizer a reused buffer would hide a use after free of a string_view into a
// header that is gone (get() returns views): there every string is new, as without it.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kRecycleStrings = false;
#else
constexpr bool kRecycleStrings = true;
#endif
// A request and its response give up a handful; a bound keeps what a thread holds small
// (at most 32 strings of 512 bytes) whatever the headers it has seen.
constexpr std::size_t kSpareStrings = 32;
constexpr std::size_t kMaxSpareCapacity = 512;

// Set when this thread's spares are destroyed at its exit: headers destroyed later (by
// other thread_locals) free their strings. Trivially destructible, so always readable.
thread_local bool spares_gone = false;

// Spares are kept by capacity, bucket k holding capacities below 32 << k (the last up to
// kMaxSpareCapacity): a take looks at the top of its own bucket, else takes from the
// next one up, instead of searching every spare for the best fit (which was 5 % of an
// h2c request's instructions once the spares were full).
constexpr std::size_t kBuckets = 5;

struct SpareStrings {
  std::string strings[kBuckets][kSpareStrings];
  std::size_t in_bucket[kBuckets] = {};
  std::size_t count = 0;
  ~SpareStrings() { spares_gone = true; }
};

SpareStrings& spares() {
  thread_local SpareStrings s;
  return s;
}

// What a std::string holds without the heap (libstdc++: 15). Not constexpr: clang 14
// cannot evaluate the constructor with libstdc++ 12.
const std::size_t kInlineCapacity = std::string().capacity();

// For a capacity of 16 .. kMaxSpareCapacity.
std::size_t bucket_of(std::size_t capacity) {
  return std::min<std::size_t>(kBuckets - 1,
                               static_cast<std::size_t>(std::bit_width(capacity)) - 5);
}

/// `text` as a string, in a spare that holds it (one of about its size, else a bigger
/// one) when it needs the heap.
std::string take_string(std::string_view text) {
  if (!kRecycleStrings || text.size() <= kInlineCapacity || spares_gone ||
      text.size() > kMaxSpareCapacity) {
    return std::string(text);
  }
  SpareStrings& s = spares();
  if (s.count == 0) return std::string(text);
  std::size_t k = bucket_of(text.size());
  std::string* bucket = s.strings[k];
  std::size_t& n = s.in_bucket[k];
  // Its own bucket, newest first: strings of one size are usually parked together.
  for (std::size_t i = n; i-- > 0;) {
    if (bucket[i].capacity() >= text.size()) {
      std::string out = std::move(bucket[i]);
      if (i != --n) bucket[i] = std::move(bucket[n]);
      --s.count;
      out.assign(text);
      return out;
    }
  }
  // Every string in a bucket above is bigger than any that belongs to this one.
  for (std::size_t j = k + 1; j < kBuckets; ++j) {
    if (s.in_bucket[j] > 0) {
      std::string out = std::move(s.strings[j][--s.in_bucket[j]]);
      --s.count;
      out.assign(text);
      return out;
    }
  }
  return std::string(text);
}

void park_string(std::string& text) {
  std::size_t capacity = text.capacity();
  if (capacity <= kInlineCapacity || capacity > kMaxSpareCapacity) return;
  SpareStrings& s = spares();
  if (s.count == kSpareStrings) return;
  std::size_t k = bucket_of(capacity);
  s.strings[k][s.in_bucket[k]++] = std::move(text);
  ++s.count;
}

void park_strings(HTTPHeaders::Fields& fields) {
  if (!kRecycleStrings || spares_gone) return;
  for (HeaderField& f : fields) {
    park_string(f.name);
    park_string(f.value);
  }
}

}  // namespace

std::size_t detail::spare_header_strings() noexcept {
  return spares_gone ? 0 : spares().count;
}

HTTPHeaders::~HTTPHeaders() {
  park_strings(fields_);
}

void HTTPHeaders::clear() {
  park_strings(fields_);
  fields_.clear();
}

void HTTPHeaders::append_text(std::string& to, std::string_view text) {
  if (to.empty()) {
    to = take_string(text);
  } else {
    to.append(text);
  }
}

void HTTPHeaders::add(std::string_view name, std::string_view value) {
  fields_.push_back(HeaderField{take_string(name), take_string(value)});
}

void HTTPHeaders::add_owned(std::string_view name, std::string value) {
  fields_.push_back(HeaderField{take_string(name), std::move(value)});
}

void HTTPHeaders::set(std::string_view name, std::string_view value) {
  auto first = std::find_if(fields_.begin(), fields_.end(),
                            [&](const HeaderField& f) { return detail::iequals(f.name, name); });
  if (first == fields_.end()) {
    add(name, value);
    return;
  }
  first->name.assign(name);
  first->value.assign(value);
  fields_.erase(std::remove_if(std::next(first), fields_.end(),
                               [&](const HeaderField& f) { return detail::iequals(f.name, name); }),
                fields_.end());
}

std::optional<std::string_view> HTTPHeaders::get(std::string_view name) const {
  for (const HeaderField& f : fields_) {
    if (detail::iequals(f.name, name)) return std::string_view(f.value);
  }
  return std::nullopt;
}

std::vector<std::string_view> HTTPHeaders::get_all(std::string_view name) const {
  std::vector<std::string_view> values;
  for (const HeaderField& f : fields_) {
    if (detail::iequals(f.name, name)) values.emplace_back(f.value);
  }
  return values;
}

std::optional<std::string> HTTPHeaders::get_joined(std::string_view name) const {
  std::optional<std::string> joined;
  for (const HeaderField& f : fields_) {
    if (!detail::iequals(f.name, name)) continue;
    if (!joined) {
      joined.emplace(f.value);
    } else {
      joined->append(", ").append(f.value);
    }
  }
  return joined;
}

bool HTTPHeaders::contains(std::string_view name) const {
  return std::any_of(fields_.begin(), fields_.end(),
                     [&](const HeaderField& f) { return detail::iequals(f.name, name); });
}

std::size_t HTTPHeaders::remove(std::string_view name) {
  return std::erase_if(fields_,
                       [&](const HeaderField& f) { return detail::iequals(f.name, name); });
}

bool is_valid_header_name(std::string_view name) {
  // A plain loop over the table: std::all_of with is_tchar made a call per character.
  // (Eight bytes at a time measured no faster: the names sent are mostly short.)
  if (name.empty()) return false;
  for (char c : name) {
    if (!detail::kTchar[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

bool is_valid_header_value(std::string_view value) {
  // Many bytes at a time (the last block overlapping the one before it rather than a
  // byte loop): a loop per character was the largest single cost of a response head.
  const char* p = value.data();
  const std::size_t n = value.size();
#if defined(__SSE2__)
  if (n >= 16) {
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n'), nul = _mm_setzero_si128();
    for (std::size_t i = 0;; i += 16) {
      if (i + 16 > n) i = n - 16;
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)),
                                 _mm_cmpeq_epi8(v, nul));
      if (_mm_movemask_epi8(bad) != 0) return false;
      if (i + 16 == n) return true;
    }
  }
#endif
  // Nonzero if some byte of `word` equals `byte` (the zero-byte test on the xor).
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
  auto has = [](std::uint64_t word, unsigned char byte) {
    std::uint64_t x = word ^ (kOnes * byte);
    return (x - kOnes) & ~x & kHighs;
  };
  if (n >= 8) {
    for (std::size_t i = 0;; i += 8) {
      if (i + 8 > n) i = n - 8;
      std::uint64_t word;
      std::memcpy(&word, p + i, 8);
      if (has(word, '\0') | has(word, '\r') | has(word, '\n')) return false;
      if (i + 8 == n) return true;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0') return false;
  }
  return true;
}

}  // namespace tronada
