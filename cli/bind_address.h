// Listening addresses as written on the command line and in the config (`-b/--bind`, `bind`).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tronada::cli {

/// Port used when an address names a host but no port (`localhost`, `[::1]`).
inline constexpr uint16_t kDefaultPort = 8888;

/// One place to listen: a TCP host and port, or a Unix domain socket path.
///
/// Accepted forms (gunicorn's `--bind` syntax, plus Caddy's and nginx's spellings of "every
/// interface"):
///
/// | input                     | kind        | host          | port  | path       |
/// | ------------------------- | ----------- | ------------- | ----- | ---------- |
/// | `127.0.0.1:8000`          | tcp         | `127.0.0.1`   | 8000  |            |
/// | `localhost:8000`          | tcp         | `localhost`   | 8000  |            |
/// | `[::1]:8000`              | tcp         | `::1`         | 8000  |            |
/// | `[fe80::1%eth0]:8000`     | tcp         | `fe80::1%eth0`| 8000  |            |
/// | `:8000`, `*:8000`         | tcp         | empty         | 8000  |            |
/// | `localhost`, `[::1]`      | tcp         | as written    | 8888  |            |
/// | `tcp://HOST:PORT`         | as without the prefix (gunicorn accepts it)            |
/// | `unix:/run/t.sock`        | unix_socket |               |       | `/run/t.sock` |
/// | `unix:///run/t.sock`      | unix_socket |               |       | `/run/t.sock` |
///
/// An empty host means every interface. gunicorn binds `:PORT` to 0.0.0.0 (IPv4 only); Caddy
/// binds it dual-stack, IPv4 and IPv6. We follow Caddy, the superset: the net layer should bind
/// `[::]` with IPV6_V6ONLY off and fall back to 0.0.0.0 where IPv6 is unavailable. `0.0.0.0:PORT`
/// and `[::]:PORT` still select one family explicitly.
///
/// Port 0 is allowed and means "let the kernel pick" (tests use it). A bare number such as `8000`
/// is rejected rather than read as a host name, because it is almost always a forgotten colon.
/// As in gunicorn, `unix://` strips both slashes, so `unix://run/t.sock` is the relative path
/// `run/t.sock`.
struct BindAddress {
  enum class Kind { tcp, unix_socket };

  Kind kind = Kind::tcp;
  std::string host;  // IP literal (IPv6 without brackets) or host name; empty = every interface
  uint16_t port = 0;
  std::string path;  // Unix socket path, only for Kind::unix_socket

  /// The canonical spelling, which parse_bind_address reads back to an equal value:
  /// `HOST:PORT`, `[V6]:PORT`, `:PORT` or `unix:PATH`.
  std::string to_string() const;

  friend bool operator==(const BindAddress&, const BindAddress&) = default;
};

/// Parses one address in any form listed on BindAddress. IP literals are checked with
/// inet_pton; other hosts must be syntactically valid host names and are resolved later.
/// Throws std::invalid_argument with a message that quotes the input and says what is wrong.
BindAddress parse_bind_address(std::string_view text);

}  // namespace tronada::cli
