#include "cli/rate_limit_options.h"

#include <charconv>
#include <stdexcept>

namespace tronada::cli {

RateStoreAddress parse_rate_store(std::string_view store) {
  RateStoreAddress a;
  if (store == "memory") return a;
  constexpr std::string_view scheme = "redis://";
  if (!store.starts_with(scheme)) {
    throw std::invalid_argument("store must be \"memory\" or \"redis://HOST:PORT\", not '" +
                                std::string(store) + "'");
  }
  std::string_view rest = store.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  a.redis = true;
  std::string_view host = rest;
  std::string_view port;
  if (rest.starts_with('[')) {
    auto close = rest.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("store: unclosed '['");
    host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (rest.starts_with(':'))
      port = rest.substr(1);
    else if (!rest.empty())
      throw std::invalid_argument("store: junk after ']'");
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty() || host.find_first_of("/@?") != std::string_view::npos) {
    throw std::invalid_argument("store: '" + std::string(store) +
                                "' is not redis://HOST:PORT (no path, user or password)");
  }
  a.host = std::string(host);
  if (!port.empty()) {
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), a.port);
    if (ec != std::errc() || end != port.data() + port.size() || a.port < 1 || a.port > 65535) {
      throw std::invalid_argument("store: bad port '" + std::string(port) + "'");
    }
  }
  return a;
}

void check_rate_key(std::string_view key) {
  if (key == "remote_ip") return;
  if (key.starts_with("header:") && key.size() > 7 &&
      key.find_first_of(" \t:", 7) == std::string_view::npos) {
    return;
  }
  throw std::invalid_argument("key must be \"remote_ip\" or \"header:NAME\", not '" +
                              std::string(key) + "'");
}

}  // namespace tronada::cli
