// The result of a PostgreSQL statement: rows and typed fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tronada/db/pg_error.h"
#include "tronada/db/pg_param.h"

namespace tronada::pg {

namespace detail {
/// Names the field being read in a ConversionError (formatted only when one is thrown).
struct Where {
  std::string_view column;
  int row;
  std::string str() const;
};

// Text-format decoders, one per base type; they throw ConversionError with `what` (the
// column) in the message. Results arrive in text format, the server's canonical output.
void decode(std::string_view text, bool& out, const Where& what);
void decode(std::string_view text, long long& out, const Where& what);
void decode(std::string_view text, unsigned long long& out, const Where& what);
void decode(std::string_view text, double& out, const Where& what);
void decode(std::string_view text, Bytea& out, const Where& what);
void decode(std::string_view text, Timestamp& out, const Where& what);
/// A one-dimensional array literal split into its elements (nullopt for NULL).
std::vector<std::optional<std::string>> split_array(std::string_view text, const Where& what);
[[noreturn]] void throw_null(const Where& what);
[[noreturn]] void throw_range(std::string_view text, const Where& what);

template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {};
template <typename T>
struct is_vector : std::false_type {};
template <typename T>
struct is_vector<std::vector<T>> : std::true_type {};

/// Reads a non-NULL value's text as T.
template <typename T>
T decode_as(std::string_view text, const Where& what) {
  if constexpr (std::is_same_v<T, std::string>) {
    return std::string(text);
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    return text;
  } else if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, Bytea> ||
                       std::is_same_v<T, Timestamp>) {
    T out{};
    decode(text, out, what);
    return out;
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    long long v = 0;
    decode(text, v, what);
    if (v < static_cast<long long>(std::numeric_limits<T>::min()) ||
        v > static_cast<long long>(std::numeric_limits<T>::max())) {
      throw_range(text, what);
    }
    return static_cast<T>(v);
  } else if constexpr (std::is_integral_v<T>) {
    unsigned long long v = 0;
    decode(text, v, what);
    if (v > static_cast<unsigned long long>(std::numeric_limits<T>::max())) throw_range(text, what);
    return static_cast<T>(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    double v = 0;
    decode(text, v, what);
    return static_cast<T>(v);
  } else if constexpr (is_optional<T>::value) {
    return T(decode_as<typename T::value_type>(text, what));
  } else if constexpr (is_vector<T>::value) {
    using Element = typename T::value_type;
    static_assert(!std::is_same_v<Element, std::string_view>,
                  "array elements are unescaped copies: read them as std::string");
    T out;
    for (auto& element : split_array(text, what)) {
      if (element) {
        out.push_back(decode_as<Element>(*element, what));
      } else if constexpr (is_optional<Element>::value) {
        out.push_back(std::nullopt);
      } else {
        throw_null(what);
      }
    }
    return out;
  } else {
    static_assert(sizeof(T) == 0, "pg::Field::as<T>: no conversion to this type");
  }
}
}  // namespace detail

/// One value of a row: NULL, or the text the server formatted, readable as a C++ type.
/// A view into its Result, which must outlive it.
class Field {
 public:
  Field(const PGresult* result, int row, int column)
      : result_(result), row_(row), column_(column) {}

  bool is_null() const;
  /// The value as the server wrote it ("" for NULL). Valid while the Result lives.
  std::string_view text() const;
  Oid type() const;
  std::string_view name() const;

  /// The value as T: bool, any integer, float, double, std::string, std::string_view
  /// (into the Result), Bytea, Timestamp, std::vector<T> of those for arrays, and
  /// std::optional<T> to accept NULL. Throws ConversionError if the text does not fit T
  /// (a NULL into a non-optional, "abc" into an int, 70000 into an int16_t).
  template <typename T>
  T as() const {
    if (is_null()) {
      if constexpr (detail::is_optional<T>::value) {
        return std::nullopt;
      } else {
        detail::throw_null(describe());
      }
    }
    return detail::decode_as<T>(text(), describe());
  }

 private:
  detail::Where describe() const { return {name(), row_}; }
  const PGresult* result_;
  int row_;
  int column_;
};

/// One row of a Result; a view that must not outlive it.
class Row {
 public:
  Row(const PGresult* result, int row) : result_(result), row_(row) {}

  std::size_t size() const;
  /// Throws std::out_of_range for a column that does not exist.
  Field operator[](int column) const;
  Field operator[](std::string_view name) const;
  template <typename T>
  T get(int column) const {
    return (*this)[column].template as<T>();
  }
  template <typename T>
  T get(std::string_view name) const {
    return (*this)[name].template as<T>();
  }

 private:
  const PGresult* result_;
  int row_;
};

/// The outcome of one statement: its rows (for SELECT and RETURNING), the command tag
/// and the number of rows it touched. Cheap to copy (shares the libpq result).
class Result {
 public:
  class iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = Row;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Row;
    iterator(const PGresult* result, int row) : result_(result), row_(row) {}
    Row operator*() const { return Row(result_, row_); }
    iterator& operator++() {
      ++row_;
      return *this;
    }
    bool operator==(const iterator& other) const { return row_ == other.row_; }

   private:
    const PGresult* result_;
    int row_;
  };

  Result() = default;
  /// Takes ownership of `result` (freed with PQclear).
  explicit Result(PGresult* result);

  std::size_t size() const;
  bool empty() const { return size() == 0; }
  /// Throws std::out_of_range past the last row.
  Row operator[](std::size_t row) const;
  iterator begin() const { return iterator(get(), 0); }
  iterator end() const { return iterator(get(), static_cast<int>(size())); }

  int columns() const;
  std::string_view column_name(int column) const;
  Oid column_type(int column) const;
  /// The column's index, or -1.
  int column_index(std::string_view name) const;

  /// Rows inserted, updated, deleted, selected... by the statement (PQcmdTuples).
  std::uint64_t affected_rows() const;
  /// "INSERT 0 1", "UPDATE 3", "SELECT 2"...
  std::string_view command_tag() const;

  /// The first column of the first row as T: for `SELECT count(*)` and the like.
  template <typename T>
  T scalar() const {
    return (*this)[0][0].template as<T>();
  }

  const PGresult* get() const { return result_.get(); }

 private:
  std::shared_ptr<PGresult> result_;
};

}  // namespace tronada::pg
