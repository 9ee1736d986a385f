#include "tronada/http/form_data.h"

#include <algorithm>

#include "tronada/http/url_codec.h"

namespace tronada {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's unquote_plus: an escape that does not parse stays as it was written.
std::string decode_lenient(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < in.size() && hex_value(in[i + 1]) >= 0 &&
               hex_value(in[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::string decode_component(std::string_view in) {
  // Well-formed input, by far the common case, takes the shared decoder.
  if (auto decoded = url_decode(in, /*plus_as_space=*/true)) return std::move(*decoded);
  return decode_lenient(in);
}

}  // namespace

void QueryArguments::add(std::string name, std::string value) {
  pairs_.emplace_back(std::move(name), std::move(value));
}

void QueryArguments::extend(const QueryArguments& other) {
  // Copy first: `other` may be *this.
  std::vector<value_type> copy = other.pairs_;
  pairs_.insert(pairs_.end(), std::make_move_iterator(copy.begin()),
                std::make_move_iterator(copy.end()));
}

std::optional<std::string_view> QueryArguments::get_first(std::string_view name) const {
  for (const auto& [n, v] : pairs_) {
    if (n == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<std::string_view> QueryArguments::get_last(std::string_view name) const {
  for (auto it = pairs_.rbegin(); it != pairs_.rend(); ++it) {
    if (it->first == name) return std::string_view(it->second);
  }
  return std::nullopt;
}

std::vector<std::string_view> QueryArguments::get_all(std::string_view name) const {
  std::vector<std::string_view> values;
  for (const auto& [n, v] : pairs_) {
    if (n == name) values.emplace_back(v);
  }
  return values;
}

bool QueryArguments::contains(std::string_view name) const {
  return std::any_of(pairs_.begin(), pairs_.end(), [&](const auto& p) { return p.first == name; });
}

std::vector<std::string_view> QueryArguments::names() const {
  std::vector<std::string_view> out;
  for (const auto& [n, v] : pairs_) {
    if (std::find(out.begin(), out.end(), n) == out.end()) out.emplace_back(n);
  }
  return out;
}

QueryArguments parse_query_string(std::string_view text, bool keep_blank, std::size_t max_fields) {
  QueryArguments args;
  if (text.empty()) return args;
  if (max_fields != 0) {
    std::size_t fields = 1 + static_cast<std::size_t>(std::count(text.begin(), text.end(), '&'));
    if (fields > max_fields) {
      throw FormError("too many form fields: " + std::to_string(fields) + " > " +
                      std::to_string(max_fields));
    }
  }
  while (true) {
    std::size_t end = text.find('&');
    std::string_view field = text.substr(0, end);
    if (!field.empty()) {
      std::size_t eq = field.find('=');
      std::string_view name = field.substr(0, eq);
      std::string_view value =
          eq == std::string_view::npos ? std::string_view() : field.substr(eq + 1);
      if (!value.empty() || keep_blank) args.add(decode_component(name), decode_component(value));
    }
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return args;
}

}  // namespace tronada
