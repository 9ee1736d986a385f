// HTTP header fields: an ordered, case-insensitive multimap, shared by HTTP/1 and HTTP/2.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/async/detail/pool_allocator.h"

namespace tronada {

class HTTP1RequestParser;

/// One header field line as received or to be sent; `name` keeps its original spelling.
struct HeaderField {
  std::string name;
  std::string value;

  bool operator==(const HeaderField&) const = default;
};

/// The header fields of one message, like Tornado's `HTTPHeaders`.
///
/// Fields keep their insertion order and the spelling of their names; lookups compare names
/// ASCII case-insensitively. Requests carry a few dozen fields at most, so storage is one
/// vector and lookups are linear scans: no map nodes, no per-lookup allocation. The vector's
/// storage comes from the per-thread pool (detail::PoolAllocator): every request makes and
/// frees one for its fields and one for its response's, of the same few sizes each time.
///
/// The container does not validate what it stores; code that copies untrusted text into a
/// response must check it with is_valid_header_name() and is_valid_header_value().
class HTTPHeaders {
 public:
  using Fields = std::vector<HeaderField, detail::PoolAllocator<HeaderField>>;
  using const_iterator = Fields::const_iterator;

  HTTPHeaders() = default;
  HTTPHeaders(const HTTPHeaders&) = default;
  HTTPHeaders(HTTPHeaders&&) noexcept = default;
  HTTPHeaders& operator=(const HTTPHeaders&) = default;
  HTTPHeaders& operator=(HTTPHeaders&&) noexcept = default;
  /// Parks its longer names and values for reuse (see add()).
  ~HTTPHeaders();

  /// Appends a field, keeping any earlier fields of the same name. A name or value too long
  /// for the string's inline buffer reuses the storage of one a destroyed or cleared
  /// HTTPHeaders on this thread gave up (a bounded few are kept): the default Content-Type
  /// and the ETag of every response cost no allocation in the steady state.
  void add(std::string_view name, std::string_view value);

  /// add() for a value already built as a string: its storage moves into the field
  /// instead of being copied (one allocation less on a hot path).
  void add_owned(std::string_view name, std::string value);

  /// Replaces every field named `name` by one with `value`; the first occurrence keeps its
  /// place (and spelling of the name is taken from `name`), or the field is appended.
  void set(std::string_view name, std::string_view value);

  /// The value of the first field named `name`.
  std::optional<std::string_view> get(std::string_view name) const;

  /// The values of every field named `name`, in order.
  std::vector<std::string_view> get_all(std::string_view name) const;

  /// The values of every field named `name` joined with ", " (RFC 9110 section 5.3), or
  /// nullopt if there is none. Wrong for Set-Cookie, which cannot be combined.
  std::optional<std::string> get_joined(std::string_view name) const;

  bool contains(std::string_view name) const;

  /// Removes every field named `name`; returns how many were removed.
  std::size_t remove(std::string_view name);

  std::size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  /// Removes every field, parking its longer strings as the destructor does.
  void clear();
  void reserve(std::size_t n) { fields_.reserve(n); }

  const_iterator begin() const { return fields_.begin(); }
  const_iterator end() const { return fields_.end(); }

  bool operator==(const HTTPHeaders&) const = default;

 private:
  // The parser fills names and values in place from llhttp's fragments, which saves a copy
  // of every field.
  friend class HTTP1RequestParser;
  /// For the parser: appends a fragment of a name or value; the first fragment of a long
  /// one goes into a reused string, as add() does.
  static void append_text(std::string& to, std::string_view text);

  Fields fields_;
};

/// True if `name` is a non-empty RFC 9110 token (tchar: ALPHA, DIGIT, !#$%&'*+-.^_`|~).
bool is_valid_header_name(std::string_view name);

/// False if `value` contains CR, LF or NUL. Handlers' values go through this before they reach
/// the wire, so a value taken from a request cannot inject a header or split a response.
bool is_valid_header_value(std::string_view value);

namespace detail {

/// iequals for two strings of `n` bytes each.
bool iequals_n(const char* a, const char* b, std::size_t n);

/// ASCII case-insensitive equality, the comparison HTTP uses for field names and tokens.
/// The length check is inline: most comparisons (a name looked up among a message's
/// fields) fail on it, and a request makes about a hundred of them.
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && iequals_n(a.data(), b.data(), a.size());
}

/// `s` without leading and trailing spaces and tabs (HTTP's OWS).
std::string_view trim_ows(std::string_view s);

/// True for RFC 9110 tchar.
bool is_tchar(unsigned char c);

/// How many strings destroyed headers left on this thread for add() to reuse (for tests
/// of the bound).
std::size_t spare_header_strings() noexcept;

}  // namespace detail

}  // namespace tronada
