// Form arguments: the ordered name -> values collection and the
// application/x-www-form-urlencoded parser shared by query strings and request bodies.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tronada {

/// A request body or query string the form parsers refuse (too many fields, malformed
/// multipart). The framework answers it with 400 Bad Request.
class FormError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Form arguments in arrival order, several values per name allowed: Tornado's
/// `request.arguments` (a dict of lists) flattened into one sequence of pairs, so that the
/// relative order of different names is kept too. Names and values are raw bytes after
/// percent-decoding; they are not checked to be UTF-8 (the framework does that when it
/// wants text, answering 400 as Tornado's get_argument does).
///
/// Storage is one vector and lookups are linear scans, as in HTTPHeaders: forms have a
/// few fields, and the parsers cap the count. Views returned by the getters stay valid
/// until the next add() or extend().
class QueryArguments {
 public:
  using value_type = std::pair<std::string, std::string>;
  using const_iterator = std::vector<value_type>::const_iterator;

  QueryArguments() = default;

  /// Appends a value, keeping earlier values of the same name.
  void add(std::string name, std::string value);

  /// Appends every pair of `other`, as Tornado merges query and body arguments.
  void extend(const QueryArguments& other);

  /// The first value of `name`.
  std::optional<std::string_view> get_first(std::string_view name) const;

  /// The last value of `name`, the one Tornado's get_argument returns.
  std::optional<std::string_view> get_last(std::string_view name) const;

  /// Every value of `name`, in order.
  std::vector<std::string_view> get_all(std::string_view name) const;

  bool contains(std::string_view name) const;

  /// Each distinct name once, in order of first appearance.
  std::vector<std::string_view> names() const;

  std::size_t size() const { return pairs_.size(); }
  bool empty() const { return pairs_.empty(); }
  const_iterator begin() const { return pairs_.begin(); }
  const_iterator end() const { return pairs_.end(); }

  bool operator==(const QueryArguments&) const = default;

 private:
  std::vector<value_type> pairs_;
};

/// Python's default `max_num_fields` is unlimited; Django's DATA_UPLOAD_MAX_NUMBER_FIELDS
/// is 1000, enough for any real form and small enough that a flood of tiny fields cannot
/// turn a 1 MiB body into a million allocations.
inline constexpr std::size_t kDefaultMaxFormFields = 1000;

/// Parses application/x-www-form-urlencoded text (a query string without '?', or a
/// request body) the way Python 3.11's `urllib.parse.parse_qsl` does:
/// - fields are separated by '&' only; ';' is data (Python 3.10 dropped it as a separator
///   to close a cache-poisoning hole, and Tornado followed);
/// - empty fields ("a=1&&b=2") are skipped;
/// - the first '=' splits name from value; a field without '=' is a name with an empty
///   value, and with `keep_blank` false every empty value is dropped;
/// - '+' is a space and %XX escapes are decoded; a malformed escape ("%zz", "%4", a
///   trailing '%') is kept as raw text while other escapes in the same string are still
///   decoded, so the parser never fails on odd input.
/// Throws FormError if the text has more than `max_fields` fields, counted as Python
/// counts them (one more than the number of '&', empty fields included, before anything
/// is decoded); a `max_fields` of 0 means no limit.
QueryArguments parse_query_string(std::string_view text, bool keep_blank = true,
                                  std::size_t max_fields = kDefaultMaxFormFields);

}  // namespace tronada
