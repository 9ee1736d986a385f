#include "tronada/gateway/fastcgi_client.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "tronada/base/error.h"
#include "tronada/base/log.h"
#include "tronada/gateway/dns_resolver.h"
#include "tronada/loop/periodic_callback.h"
#include "tronada/metrics/shared_region.h"
#include "tronada/net/tcp_client.h"

namespace tronada::fastcgi {

namespace {

// What a kept-alive responder connection reads ahead between reads: about one response
// record's worth, so the socket stays registered without taking backpressure away.
constexpr std::size_t kReadAhead = 64 * 1024;

}  // namespace

Address Address::parse(std::string_view text) {
  Address a;
  if (text.starts_with("unix:")) {
    a.is_unix = true;
    a.path = std::string(text.substr(5));
    if (a.path.empty())
      throw std::invalid_argument("empty Unix socket path in '" + std::string(text) + "'");
    return a;
  }
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) {
    throw std::invalid_argument("FastCGI address '" + std::string(text) +
                                "' is neither unix:PATH nor HOST:PORT");
  }
  std::string_view host = text.substr(0, colon);
  if (host.starts_with('[')) {
    if (!host.ends_with(']'))
      throw std::invalid_argument("bad IPv6 literal in '" + std::string(text) + "'");
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) {
      throw std::invalid_argument("bad port in FastCGI address '" + std::string(text) + "'");
    }
    port = port * 10 + (c - '0');
  }
  if (port < 1 || port > 65535) {
    throw std::invalid_argument("port out of range in FastCGI address '" + std::string(text) + "'");
  }
  a.host = host.empty() ? "127.0.0.1" : std::string(host);
  a.port = port;
  return a;
}

