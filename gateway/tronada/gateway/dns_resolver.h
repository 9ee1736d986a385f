// DnsResolver: asynchronous DNS lookups on the IOLoop with c-ares, giving each answer's
// TTL (getaddrinfo does not), for upstreams that are looked up again and again.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tronada/loop/io_loop.h"

namespace tronada {

/// The outcome of one lookup: the addresses (numeric, "10.0.0.7" or "fd00::7") and
/// their TTL (the shortest of the records'; none for a TTL of 0 and for /etc/hosts
/// answers, which carry none), or an error.
struct DnsAnswer {
  std::vector<std::string> addresses;
  std::optional<Duration> ttl;
  /// Non-empty: the lookup failed ("connection refused", "domain name not found"...).
  std::string error;
};

/// Looks names up with c-ares, its sockets watched by the loop (IOLoop::add_handler) and
/// its retransmissions driven by one loop timeout set from ares_timeout(). Nothing
/// blocks: c-ares reads resolv.conf and /etc/hosts when the channel is made (at the
/// first lookup), like getaddrinfo would on every call.
///
/// `servers` picks the DNS servers, as nginx's `resolver` directive:
/// "127.0.0.1:5353", "10.0.0.2,10.0.0.3:53", "[fd00::53]:53"; empty means the system's
/// (/etc/resolv.conf). Names are looked up in /etc/hosts first either way, as
/// getaddrinfo does.
///
/// Lifetime: owned by shared_ptr; lookups in flight hold it weakly, and their
/// callbacks run on the loop thread only while it lives. close() (or the destructor)
/// destroys the c-ares channel, which removes its fd handlers; pending lookups are then
/// dropped without their callback. The loop owns the uv_poll handles (add_handler) and
/// the timer, so this class holds no libuv handle of its own. Use it on one loop thread.
class DnsResolver : public std::enable_shared_from_this<DnsResolver> {
 public:
  using Callback = std::function<void(DnsAnswer)>;

  /// Throws std::invalid_argument for a malformed `servers` list (checked again, with
  /// c-ares's own parser, when the channel is made).
  static std::shared_ptr<DnsResolver> create(std::string servers = "", IOLoop* loop = nullptr);
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  /// Looks `name` up (A and AAAA). `callback` runs later on the loop, never inside this
  /// call, with the answer or the error. Lookups time out after c-ares's per-try
  /// timeout (2 s) times its tries (2) per server.
  void resolve(const std::string& name, Callback callback);
  /// Drops pending lookups (no callbacks) and releases the channel. Idempotent; safe from
  /// a lookup's callback (those run from the loop, outside c-ares).
  void close();

  const std::string& servers() const { return servers_; }

  /// Checks a servers list as create() does; throws std::invalid_argument.
  static void validate_servers(const std::string& servers);
  /// True for an IPv4 or IPv6 address literal (no brackets): nothing to look up.
  static bool is_address_literal(const std::string& host);

 private:
  struct Channel;
  DnsResolver(std::string servers, IOLoop& loop);
  void open();
  void watch_socket(int fd, bool readable, bool writable);
  void process(int read_fd, int write_fd);
  void schedule_timeout();

  std::string servers_;
  IOLoop& loop_;
  std::unique_ptr<Channel> channel_;
  std::vector<int> watched_;  // fds with a loop handler
  TimeoutHandle timer_;
  bool closed_ = false;
};

}  // namespace tronada
