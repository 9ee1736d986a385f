#include "tronada/gateway/dns_resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include "tronada/base/log.h"

namespace tronada {

namespace {

/// A lookup in flight: c-ares owns it (through the callback argument) until its callback
/// runs, which it always does, with ARES_EDESTRUCTION when the channel goes first.
struct Query {
  std::weak_ptr<DnsResolver> resolver;
  IOLoop* loop;
  DnsResolver::Callback callback;
};

DnsAnswer answer_from(int status, ares_addrinfo* result) {
  DnsAnswer answer;
  if (status != ARES_SUCCESS) {
    answer.error = ares_strerror(status);
    return answer;
  }
  int ttl = -1;
  for (ares_addrinfo_node* n = result ? result->nodes : nullptr; n; n = n->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* where = nullptr;
    if (n->ai_family == AF_INET) {
      where = &reinterpret_cast<const sockaddr_in*>(n->ai_addr)->sin_addr;
    } else if (n->ai_family == AF_INET6) {
      where = &reinterpret_cast<const sockaddr_in6*>(n->ai_addr)->sin6_addr;
    } else {
      continue;
    }
    if (!inet_ntop(n->ai_family, where, text, sizeof text)) continue;
    answer.addresses.emplace_back(text);
    if (n->ai_ttl > 0) ttl = ttl < 0 ? n->ai_ttl : std::min(ttl, n->ai_ttl);
  }
  for (ares_addrinfo_cname* c = result ? result->cnames : nullptr; c; c = c->next) {
    if (c->ttl > 0) ttl = ttl < 0 ? c->ttl : std::min(ttl, c->ttl);
  }
  if (ttl > 0) answer.ttl = std::chrono::seconds(ttl);
  return answer;
}

void on_addrinfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) noexcept {
  auto* query = static_cast<Query*>(arg);
  try {
    if (status != ARES_EDESTRUCTION && status != ARES_ECANCELLED) {
      // Delivered from the loop, never inside c-ares: the callback may close the
      // resolver, and c-ares answers address literals from inside ares_getaddrinfo.
      query->loop->add_callback([resolver = query->resolver, callback = std::move(query->callback),
                                 answer = answer_from(status, result)]() mutable {
        if (resolver.expired()) return;
        callback(std::move(answer));
      });
    }
  } catch (const std::exception& e) {
    log::error("dns", std::string("delivering an answer failed: ") + e.what());
  }
  if (result) ares_freeaddrinfo(result);
  delete query;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

bool DnsResolver::is_address_literal(const std::string& host) {
  return is_ip_literal(host);
}

struct DnsResolver::Channel {
  ares_channel channel = nullptr;
};

void DnsResolver::validate_servers(const std::string& servers) {
  std::size_t pos = 0;
  while (pos <= servers.size() && !servers.empty()) {
    std::size_t comma = servers.find(',', pos);
    std::string item =
        servers.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    auto bad = [&](const std::string& why) {
      return std::invalid_argument("resolver '" + item + "': " + why);
    };
    std::string host = item;
    std::string port;
    if (item.starts_with('[')) {
      std::size_t close = item.find(']');
      if (close == std::string::npos) throw bad("unclosed '['");
      host = item.substr(1, close - 1);
      if (close + 1 < item.size()) {
        if (item[close + 1] != ':') throw bad("expected ':' after ']'");
        port = item.substr(close + 2);
      }
    } else if (std::count(item.begin(), item.end(), ':') == 1) {
      host = item.substr(0, item.find(':'));
      port = item.substr(item.find(':') + 1);
    }
    if (!is_ip_literal(host)) throw bad("the DNS server must be an IP address");
    if (!port.empty() || item.ends_with(':')) {
      int n = 0;
      for (char c : port) {
        if (c < '0' || c > '9' || n > 65535) throw bad("bad port");
        n = n * 10 + (c - '0');
      }
      if (n < 1 || n > 65535) throw bad("port out of range");
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
}

std::shared_ptr<DnsResolver> DnsResolver::create(std::string servers, IOLoop* loop) {
  validate_servers(servers);
  return std::shared_ptr<DnsResolver>(
      new DnsResolver(std::move(servers), loop ? *loop : IOLoop::current()));
}

DnsResolver::DnsResolver(std::string servers, IOLoop& loop)
    : servers_(std::move(servers)), loop_(loop) {}

DnsResolver::~DnsResolver() {
  close();
}

void DnsResolver::open() {
  static std::once_flag init;
  std::call_once(init, [] { ares_library_init(ARES_LIB_INIT_ALL); });
  auto channel = std::make_unique<Channel>();
  ares_options options{};
  options.sock_state_cb = [](void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<DnsResolver*>(data)->watch_socket(fd, readable != 0, writable != 0);
  };
  options.sock_state_cb_data = this;
  options.timeout = 2000;  // ms per try
  options.tries = 2;
  int rc = ares_init_options(&channel->channel, &options,
                             ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
  if (rc != ARES_SUCCESS) {
    throw std::runtime_error(std::string("cannot start the DNS resolver: ") + ares_strerror(rc));
  }
  if (!servers_.empty()) {
    rc = ares_set_servers_ports_csv(channel->channel, servers_.c_str());
    if (rc != ARES_SUCCESS) {
      ares_destroy(channel->channel);
      throw std::invalid_argument("resolver '" + servers_ + "': " + ares_strerror(rc));
    }
  }
  channel_ = std::move(channel);
}

void DnsResolver::resolve(const std::string& name, Callback callback) {
  if (closed_) throw std::logic_error("DnsResolver::resolve after close");
  if (!channel_) open();
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // No RFC 6724 sorting: it opens a UDP socket per address, and every address is used.
  hints.ai_flags = ARES_AI_NOSORT;
  auto* query = new Query{weak_from_this(), &loop_, std::move(callback)};
  ares_getaddrinfo(channel_->channel, name.c_str(), nullptr, &hints, on_addrinfo, query);
  schedule_timeout();
}

void DnsResolver::close() {
  if (closed_) return;
  closed_ = true;
  loop_.remove_timeout(timer_);
  timer_ = {};
  if (channel_) {
    // Closes the sockets (watch_socket removes their handlers) and runs every pending
    // query's callback with ARES_EDESTRUCTION, which frees it.
    ares_destroy(channel_->channel);
    channel_.reset();
  }
  for (int fd : watched_) loop_.remove_handler(fd);
  watched_.clear();
}

void DnsResolver::watch_socket(int fd, bool readable, bool writable) {
  // Called by c-ares (a C caller): nothing may escape.
  try {
    auto it = std::find(watched_.begin(), watched_.end(), fd);
    if (!readable && !writable) {
      // c-ares is about to close fd: stop polling it before the number can be reused.
      if (it != watched_.end()) {
        watched_.erase(it);
        loop_.remove_handler(fd);
      }
      return;
    }
    int events = (readable ? IOLoop::READ : 0) | (writable ? IOLoop::WRITE : 0);
    if (it != watched_.end()) {
      loop_.update_handler(fd, events);
      return;
    }
    // The handler holds the resolver weakly: the loop owns the poller, which close()
    // removes, but a handler copy may be running when it does.
    std::weak_ptr<DnsResolver> weak = weak_from_this();
    loop_.add_handler(
        fd,
        [weak](int sock, int ev) {
          auto self = weak.lock();
          if (!self) return;
          bool in = (ev & (IOLoop::READ | IOLoop::ERROR)) != 0;
          bool out = (ev & IOLoop::WRITE) != 0;
          self->process(in ? sock : ARES_SOCKET_BAD, out ? sock : ARES_SOCKET_BAD);
        },
        events);
    watched_.push_back(fd);
  } catch (const std::exception& e) {
    log::error("dns", std::string("cannot watch a resolver socket: ") + e.what());
  }
}

void DnsResolver::process(int read_fd, int write_fd) {
  if (!channel_) return;
  ares_process_fd(channel_->channel, read_fd, write_fd);
  if (channel_) schedule_timeout();
}

void DnsResolver::schedule_timeout() {
  loop_.remove_timeout(timer_);
  timer_ = {};
  if (!channel_) return;
  timeval tv{};
  if (!ares_timeout(channel_->channel, nullptr, &tv)) return;  // nothing pending
  auto delay = std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  std::weak_ptr<DnsResolver> weak = weak_from_this();
  timer_ = loop_.call_later(delay, [weak] {
    if (auto self = weak.lock()) {
      self->timer_ = {};
      self->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
  });
}

}  // namespace tronada