std::string Address::to_string() const {
  if (is_unix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Pool::Pool(Address address, PoolOptions options, IOLoop* loop)
    : address_(std::move(address)), options_(options), loop_(loop ? loop : &IOLoop::current()) {
  if (options_.max_connections == 0) options_.max_connections = 1;
}

Pool::~Pool() {
  if (metrics_publisher_) metrics_publisher_->stop();
  // Gauges of a pool a reload dropped would stay as they were; the pool that replaces
  // it publishes them again within a second. A pool that outlives the region (a command
  // whose config is declared before its Operations) must not touch the unmapped series.
  if (series_ && metrics::current()) series_->published.store(0, std::memory_order_relaxed);
  loop_->remove_timeout(sweep_timer_);
  for (auto& i : idle_) i.stream->close();
  for (auto& w : waiters_) {
    loop_->remove_timeout(w.timer);
    w.promise.try_set_exception(
        std::make_exception_ptr(PoolTimeoutError("FastCGI pool shut down")));
  }
}

bool Pool::idle_stream_usable(IOStream& stream) {
  // An idle responder connection has nothing to say: readable means EOF (a recycled
  // php-fpm child) or garbage, both unusable, and so are bytes it read ahead. This
  // catches most closed connections before we write to them; the retry in the handler
  // covers the rest.
  return stream.read_buffer_size() == 0 && stream.socket_quiet();
}

std::shared_ptr<IOStream> Pool::take_idle(const std::string& to) {
  // Not in the coroutine: GCC 12 mishandles a local shared_ptr in a loop that co_returns.
  if (discovery_) discovery_->start();
  for (std::size_t k = idle_.size(); k-- > 0;) {  // newest first
    if (!to.empty()) {
      auto it = connected_to_.find(idle_[k].stream.get());
      if (it == connected_to_.end() || it->second != to) continue;
    }
    std::shared_ptr<IOStream> stream = std::move(idle_[k].stream);
    idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(k));
    if (idle_stream_usable(*stream)) return stream;
    connected_to_.erase(stream.get());
    stream->close();
    --open_;
  }
  return nullptr;
}

void Pool::resolve_every(Duration interval, std::string resolver) {
  if (discovery_ || interval <= Duration::zero() || address_.is_unix) return;
  if (address_.host.empty() || DnsResolver::is_address_literal(address_.host)) return;
  DiscoveryOptions options;
  options.interval = interval;
  options.resolver = std::move(resolver);
  options.logger = "fastcgi";
  // The discovery is ours and dies with us; its callbacks never outlive it.
  discovery_ = std::make_unique<UpstreamDiscovery>(
      std::vector<std::string>{address_.host}, std::move(options),
      [this](std::size_t, const std::vector<std::string>& addresses) {
        addresses_changed(addresses);
      });
  // First lookup as soon as the loop runs, not at the first request.
  std::weak_ptr<Pool> weak = weak_from_this();
  loop_->add_callback([weak] {
    if (auto pool = weak.lock(); pool && pool->discovery_) pool->discovery_->start();
  });
}

void Pool::measure(std::string route, std::string upstream) {
  metrics_route_ = std::move(route);
  metrics_upstream_ = std::move(upstream);
  metrics_started_ = false;
  // Gauges from the start, not from the first request: the region is attached by the
  // time the loop runs.
  std::weak_ptr<Pool> weak = weak_from_this();
  loop_->add_callback([weak] {
    if (auto pool = weak.lock(); pool && !pool->metrics_started_) pool->start_metrics();
  });
}

void Pool::start_metrics() {
  metrics_started_ = true;
  metrics::SharedRegion* region = metrics::current();
  if (!region || metrics_route_.empty()) return;
  series_ = region->upstream_series(metrics_route_, metrics_upstream_);
  if (!series_) return;
  metrics_publisher_ = std::make_unique<PeriodicCallback>([this] { publish_metrics(); },
                                                          std::chrono::seconds(1), 0.0, loop_);
  metrics_publisher_->start();
  publish_metrics();
}

void Pool::publish_metrics() {
  constexpr auto relaxed = std::memory_order_relaxed;
  auto idle = static_cast<std::int64_t>(idle_.size());
  // members stays 0: nothing tracks a responder's health, so none is reported.
  series_->idle.store(idle, relaxed);
  series_->busy.store(static_cast<std::int64_t>(open_) - idle, relaxed);
  if (discovery_) {
    // Counters grow by what happened since the last publication: a reload's new pool
    // starts from zero, the shared counter does not.
    const UpstreamDiscovery::Stats& now = discovery_->stats(0);
    series_->dns_lookups.fetch_add(now.lookups - published_dns_.lookups, relaxed);
    series_->dns_failures.fetch_add(now.failures - published_dns_.failures, relaxed);
    published_dns_ = now;
    series_->dns_addresses.store(static_cast<std::int64_t>(resolved_.size()), relaxed);
  }
  series_->published.store(1, relaxed);
}

std::string Pool::next_host() {
  if (resolved_.empty()) return {};
  return resolved_[next_address_++ % resolved_.size()];
}

bool Pool::drained(const IOStream* stream) const {
  auto it = connected_to_.find(stream);
  return it != connected_to_.end() &&
         !std::binary_search(resolved_.begin(), resolved_.end(), it->second);
}

void Pool::addresses_changed(const std::vector<std::string>& addresses) {
  bool first = resolved_.empty();
  resolved_ = addresses;
  // Idle connections to addresses that left close now, and so do those made by name
  // before the first answer (they went wherever the system resolver said). Lent ones
  // close when released (drained()).
  std::size_t closed = 0;
  std::erase_if(idle_, [&](Idle& i) {
    auto it = connected_to_.find(i.stream.get());
    bool by_name = it == connected_to_.end();
    if (!(by_name ? first : drained(i.stream.get()))) return false;
    if (!by_name) connected_to_.erase(it);
    i.stream->close();
    ++closed;
    return true;
  });
  open_ -= closed;
  while (closed-- > 0 && hand_to_waiter(nullptr)) ++open_;
}

Task<Lease> Pool::acquire() {
  // The pool may be released by its last user while we wait; hold it.
  auto self = shared_from_this();
  if (discovery_) {
    discovery_->start();
    if (!discovery_->settled()) {
      // The first answers are milliseconds away (start-up, reload): wait for them rather
      // than connect by a name only the configured resolver may know. On timeout the
      // name is used as it is.
      Future<void> settled = discovery_->wait_settled(options_.connect_timeout);
      try {
        co_await settled;
      } catch (const TimeoutError&) {
      }
    }
  }
  // With addresses found by DNS, requests take them in turn: an idle connection to this
  // request's address, else a new one to it, else (at the limit) any idle one. Without,
  // `to` is empty and any idle connection will do.
  std::string to = next_host();
  if (auto stream = take_idle(to)) co_return Lease{std::move(stream), true};
  if (open_ < options_.max_connections) {
    ++open_;
    // Awaited into a named variable: GCC 12 destroys a co_await result inside a braced
    // initializer twice, which cost a stream its self-reference.
    std::shared_ptr<IOStream> fresh = co_await connect(to);
    co_return Lease{std::move(fresh), false};
  }
  if (!to.empty()) {
    if (auto stream = take_idle("")) co_return Lease{std::move(stream), true};
  }
  if (waiters_.size() >= options_.max_queue) {
    throw PoolOverloadedError("FastCGI backend " + address_.to_string() + ": " +
                              std::to_string(waiters_.size()) + " requests already queued");
  }
  waiters_.emplace_back();
  auto it = std::prev(waiters_.end());
  Future<std::shared_ptr<IOStream>> handed = it->promise.get_future();
  std::weak_ptr<Pool> weak = self;
  const bool bounded = options_.max_wait > Duration::zero();
  it->timer = loop_->call_later(
      bounded ? options_.max_wait : options_.connect_timeout, [weak, it, bounded] {
        auto pool = weak.lock();
        if (!pool) return;
        auto promise = it->promise;
        pool->waiters_.erase(it);
        std::string what = "no connection to FastCGI backend " + pool->address_.to_string() +
                           " became free in time";
        promise.try_set_exception(
            bounded ? std::make_exception_ptr(PoolOverloadedError(what + " (max_wait)"))
                    : std::make_exception_ptr(PoolTimeoutError(what)));
      });
  std::shared_ptr<IOStream> stream = co_await handed;
  if (stream) co_return Lease{std::move(stream), true};
  // A slot was freed for us: the connection counted in open_ is ours to open.
  std::shared_ptr<IOStream> fresh = co_await connect(next_host());
  co_return Lease{std::move(fresh), false};
}

Task<std::shared_ptr<IOStream>> Pool::connect(std::string to) {
  TCPClient client(loop_);
  try {
    std::shared_ptr<IOStream> stream;
    if (address_.is_unix) {
      stream = co_await client.connect_unix(address_.path, options_.connect_timeout);
    } else {
      stream = co_await client.connect(to.empty() ? address_.host : to, address_.port,
                                       options_.connect_timeout);
      stream->set_nodelay(true);
      if (!to.empty()) connected_to_[stream.get()] = to;
    }
    // Read response after response without stopping the socket's reads in between; an
    // idle connection's EOF (a recycled php-fpm child) then closes it at once. A chunk
    // ahead at most: a response streamed to a slow client still holds php-fpm back.
    if (options_.keep_conn) stream->set_read_ahead(kReadAhead);
    co_return stream;
  } catch (...) {
    // The slot is free again: let the next waiter try.
    --open_;
    if (open_ < options_.max_connections && hand_to_waiter(nullptr)) ++open_;
    throw;
  }
}

bool Pool::hand_to_waiter(std::shared_ptr<IOStream> stream) {
  if (waiters_.empty()) return false;
  Waiter w = std::move(waiters_.front());
  waiters_.pop_front();
  loop_->remove_timeout(w.timer);
  w.promise.try_set_result(std::move(stream));
  return true;
}

void Pool::release(std::shared_ptr<IOStream> stream, bool reusable) {
  if (stream && drained(stream.get())) reusable = false;
  if (stream && !(reusable && options_.keep_conn && !stream->closed())) {
    connected_to_.erase(stream.get());
  }
  if (reusable && options_.keep_conn && stream && !stream->closed()) {
    if (hand_to_waiter(stream)) return;
    idle_.push_back(Idle{std::move(stream), Clock::now()});
    if (!sweep_timer_) arm_sweep(options_.idle_timeout);
    return;
  }
  if (stream) stream->close();
  --open_;
  if (hand_to_waiter(nullptr)) ++open_;
}

void Pool::arm_sweep(Duration delay) {
  std::weak_ptr<Pool> weak = weak_from_this();
  sweep_timer_ = loop_->call_later(delay, [weak] {
    if (auto pool = weak.lock()) {
      pool->sweep_timer_ = {};
      pool->sweep_idle();
    }
  });
}

void Pool::sweep_idle() {
  TimePoint now = Clock::now();
  std::size_t expired = 0;
  while (expired < idle_.size() && now - idle_[expired].since >= options_.idle_timeout) {
    connected_to_.erase(idle_[expired].stream.get());
    idle_[expired].stream->close();
    ++expired;
  }
  idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(expired));
  open_ -= expired;
  // Slots freed: queued requests cannot exist while connections were idle, but keep the
  // accounting rule in one place.
  while (expired-- > 0 && hand_to_waiter(nullptr)) ++open_;
  if (!idle_.empty()) arm_sweep(idle_.front().since + options_.idle_timeout - now);
}

}  // namespace tronada::fastcgi
