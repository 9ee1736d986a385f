#include "tronada/db/pg_result.h"

#include <libpq-fe.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <stdexcept>

namespace tronada::pg {
namespace detail {
namespace {}  // namespace

std::string Where::str() const {
  return "column \"" + std::string(column) + "\" of row " + std::to_string(row);
}

namespace {

[[noreturn]] void throw_bad(std::string_view text, const Where& what, const char* type) {
  std::string shown(text.substr(0, 64));
  throw ConversionError(what.str() + ": \"" + shown + "\" is not a valid " + type);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads exactly `n` digits at `pos`, advancing it.
bool read_digits(std::string_view text, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > text.size()) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += n;
  return true;
}

}  // namespace

void throw_null(const Where& what) {
  throw ConversionError(what.str() + " is NULL (read it as a std::optional)");
}

void throw_range(std::string_view text, const Where& what) {
  throw ConversionError(what.str() + ": " + std::string(text.substr(0, 64)) +
                        " is out of range for the requested type");
}

void decode(std::string_view text, bool& out, const Where& what) {
  if (text == "t" || text == "true") {
    out = true;
  } else if (text == "f" || text == "false") {
    out = false;
  } else {
    throw_bad(text, what, "bool");
  }
}

void decode(std::string_view text, long long& out, const Where& what) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec == std::errc::result_out_of_range) throw_range(text, what);
  if (ec != std::errc() || end != text.data() + text.size()) throw_bad(text, what, "integer");
}

void decode(std::string_view text, unsigned long long& out, const Where& what) {
  if (!text.empty() && text[0] == '-') throw_range(text, what);
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec == std::errc::result_out_of_range) throw_range(text, what);
  if (ec != std::errc() || end != text.data() + text.size()) throw_bad(text, what, "integer");
}

void decode(std::string_view text, double& out, const Where& what) {
  if (text == "NaN") {
    out = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  if (text == "Infinity" || text == "-Infinity") {
    out = text[0] == '-' ? -std::numeric_limits<double>::infinity()
                         : std::numeric_limits<double>::infinity();
    return;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || end != text.data() + text.size()) throw_bad(text, what, "number");
}

void decode(std::string_view text, Bytea& out, const Where& what) {
  // bytea_output = hex (the default since PostgreSQL 9.0): "\x" then two digits a byte.
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) {
    throw_bad(text, what, "bytea in hex format");
  }
  out.data.clear();
  out.data.reserve((text.size() - 2) / 2);
  for (std::size_t i = 2; i < text.size(); i += 2) {
    int hi = hex_digit(text[i]);
    int lo = hex_digit(text[i + 1]);
    if (hi < 0 || lo < 0) throw_bad(text, what, "bytea in hex format");
    out.data.push_back(static_cast<char>(hi * 16 + lo));
  }
}

void decode(std::string_view text, Timestamp& out, const Where& what) {
  // ISO DateStyle (the default): "2024-05-06 07:08:09[.123456][+HH[:MM[:SS]]]". A
  // timestamp without time zone is taken as UTC.
  using namespace std::chrono;
  std::size_t pos = 0;
  int y, mo, d, h, mi, s;
  bool ok = read_digits(text, pos, 4, y) && pos < text.size() && text[pos++] == '-' &&
            read_digits(text, pos, 2, mo) && pos < text.size() && text[pos++] == '-' &&
            read_digits(text, pos, 2, d) && pos < text.size() && text[pos++] == ' ' &&
            read_digits(text, pos, 2, h) && pos < text.size() && text[pos++] == ':' &&
            read_digits(text, pos, 2, mi) && pos < text.size() && text[pos++] == ':' &&
            read_digits(text, pos, 2, s);
  if (!ok) throw_bad(text, what, "timestamp (ISO, years 1000-9999)");
  long long micros = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 6) micros = micros * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    for (; digits < 6; ++digits) micros *= 10;
  }
  long long offset = 0;
  if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int sign = text[pos++] == '-' ? -1 : 1;
    int oh = 0, om = 0, os = 0;
    if (!read_digits(text, pos, 2, oh)) throw_bad(text, what, "timestamp offset");
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      if (!read_digits(text, pos, 2, om)) throw_bad(text, what, "timestamp offset");
      if (pos < text.size() && text[pos] == ':') {
        ++pos;
        if (!read_digits(text, pos, 2, os)) throw_bad(text, what, "timestamp offset");
      }
    }
    offset = sign * (oh * 3600LL + om * 60LL + os);
  }
  if (pos != text.size()) throw_bad(text, what, "timestamp (ISO, years 1000-9999)");
  year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
  if (!ymd.ok()) throw_bad(text, what, "date");
  out = Timestamp(duration_cast<microseconds>(sys_days(ymd).time_since_epoch()) + hours(h) +
                  minutes(mi) + seconds(s) + microseconds(micros) - seconds(offset));
}

