#include "tronada/web/routing.h"

#include <stdexcept>

namespace tronada {

namespace {

bool is_regex_special(char c) {
  switch (c) {
    case '.':
    case '*':
    case '+':
    case '?':
    case '(':
    case ')':
    case '[':
    case ']':
    case '{':
    case '}':
    case '|':
    case '\\':
    case '^':
    case '$':
      return true;
    default:
      return false;
  }
}

// Python's `(?P<name>...)` is not ECMAScript: rewrite it to a plain group and remember
// the name by group index. Also counts capture groups.
std::string translate_named_groups(const std::string& pattern, std::vector<std::string>& names) {
  std::string out;
  out.reserve(pattern.size());
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      out += c;
      out += pattern[++i];
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      continue;
    }
    if (c == '(') {
      if (pattern.compare(i, 4, "(?P<") == 0) {
        auto close = pattern.find('>', i + 4);
        if (close == std::string::npos)
          throw std::invalid_argument("bad named group in " + pattern);
        names.push_back(pattern.substr(i + 4, close - i - 4));
        out += '(';
        i = close;
        continue;
      }
      if (i + 1 < pattern.size() && pattern[i + 1] == '?') {
        out += c;  // non-capturing or lookaround
        continue;
      }
      names.emplace_back();
    }
    out += c;
  }
  return out;
}

std::string_view strip_anchors(std::string_view p) {
  if (!p.empty() && p.front() == '^') p.remove_prefix(1);
  if (!p.empty() && p.back() == '$' && (p.size() < 2 || p[p.size() - 2] != '\\')) {
    p.remove_suffix(1);
  }
  return p;
}

}  // namespace

Rule::Rule(std::string pattern, HandlerFactory factory, std::string name)
    : pattern_(std::move(pattern)), name_(std::move(name)), factory_(std::move(factory)) {
  if (!factory_) throw std::invalid_argument("rule " + pattern_ + " has no handler");
  std::string_view body = strip_anchors(pattern_);
  std::string translated = translate_named_groups(std::string(body), group_names_);
  regex_ = std::regex(translated, std::regex::ECMAScript | std::regex::optimize);

  // Literal text up to the first regex syntax: most rules ("/api/users/([0-9]+)") can be
  // rejected by a string compare before the regex engine runs.
  is_literal_ = true;
  std::size_t literal_end = body.size();
  for (std::size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '\\' && i + 1 < body.size() &&
        !std::isalnum(static_cast<unsigned char>(body[i + 1]))) {
      prefix_ += body[++i];
      continue;
    }
    if (is_regex_special(c)) {
      is_literal_ = false;
      literal_end = i;
      break;
    }
    prefix_ += c;
  }
  if (is_literal_) literal_ = prefix_;
  // The shapes a path prefix takes (`tronada serve` routes, the gateways' mounts, the
  // catch-all `/.*` of `tronada proxy` and `fastcgi`):
  // matched by the prefix compare alone, without the regex engine, which cost a proxied
  // request about 1,300 instructions.
  std::string_view rest = body.substr(literal_end);
  if (rest == ".*") {
    tail_ = Tail::any;
  } else if (rest == "(.*)") {
    tail_ = Tail::rest;
  } else if (rest == "(?:/(.*))?") {
    tail_ = Tail::slash_rest;
  }

  // Reverse template: literal pieces between top-level groups. Patterns whose literal
  // parts have other regex syntax cannot be reversed (as in Tornado).
  std::string piece;
  int depth = 0;
  for (std::size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '\\' && i + 1 < body.size()) {
      if (depth == 0) piece += body[i + 1];
      ++i;
      continue;
    }
    if (c == '(') {
      if (depth == 0) {
        reverse_pieces_.push_back(piece);
        piece.clear();
      }
      ++depth;
      continue;
    }
    if (c == ')') {
      --depth;
      continue;
    }
    if (depth == 0) {
      if (is_regex_special(c)) reversible_ = false;
      piece += c;
    }
  }
  reverse_pieces_.push_back(piece);
}

