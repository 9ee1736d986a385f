#include "tronada/gateway/fastcgi_client.h"

#include "tronada/base/error.h"
#include "tronada/base/log.h"
#include "tronada/net/tcp_client.h"

namespace tronada::fastcgi {

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
  // php-fpm child) or garbage, both unusable. This catches most closed connections
  // before we write to them; the retry in the handler covers the rest.
  return stream.socket_quiet();
}

std::shared_ptr<IOStream> Pool::take_idle() {
  // Not in the coroutine: GCC 12 mishandles a local shared_ptr in a loop that co_returns.
  while (!idle_.empty()) {
    std::shared_ptr<IOStream> stream = std::move(idle_.back().stream);
    idle_.pop_back();
    if (idle_stream_usable(*stream)) return stream;
    stream->close();
    --open_;
  }
  return nullptr;
}

Task<Lease> Pool::acquire() {
  // The pool may be released by its last user while we wait; hold it.
  auto self = shared_from_this();
  if (auto stream = take_idle()) co_return Lease{std::move(stream), true};
  if (open_ < options_.max_connections) {
    ++open_;
    // Awaited into a named variable: GCC 12 destroys a co_await result inside a braced
    // initializer twice, which cost a stream its self-reference.
    std::shared_ptr<IOStream> fresh = co_await connect();
    co_return Lease{std::move(fresh), false};
  }
  if (waiters_.size() >= options_.max_queue) {
    throw PoolOverloadedError("FastCGI backend " + address_.to_string() + ": " +
                              std::to_string(waiters_.size()) + " requests already queued");
  }
  waiters_.emplace_back();
  auto it = std::prev(waiters_.end());
  Future<std::shared_ptr<IOStream>> handed = it->promise.get_future();
  std::weak_ptr<Pool> weak = self;
  it->timer = loop_->call_later(options_.connect_timeout, [weak, it] {
    auto pool = weak.lock();
    if (!pool) return;
    auto promise = it->promise;
    pool->waiters_.erase(it);
    promise.try_set_exception(std::make_exception_ptr(
        PoolTimeoutError("no connection to FastCGI backend " + pool->address_.to_string() +
                         " became free in time")));
  });
  std::shared_ptr<IOStream> stream = co_await handed;
  if (stream) co_return Lease{std::move(stream), true};
  // A slot was freed for us: the connection counted in open_ is ours to open.
  std::shared_ptr<IOStream> fresh = co_await connect();
  co_return Lease{std::move(fresh), false};
}

Task<std::shared_ptr<IOStream>> Pool::connect() {
  TCPClient client(loop_);
  try {
    std::shared_ptr<IOStream> stream;
    if (address_.is_unix) {
      stream = co_await client.connect_unix(address_.path, options_.connect_timeout);
    } else {
      stream = co_await client.connect(address_.host, address_.port, options_.connect_timeout);
      stream->set_nodelay(true);
    }
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
