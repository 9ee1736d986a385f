// Query parameters for the PostgreSQL client: C++ values encoded for PQsendQueryParams.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace tronada::pg {

/// A PostgreSQL type OID (libpq's Oid, an unsigned int).
using Oid = unsigned int;

/// The type OIDs the client sends and checks (from the server's pg_type catalogue).
namespace oid {
inline constexpr Oid unknown = 0;  // let the server infer the type from the statement
inline constexpr Oid bool_ = 16;
inline constexpr Oid bytea = 17;
inline constexpr Oid int8 = 20;
inline constexpr Oid int2 = 21;
inline constexpr Oid int4 = 23;
inline constexpr Oid text = 25;
inline constexpr Oid json = 114;
inline constexpr Oid float4 = 700;
inline constexpr Oid float8 = 701;
inline constexpr Oid varchar = 1043;
inline constexpr Oid timestamp = 1114;
inline constexpr Oid timestamptz = 1184;
inline constexpr Oid numeric = 1700;
inline constexpr Oid bool_array = 1000;
inline constexpr Oid int2_array = 1005;
inline constexpr Oid int4_array = 1007;
inline constexpr Oid text_array = 1009;
inline constexpr Oid int8_array = 1016;
inline constexpr Oid float4_array = 1021;
inline constexpr Oid float8_array = 1022;
inline constexpr Oid jsonb = 3802;
}  // namespace oid

/// Binary data for a bytea parameter or column (any bytes, NULs included).
struct Bytea {
  std::string data;
  bool operator==(const Bytea&) const = default;
};

/// A UTC instant, sent as timestamptz.
using Timestamp = std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds>;

template <typename T>
concept Integer =
    std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char> &&
    !std::same_as<T, signed char> && !std::same_as<T, unsigned char> && !std::same_as<T, char8_t> &&
    !std::same_as<T, char16_t> && !std::same_as<T, char32_t> && !std::same_as<T, wchar_t>;

/// One parameter of a statement, already encoded: the values travel apart from the SQL
/// text (PQsendQueryParams), so no value is ever spliced into a statement.
///
/// Mapping: nullptr / std::nullopt / an empty std::optional -> NULL; bool -> bool;
/// integers -> int2, int4 or int8 by size (uint64 above INT64_MAX -> numeric); float ->
/// float4; double -> float8; strings -> untyped text (the server infers the column's
/// type, so a string fits a date, uuid or json column too); Bytea -> bytea (binary
/// format); Timestamp / system_clock::time_point -> timestamptz; std::vector of any of
/// these -> a one-dimensional array.
class Param {
 public:
  Param(std::nullptr_t) {}
  Param(std::nullopt_t) {}
  Param(bool v) : type_(oid::bool_), text_(v ? "t" : "f"), null_(false) {}
  template <Integer T>
  Param(T v) : type_(integer_oid<T>(v)), text_(std::to_string(v)), null_(false) {}
  Param(float v);
  Param(double v);
  Param(std::string v) : text_(std::move(v)), null_(false) {}
  Param(std::string_view v) : text_(v), null_(false) {}
  Param(const char* v) : text_(v ? v : ""), null_(v == nullptr) {}
  Param(Bytea v) : type_(oid::bytea), text_(std::move(v.data)), null_(false), binary_(true) {}
  Param(Timestamp v);
  template <typename Rep, typename Period>
  Param(std::chrono::time_point<std::chrono::system_clock, std::chrono::duration<Rep, Period>> v)
      : Param(std::chrono::time_point_cast<std::chrono::microseconds>(v)) {}
  template <typename T>
  Param(const std::optional<T>& v) : Param(v ? Param(*v) : Param(nullptr)) {}
  template <typename T>
  Param(const std::vector<T>& values) : null_(false) {
    std::vector<Param> elements;
    elements.reserve(values.size());
    for (const auto& v : values) elements.emplace_back(v);
    encode_array(elements, array_oid(element_type<T>()));
  }

  bool is_null() const { return null_; }
  Oid type() const { return type_; }
  bool binary() const { return binary_; }
  /// The encoded value: text format, or raw bytes when binary().
  const std::string& value() const { return text_; }

 private:
  template <typename T>
  static constexpr Oid integer_oid(T v) {
    if constexpr (sizeof(T) <= 2 && std::is_signed_v<T>) return oid::int2;
    if constexpr (sizeof(T) <= 2 || (sizeof(T) == 4 && std::is_signed_v<T>)) return oid::int4;
    if constexpr (std::is_signed_v<T> || sizeof(T) < 8) return oid::int8;
    return v > static_cast<T>(INT64_MAX) ? oid::numeric : oid::int8;
  }
  template <typename T>
  static Oid element_type() {
    if constexpr (requires(T v) {
                    v.has_value();
                    *v;
                  }) {
      return element_type<std::remove_cvref_t<decltype(*std::declval<T>())>>();
    } else {
      return Param(T{}).type_;
    }
  }
  static Oid array_oid(Oid element);
  void encode_array(const std::vector<Param>& elements, Oid array_type);

  Oid type_ = oid::unknown;
  std::string text_;
  bool null_ = true;
  bool binary_ = false;
};

using Params = std::vector<Param>;

}  // namespace tronada::pg