std::vector<std::optional<std::string>> split_array(std::string_view text, const Where& what) {
  // One-dimensional array output: {a,"b c",NULL,"with \"quote\""}; the delimiter is ','
  // for every type this client reads (only box uses ';').
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') {
    throw_bad(text, what, "one-dimensional array");
  }
  std::vector<std::optional<std::string>> out;
  std::size_t pos = 1;
  const std::size_t end = text.size() - 1;
  if (pos == end) return out;
  while (true) {
    std::string element;
    bool quoted = false;
    if (text[pos] == '"') {
      quoted = true;
      ++pos;
      while (pos < end && text[pos] != '"') {
        if (text[pos] == '\\' && pos + 1 < end) ++pos;
        element += text[pos++];
      }
      if (pos >= end) throw_bad(text, what, "array literal");
      ++pos;
    } else {
      while (pos < end && text[pos] != ',') {
        if (text[pos] == '{') throw_bad(text, what, "one-dimensional array");
        element += text[pos++];
      }
    }
    if (!quoted && element == "NULL") {
      out.emplace_back(std::nullopt);
    } else {
      out.emplace_back(std::move(element));
    }
    if (pos == end) break;
    if (text[pos] != ',') throw_bad(text, what, "array literal");
    ++pos;
  }
  return out;
}

}  // namespace detail

bool Field::is_null() const {
  return PQgetisnull(result_, row_, column_) != 0;
}

std::string_view Field::text() const {
  return std::string_view(PQgetvalue(result_, row_, column_),
                          static_cast<std::size_t>(PQgetlength(result_, row_, column_)));
}

Oid Field::type() const {
  return PQftype(result_, column_);
}

std::string_view Field::name() const {
  return PQfname(result_, column_);
}

std::size_t Row::size() const {
  return static_cast<std::size_t>(PQnfields(result_));
}

Field Row::operator[](int column) const {
  if (column < 0 || column >= PQnfields(result_)) {
    throw std::out_of_range("pg::Row: no column " + std::to_string(column));
  }
  return Field(result_, row_, column);
}

Field Row::operator[](std::string_view name) const {
  // PQfnumber would fold case and parse quotes; result column names are matched as is.
  for (int i = 0, n = PQnfields(result_); i < n; ++i) {
    if (name == PQfname(result_, i)) return Field(result_, row_, i);
  }
  throw std::out_of_range("pg::Row: no column \"" + std::string(name) + "\"");
}

Result::Result(PGresult* result) : result_(result, PQclear) {}

std::size_t Result::size() const {
  return result_ ? static_cast<std::size_t>(PQntuples(result_.get())) : 0;
}

Row Result::operator[](std::size_t row) const {
  if (row >= size()) throw std::out_of_range("pg::Result: no row " + std::to_string(row));
  return Row(result_.get(), static_cast<int>(row));
}

int Result::columns() const {
  return result_ ? PQnfields(result_.get()) : 0;
}

std::string_view Result::column_name(int column) const {
  const char* name = result_ ? PQfname(result_.get(), column) : nullptr;
  if (!name) throw std::out_of_range("pg::Result: no column " + std::to_string(column));
  return name;
}

Oid Result::column_type(int column) const {
  if (column < 0 || column >= columns()) {
    throw std::out_of_range("pg::Result: no column " + std::to_string(column));
  }
  return PQftype(result_.get(), column);
}

int Result::column_index(std::string_view name) const {
  for (int i = 0, n = columns(); i < n; ++i) {
    if (name == PQfname(result_.get(), i)) return i;
  }
  return -1;
}

std::uint64_t Result::affected_rows() const {
  if (!result_) return 0;
  const char* n = PQcmdTuples(result_.get());
  return (n && *n) ? std::strtoull(n, nullptr, 10) : 0;
}

std::string_view Result::command_tag() const {
  return result_ ? PQcmdStatus(result_.get()) : "";
}

}  // namespace tronada::pg
