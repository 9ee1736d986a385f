// URL routing: rules of regex path patterns mapped to handler factories, grouped by
// host, with reverse_url (Tornado's URLSpec and its router).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tronada {

namespace metrics {
struct RouteSeries;
}  // namespace metrics

class RequestHandler;
using HandlerFactory = std::function<std::unique_ptr<RequestHandler>()>;

namespace detail {
template <typename H, typename... Args>
concept HasInitialize = requires(H& h, Args&... args) {
  h.initialize(args...);
};
}  // namespace detail

/// A factory for handler type H. The arguments are stored in the rule and passed to
/// `H::initialize(args...)` for every request, as Tornado passes a rule's kwargs to
/// `initialize(**kwargs)`; without an initialize they are passed to H's constructor.
template <typename H, typename... Args>
HandlerFactory handler(Args... args) {
  return [... args = std::move(args)]() -> std::unique_ptr<RequestHandler> {
    if constexpr (detail::HasInitialize<H, const Args...>) {
      auto h = std::make_unique<H>();
      h->initialize(args...);
      return h;
    } else {
      return std::make_unique<H>(args...);
    }
  };
}

/// One route: a path pattern (an ECMAScript regex matched against the whole path, with
/// Python-style named groups `(?P<name>...)` allowed), the handler factory, and an
/// optional name for reverse_url. Positional groups become path_args, named groups
/// path_kwargs, as in Tornado.
class Rule {
 public:
  Rule(std::string pattern, HandlerFactory factory, std::string name = "");

  const std::string& pattern() const { return pattern_; }
  const std::string& name() const { return name_; }
  const HandlerFactory& factory() const { return factory_; }
  /// Where requests this rule takes are counted (metrics::SharedRegion::series), or
  /// nullptr: not measured. Set before the rule is added to a router.
  metrics::RouteSeries* metrics() const { return metrics_; }
  Rule& set_metrics(metrics::RouteSeries* series) {
    metrics_ = series;
    return *this;
  }

  struct Match {
    std::vector<std::string> args;
    std::vector<std::pair<std::string, std::string>> kwargs;
  };
  /// Matches the whole `path`; nullopt if it does not.
  std::optional<Match> match(std::string_view path) const;
  /// The path for this rule with `args` filled into its groups in order. Throws
  /// std::invalid_argument on a wrong argument count or a pattern too complex to reverse.
  std::string reverse(const std::vector<std::string>& args) const;

 private:
  std::string pattern_;
  std::string name_;
  HandlerFactory factory_;
  metrics::RouteSeries* metrics_ = nullptr;
  std::regex regex_;
  std::vector<std::string> group_names_;  // per capture group; empty for positional
  std::string literal_;                   // the whole pattern when it has no regex syntax
  bool is_literal_ = false;
  std::string prefix_;  // literal text every match starts with: a cheap pre-filter
  // What follows prefix_ when the pattern is a path prefix: `.*`, `(.*)` or
  // `(?:/(.*))?`, matched without the regex; otherwise the regex decides.
  enum class Tail { regex, any, rest, slash_rest };
  Tail tail_ = Tail::regex;
  std::optional<Match> match_tail(std::string_view rest) const;
  // For reverse(): literal pieces around the top-level groups.
  std::vector<std::string> reverse_pieces_;
  bool reversible_ = true;
};

/// Rules grouped by host pattern (a regex matched against the Host without its port;
/// ".*" matches any). The first host group that matches is searched in order; the first
/// rule that matches wins, as in Tornado.
class Router {
 public:
  void add(Rule rule, std::string_view host_pattern = ".*");
  void add(std::vector<Rule> rules, std::string_view host_pattern = ".*");

  struct Found {
    const Rule* rule;
    Rule::Match match;
  };
  std::optional<Found> find(std::string_view host, std::string_view path) const;
  /// The path of the rule named `name`; throws std::out_of_range for an unknown name.
  std::string reverse_url(std::string_view name, const std::vector<std::string>& args) const;
  std::size_t size() const;

 private:
  struct HostGroup {
    std::string pattern;
    std::regex regex;
    bool any;
    std::vector<std::unique_ptr<Rule>> rules;
  };
  std::vector<HostGroup> hosts_;
};

}  // namespace tronada
