#include "cli/bind_address.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <stdexcept>

namespace tronada::cli {
namespace {

// The kernel needs room for the terminating NUL; longer paths would be truncated silently by
// older libuv versions and bind somewhere unexpected.
constexpr size_t kMaxUnixPath = sizeof(sockaddr_un{}.sun_path) - 1;

// Control bytes are escaped so that the message stays one readable line and a NUL does not cut
// it short when read back through what().
std::string quote(std::string_view input) {
  std::string out = "'";
  for (char c : input) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", byte);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "'";
}

[[noreturn]] void fail(std::string_view input, const std::string& reason) {
  throw std::invalid_argument("invalid bind address " + quote(input) + ": " + reason);
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

uint16_t parse_port(std::string_view input, std::string_view port) {
  if (port.empty()) fail(input, "missing port after ':'");
  if (!all_digits(port)) fail(input, "port '" + std::string(port) + "' is not a number");
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    fail(input, "port " + std::string(port) + " is out of range (0-65535)");
  }
  return static_cast<uint16_t>(value);
}

bool is_ipv4(const std::string& host) {
  in_addr addr;
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

// Accepts a scope suffix (`fe80::1%eth0`) because link-local addresses are useless without one
// and libuv's uv_ip6_addr understands it.
bool is_ipv6(const std::string& host) {
  std::string addr_part = host;
  if (auto pct = host.find('%'); pct != std::string::npos) {
    std::string zone = host.substr(pct + 1);
    if (zone.empty() || !std::all_of(zone.begin(), zone.end(), [](char c) {
          return is_alnum(c) || c == '-' || c == '_' || c == '.';
        })) {
      return false;
    }
    addr_part = host.substr(0, pct);
  }
  in6_addr addr;
  return inet_pton(AF_INET6, addr_part.c_str(), &addr) == 1;
}

// RFC 1123 host names, plus `_` because container and compose service names use it and the
// resolver accepts it.
bool is_host_name(std::string_view host) {
  if (host.back() == '.') host.remove_suffix(1);  // a fully qualified name may end in a dot
  if (host.empty() || host.size() > 253) return false;
  size_t start = 0;
  while (start <= host.size()) {
    size_t dot = host.find('.', start);
    if (dot == std::string_view::npos) dot = host.size();
    std::string_view label = host.substr(start, dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!is_alnum(c) && c != '-' && c != '_') return false;
    }
    start = dot + 1;
  }
  return true;
}

void check_host(std::string_view input, const std::string& host) {
  // Anything made of digits and dots is meant as an IPv4 literal, so `1.2.3` or `256.0.0.1`
  // must not slip through as a host name for the resolver to interpret.
  bool looks_ipv4 =
      std::all_of(host.begin(), host.end(), [](char c) { return is_digit(c) || c == '.'; });
  if (looks_ipv4) {
    if (!is_ipv4(host)) fail(input, "'" + host + "' is not a valid IPv4 address");
    return;
  }
  if (!is_host_name(host)) fail(input, "'" + host + "' is not a valid host name or IP address");
}

}  // namespace

std::string BindAddress::to_string() const {
  if (kind == Kind::unix_socket) {
    // `unix://` would eat two leading slashes on the way back in.
    return (path.starts_with("//") ? "unix://" : "unix:") + path;
  }
  std::string port_text = std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port_text;
  // The host name `unix` would read back as a socket path (found by
  // tests/fuzz/bind_address_fuzz); gunicorn's tcp:// prefix keeps it a host.
  if (host == "unix") return "tcp://" + host + ":" + port_text;
  return host + ":" + port_text;
}

BindAddress parse_bind_address(std::string_view text) {
  const std::string_view input = text;
  if (text.empty()) fail(input, "address is empty");

  BindAddress addr;
  if (text.starts_with("unix:")) {
    text.remove_prefix(5);
    if (text.starts_with("//")) text.remove_prefix(2);
    if (text.empty()) fail(input, "unix socket path is empty");
    if (text.find('\0') != std::string_view::npos) fail(input, "unix socket path contains NUL");
    if (text.size() > kMaxUnixPath) {
      fail(input, "unix socket path is " + std::to_string(text.size()) +
                      " bytes, longer than the " + std::to_string(kMaxUnixPath) +
                      " the kernel allows");
    }
    addr.kind = BindAddress::Kind::unix_socket;
    addr.path = std::string(text);
    return addr;
  }

  if (text.starts_with("tcp://")) {
    text.remove_prefix(6);
    if (text.empty()) fail(input, "address is empty after 'tcp://'");
  }

  if (text.find("://") != std::string_view::npos) {
    fail(input, "not a URL; only the 'tcp://' and 'unix:' prefixes are understood");
  }

  addr.kind = BindAddress::Kind::tcp;
  addr.port = kDefaultPort;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) fail(input, "'[' without a matching ']'");
    addr.host = std::string(text.substr(1, close - 1));
    if (addr.host.empty()) fail(input, "empty IPv6 address between '[' and ']'");
    if (addr.host.find_first_of("[]") != std::string::npos) fail(input, "unbalanced brackets");
    if (!is_ipv6(addr.host)) fail(input, "'" + addr.host + "' is not a valid IPv6 address");
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        fail(input, "unexpected '" + std::string(rest) + "' after ']' (expected ':PORT')");
      }
      addr.port = parse_port(input, rest.substr(1));
    }
    return addr;
  }

  if (text.find_first_of("[]") != std::string_view::npos) fail(input, "unbalanced brackets");
  size_t colons = std::count(text.begin(), text.end(), ':');
  if (colons > 1) {
    fail(input, "an IPv6 address must be written in brackets, as in '[::1]:" +
                    std::to_string(kDefaultPort) + "'");
  }
  if (colons == 1) {
    size_t colon = text.find(':');
    addr.host = std::string(text.substr(0, colon));
    addr.port = parse_port(input, text.substr(colon + 1));
  } else {
    if (all_digits(text)) {
      fail(input, "a bare number is not a host; did you mean ':" + std::string(text) + "'?");
    }
    addr.host = std::string(text);
  }
  if (addr.host == "*") addr.host.clear();  // nginx's spelling of every interface
  if (!addr.host.empty()) check_host(input, addr.host);
  return addr;
}

}  // namespace tronada::cli