std::optional<Rule::Match> Rule::match(std::string_view path) const {
  if (is_literal_) {
    if (path != literal_) return std::nullopt;
    return Match{};
  }
  if (path.substr(0, prefix_.size()) != prefix_) return std::nullopt;
  if (tail_ != Tail::regex) return match_tail(path.substr(prefix_.size()));
  std::cmatch m;
  if (!std::regex_match(path.data(), path.data() + path.size(), m, regex_)) return std::nullopt;
  Match out;
  for (std::size_t i = 1; i < m.size(); ++i) {
    std::string value = m[i].matched ? m[i].str() : std::string();
    const std::string* name = i - 1 < group_names_.size() ? &group_names_[i - 1] : nullptr;
    if (name && !name->empty()) {
      out.kwargs.emplace_back(*name, std::move(value));
    } else {
      out.args.push_back(std::move(value));
    }
  }
  // Tornado passes only kwargs when any group is named.
  if (!out.kwargs.empty()) out.args.clear();
  return out;
}

std::optional<Rule::Match> Rule::match_tail(std::string_view rest) const {
  Match out;
  if (tail_ == Tail::slash_rest) {
    if (rest.empty()) {
      out.args.emplace_back();  // the optional group did not take part
      return out;
    }
    if (rest.front() != '/') return std::nullopt;
    rest.remove_prefix(1);
  }
  // As the regex's `.`: anything but a line terminator.
  if (rest.find_first_of("\r\n") != std::string_view::npos) return std::nullopt;
  if (tail_ != Tail::any) out.args.emplace_back(rest);
  return out;
}

std::string Rule::reverse(const std::vector<std::string>& args) const {
  if (!reversible_) throw std::invalid_argument("cannot reverse pattern " + pattern_);
  if (args.size() + 1 != reverse_pieces_.size()) {
    throw std::invalid_argument("pattern " + pattern_ + " takes " +
                                std::to_string(reverse_pieces_.size() - 1) + " argument(s)");
  }
  std::string out = reverse_pieces_[0];
  for (std::size_t i = 0; i < args.size(); ++i) {
    out += args[i];
    out += reverse_pieces_[i + 1];
  }
  return out;
}

void Router::add(Rule rule, std::string_view host_pattern) {
  for (auto& h : hosts_) {
    if (h.pattern == host_pattern) {
      h.rules.push_back(std::make_unique<Rule>(std::move(rule)));
      return;
    }
  }
  HostGroup group;
  group.pattern = std::string(host_pattern);
  group.any = host_pattern == ".*" || host_pattern.empty();
  if (!group.any)
    group.regex = std::regex(group.pattern, std::regex::ECMAScript | std::regex::icase);
  group.rules.push_back(std::make_unique<Rule>(std::move(rule)));
  // Specific hosts are tried before the catch-all, whatever the order they came in.
  if (group.any) {
    hosts_.push_back(std::move(group));
  } else {
    auto it = hosts_.begin();
    while (it != hosts_.end() && !it->any) ++it;
    hosts_.insert(it, std::move(group));
  }
}

void Router::add(std::vector<Rule> rules, std::string_view host_pattern) {
  for (auto& r : rules) add(std::move(r), host_pattern);
}

std::optional<Router::Found> Router::find(std::string_view host, std::string_view path) const {
  for (const auto& h : hosts_) {
    if (!h.any && !std::regex_match(host.begin(), host.end(), h.regex)) continue;
    for (const auto& rule : h.rules) {
      if (auto m = rule->match(path)) return Found{rule.get(), std::move(*m)};
    }
    return std::nullopt;  // the first matching host group decides, as in Tornado
  }
  return std::nullopt;
}

std::string Router::reverse_url(std::string_view name, const std::vector<std::string>& args) const {
  for (const auto& h : hosts_) {
    for (const auto& rule : h.rules) {
      if (rule->name() == name) return rule->reverse(args);
    }
  }
  throw std::out_of_range("no route named " + std::string(name));
}

std::size_t Router::size() const {
  std::size_t n = 0;
  for (const auto& h : hosts_) n += h.rules.size();
  return n;
}

}  // namespace tronada
