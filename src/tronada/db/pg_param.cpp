#include "tronada/db/pg_param.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace tronada::pg {
namespace {

template <typename F>
std::string format_float(F v) {
  // The server's own spellings: to_chars would write "inf" and "nan".
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest exact round trip
  (void)ec;
  return std::string(buf, end);
}

}  // namespace

Param::Param(float v) : type_(oid::float4), text_(format_float(v)), null_(false) {}
Param::Param(double v) : type_(oid::float8), text_(format_float(v)), null_(false) {}

Param::Param(Timestamp v) : type_(oid::timestamptz), null_(false) {
  using namespace std::chrono;
  auto day = floor<days>(v);
  year_month_day ymd{sys_days(day)};
  auto in_day = v - day;
  hh_mm_ss<microseconds> hms{duration_cast<microseconds>(in_day)};
  int year = static_cast<int>(ymd.year());
  if (year < 1 || year > 9999) throw std::out_of_range("pg::Param: timestamp outside years 1-9999");
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02lld:%02lld:%02lld.%06lld+00", year,
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<long long>(hms.hours().count()),
                static_cast<long long>(hms.minutes().count()),
                static_cast<long long>(hms.seconds().count()),
                static_cast<long long>(hms.subseconds().count()));
  text_ = buf;
}

Oid Param::array_oid(Oid element) {
  switch (element) {
    case oid::bool_:
      return oid::bool_array;
    case oid::int2:
      return oid::int2_array;
    case oid::int4:
      return oid::int4_array;
    case oid::int8:
      return oid::int8_array;
    case oid::float4:
      return oid::float4_array;
    case oid::float8:
      return oid::float8_array;
    case oid::unknown:
      return oid::text_array;
    default:
      throw std::invalid_argument("pg::Param: no array type for this element type");
  }
}

void Param::encode_array(const std::vector<Param>& elements, Oid array_type) {
  // Array literal syntax: every element double-quoted, so commas, braces, spaces and the
  // word NULL inside strings stay data; only quote and backslash need escaping.
  type_ = array_type;
  text_ = "{";
  for (std::size_t i = 0; i < elements.size(); ++i) {
    if (i) text_ += ',';
    if (elements[i].is_null()) {
      text_ += "NULL";
      continue;
    }
    text_ += '"';
    for (char c : elements[i].value()) {
      if (c == '"' || c == '\\') text_ += '\\';
      text_ += c;
    }
    text_ += '"';
  }
  text_ += '}';
}

}  // namespace tronada::pg
