// HTTP header fields: an ordered, case-insensitive multimap, shared by HTTP/1 and HTTP/2.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
/// vector and lookups are linear scans: no map nodes, no per-lookup allocation.
///
/// The container does not validate what it stores; code that copies untrusted text into a
/// response must check it with is_valid_header_name() and is_valid_header_value().
class HTTPHeaders {
 public:
  using const_iterator = std::vector<HeaderField>::const_iterator;

  HTTPHeaders() = default;

  /// Appends a field, keeping any earlier fields of the same name.
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
  void clear() { fields_.clear(); }
  void reserve(std::size_t n) { fields_.reserve(n); }

  const_iterator begin() const { return fields_.begin(); }
  const_iterator end() const { return fields_.end(); }

  bool operator==(const HTTPHeaders&) const = default;

 private:
  // The parser fills names and values in place from llhttp's fragments, which saves a copy
  // of every field.
  friend class HTTP1RequestParser;

  std::vector<HeaderField> fields_;
};

/// True if `name` is a non-empty RFC 9110 token (tchar: ALPHA, DIGIT, !#$%&'*+-.^_`|~).
bool is_valid_header_name(std::string_view name);

/// False if `value` contains CR, LF or NUL. Handlers' values go through this before they reach
/// the wire, so a value taken from a request cannot inject a header or split a response.
bool is_valid_header_value(std::string_view value);

namespace detail {

/// ASCII case-insensitive equality, the comparison HTTP uses for field names and tokens.
bool iequals(std::string_view a, std::string_view b);

/// `s` without leading and trailing spaces and tabs (HTTP's OWS).
std::string_view trim_ows(std::string_view s);

/// True for RFC 9110 tchar.
bool is_tchar(unsigned char c);

}  // namespace detail

}  // namespace tronada
