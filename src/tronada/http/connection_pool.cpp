#include "tronada/http/connection_pool.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tronada/base/error.h"
#include "tronada/net/tcp_client.h"

namespace tronada {

std::string Endpoint::key() const {
  // Built once per acquire: appended into one buffer rather than through snprintf and a
  // chain of temporaries.
  char number[24];
  std::string key;
  key.reserve(scheme.size() + host.size() + unix_path.size() + server_hostname.size() + 48);
  key.append(scheme).append(1, '|').append(host).append(1, '|');
  key.append(number, std::to_chars(number, number + sizeof number, port).ptr);
  key.append(1, '|').append(unix_path).append(1, '|');
  if (ssl) {
    auto id = reinterpret_cast<std::uintptr_t>(ssl.get());
    key.append("0x").append(number, std::to_chars(number, number + sizeof number, id, 16).ptr);
    key.append(1, '|').append(server_hostname);
  }
  return key;
}

std::string Endpoint::describe() const {
  if (!unix_path.empty()) return unix_path;
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

namespace detail {

struct IdleConnection {
  std::shared_ptr<IOStream> stream;
  TimePoint since;  // parked then; it closes idle_timeout later (PoolState::sweep_idle)
};

struct EndpointGroup {
  Endpoint endpoint;
  std::size_t busy = 0;              // checked out or connecting
  std::size_t waiting = 0;           // waiters for this key
  std::vector<IdleConnection> idle;  // back: most recently used
};

struct Waiter {
  std::uint64_t id = 0;
  std::string key;
  bool reuse_idle = true;
  TimePoint deadline = TimePoint::max();
  TimeoutHandle timer;
  Promise<PooledConnection> promise;
};

/// The pool's state. Lifetime: owned by the ConnectionPool alone; everything else
/// (PooledConnection, stream callbacks, timers, connects in flight) holds it weakly.
struct PoolState : std::enable_shared_from_this<PoolState> {
  IOLoop* loop;
  ConnectionPoolOptions options;
  std::unordered_map<std::string, EndpointGroup> groups;
  std::list<Waiter> waiters;
  std::size_t busy_total = 0;
  std::size_t idle_total = 0;
  std::uint64_t opened = 0;
  std::uint64_t reused = 0;
  std::uint64_t next_waiter_id = 1;
  // One timer for every idle connection's timeout, at the earliest deadline: parking and
  // taking a connection (once per request) then touch no timer at all.
  TimeoutHandle sweep_timer;
  TimePoint sweep_at = TimePoint::max();
  bool closed = false;
  bool dispatching = false;
  bool redispatch = false;

  // Work collected while the structures are being changed and done afterwards, so that
  // promise callbacks and synchronous connect failures never see a half-updated pool.
  struct Handoff {
    Promise<PooledConnection> promise;
    PooledConnection connection;
  };
  struct PendingConnect {
    std::string key;
    TimePoint deadline;
    Promise<PooledConnection> promise;
  };

  PoolState(ConnectionPoolOptions o, IOLoop* l) : loop(l), options(std::move(o)) {}

  std::size_t total() const { return busy_total + idle_total; }

  // `g` is groups[key]; the key is taken by value so that acquire(), which is done with
  // its own, hands it over rather than have it copied once per request.
  PooledConnection checkout(EndpointGroup& g, std::string key, std::shared_ptr<IOStream> stream,
                            bool was_idle) {
    ++g.busy;
    ++busy_total;
    if (was_idle) ++reused;
    return PooledConnection(weak_from_this(), std::move(stream), std::move(key), was_idle);
  }

  // Takes the most recently used idle connection of `g` that is still open.
  std::shared_ptr<IOStream> take_idle(EndpointGroup& g) {
    while (!g.idle.empty()) {
      IdleConnection c = std::move(g.idle.back());
      g.idle.pop_back();
      --idle_total;
      c.stream->set_close_callback(nullptr);
      // The idle watcher stays the data handler until the holder installs its own:
      // stopping and restarting reads costs two epoll_ctl calls per request, and a byte
      // arriving before the holder sent anything still means a broken connection.
      if (!c.stream->closed()) {
        // The sweep timer stays: the connection comes back to the idle list after its
        // exchange nearly always, and stopping and re-making the timer cost a request
        // an allocation whenever one connection was all the pool had idle. If it is
        // discarded instead, give_back stops the timer then.
        return std::move(c.stream);
      }
    }
    stop_sweep_if_idle_none();
    return nullptr;
  }

  // No idle connection left: no timer either, so a pool at rest keeps no loop alive.
  void stop_sweep_if_idle_none() {
    if (idle_total != 0 || sweep_at == TimePoint::max()) return;
    loop->remove_timeout(sweep_timer);
    sweep_at = TimePoint::max();
  }

  void close_idle(IdleConnection& c) {
    c.stream->set_close_callback(nullptr);
    c.stream->set_data_handler(nullptr);
    c.stream->close();
  }

  // Closes the connection that has been idle longest, in any group; false if none.
  bool evict_oldest_idle() {
    EndpointGroup* oldest = nullptr;
    for (auto& [key, g] : groups) {
      if (!g.idle.empty() && (!oldest || g.idle.front().since < oldest->idle.front().since)) {
        oldest = &g;
      }
    }
    if (!oldest) return false;
    close_idle(oldest->idle.front());
    oldest->idle.erase(oldest->idle.begin());
    --idle_total;
    stop_sweep_if_idle_none();
    return true;
  }

  // Whether a new connection for `g` fits the limits, closing idle ones to make room.
  bool make_room(EndpointGroup& g) {
    if (g.busy + g.idle.size() >= options.max_per_endpoint) {
      if (g.idle.empty()) return false;
      close_idle(g.idle.front());
      g.idle.erase(g.idle.begin());
      --idle_total;
      stop_sweep_if_idle_none();
    }
    if (total() >= options.max_total && !evict_oldest_idle()) return false;
    return true;
  }

  void park(EndpointGroup& g, std::shared_ptr<IOStream> stream) {
    IOStream* raw = stream.get();
    // The server may close an idle connection at any time (its keep-alive timeout); the
    // read that notices is what keeps us from handing out a dead connection. Two raw
    // pointers fit std::function's inline storage, so parking allocates nothing; `this`
    // is safe: the callback is cleared whenever the connection leaves the idle list, and
    // close() (which the pool's destructor calls) empties every list.
    stream->set_close_callback([this, raw] { drop_idle(raw); });
    // Bytes from an idle server answer nothing we sent: the connection is unusable.
    stream->set_data_handler([raw](std::string_view) { raw->close(); });
    stream->resume_reading();
    TimePoint now = loop->time();
    g.idle.push_back(IdleConnection{std::move(stream), now});
    ++idle_total;
    schedule_sweep(now + options.idle_timeout);
  }

  // An idle connection closed by its server. Searched for in every group (the callback
  // holds no key, to stay allocation-free): this happens once per connection, not per
  // request, and a pool has few endpoints.
  void drop_idle(IOStream* raw) {
    for (auto it = groups.begin(); it != groups.end(); ++it) {
      auto& idle = it->second.idle;
      auto found = std::find_if(idle.begin(), idle.end(),
                                [raw](const IdleConnection& c) { return c.stream.get() == raw; });
      if (found == idle.end()) continue;
      // The callback running is held by the stream, which the entry may hold last.
      std::shared_ptr<IOStream> keep = std::move(found->stream);
      idle.erase(found);
      --idle_total;
      stop_sweep_if_idle_none();
      std::string key = it->first;
      dispatch();
      maybe_erase(key);
      return;
    }
  }

  // Makes the sweep timer fire by `when` (the earliest idle deadline).
  void schedule_sweep(TimePoint when) {
    if (closed || when >= sweep_at) return;
    loop->remove_timeout(sweep_timer);
    sweep_at = when;
    std::weak_ptr<PoolState> weak = weak_from_this();
    Duration delay = std::max<Duration>(when - loop->time(), Duration::zero());
    sweep_timer = loop->call_later(delay, [weak] {
      if (auto s = weak.lock()) s->sweep_idle();
    });
  }

  // Closes the connections idle for idle_timeout; each group's list is in parking
  // order, so the expired ones are at its front.
  void sweep_idle() {
    sweep_at = TimePoint::max();
    if (closed) return;
    TimePoint now = loop->time();
    TimePoint next = TimePoint::max();
    std::vector<std::string> emptied;
    for (auto& [key, g] : groups) {
      std::size_t expired = 0;
      while (expired < g.idle.size() && g.idle[expired].since + options.idle_timeout <= now) {
        close_idle(g.idle[expired]);
        ++expired;
      }
      if (expired > 0) {
        g.idle.erase(g.idle.begin(), g.idle.begin() + static_cast<std::ptrdiff_t>(expired));
        idle_total -= expired;
        if (g.idle.empty()) emptied.push_back(key);
      }
      if (!g.idle.empty()) next = std::min(next, g.idle.front().since + options.idle_timeout);
    }
    if (next != TimePoint::max()) {
      // Never sooner than a millisecond: the timer's resolution.
      schedule_sweep(std::max<TimePoint>(next, now + std::chrono::milliseconds(1)));
    }
    if (emptied.empty()) return;
    dispatch();
    for (const auto& key : emptied) maybe_erase(key);
  }

  void maybe_erase(const std::string& key) {
    auto it = groups.find(key);
    if (it != groups.end() && it->second.busy == 0 && it->second.waiting == 0 &&
        it->second.idle.empty()) {
      groups.erase(it);
    }
  }

  Future<PooledConnection> acquire(const Endpoint& endpoint, Duration timeout, bool reuse_idle) {
    Promise<PooledConnection> promise(loop);
    Future<PooledConnection> future = promise.get_future();
    if (closed) {
      promise.set_exception(std::make_exception_ptr(StreamClosedError()));
      return future;
    }
    std::string key = endpoint.key();
    EndpointGroup& g = groups[key];
    if (g.busy == 0 && g.idle.empty() && g.waiting == 0) g.endpoint = endpoint;
    if (reuse_idle) {
      if (auto stream = take_idle(g)) {
        promise.set_result(checkout(g, std::move(key), std::move(stream), true));
        return future;
      }
    }
    TimePoint deadline = timeout > Duration::zero() ? loop->time() + timeout : TimePoint::max();
    // Waiters that came first get the first free slot, so a newcomer only connects at
    // once when nobody waits for this endpoint.
    if (g.waiting == 0 && make_room(g)) {
      start_connect(PendingConnect{key, deadline, std::move(promise)});
      return future;
    }
    if (waiters.size() >= options.max_waiters) {
      maybe_erase(key);
      promise.set_exception(std::make_exception_ptr(PoolFullError(
          "connection pool: " + std::to_string(waiters.size()) + " requests already waiting")));
      return future;
    }
    Waiter w;
    w.id = next_waiter_id++;
    w.key = key;
    w.reuse_idle = reuse_idle;
    w.deadline = deadline;
    w.promise = std::move(promise);
    if (deadline != TimePoint::max()) {
      std::weak_ptr<PoolState> weak = weak_from_this();
      w.timer = loop->call_later(timeout, [weak, id = w.id] {
        if (auto s = weak.lock()) s->expire_waiter(id);
      });
    }
    ++g.waiting;
    waiters.push_back(std::move(w));
    return future;
  }

  void expire_waiter(std::uint64_t id) {
    auto it =
        std::find_if(waiters.begin(), waiters.end(), [id](const Waiter& w) { return w.id == id; });
    if (it == waiters.end()) return;
    Waiter w = std::move(*it);
    waiters.erase(it);
    EndpointGroup& g = groups.at(w.key);
    --g.waiting;
    std::string where = g.endpoint.describe();
    maybe_erase(w.key);
    w.promise.try_set_exception(
        std::make_exception_ptr(TimeoutError("timed out waiting for a connection to " + where)));
  }

  void start_connect(PendingConnect pc) {
    EndpointGroup& g = groups.at(pc.key);
    ++g.busy;
    ++busy_total;
    Duration timeout = Duration::zero();
    if (pc.deadline != TimePoint::max()) {
      timeout = std::max<Duration>(pc.deadline - loop->time(), std::chrono::milliseconds(1));
    }
    const Endpoint& e = g.endpoint;
    TCPClient client(loop);
    Future<std::shared_ptr<IOStream>> connecting;
    try {
      connecting = e.unix_path.empty()
                       ? client.connect(e.host, e.port, timeout, e.ssl, e.server_hostname,
                                        options.stream_options)
                       : client.connect_unix(e.unix_path, timeout, options.stream_options);
    } catch (...) {
      Promise<std::shared_ptr<IOStream>> failed(loop);
      failed.set_exception(std::current_exception());
      connecting = failed.get_future();
    }
    std::weak_ptr<PoolState> weak = weak_from_this();
    connecting.add_done_callback([weak, state = connecting.weak_state(), key = pc.key,
                                  promise = std::move(pc.promise)]() mutable {
      auto s = weak.lock();
      auto st = state.lock();
      if (!st) return;
      Future<std::shared_ptr<IOStream>> done(std::move(st));
      std::exception_ptr error = done.exception();
      std::shared_ptr<IOStream> stream = error ? nullptr : done.result();
      if (!s || s->closed) {
        if (stream) stream->close();
        if (s) s->unbusy(key);
        promise.try_set_exception(error ? error : std::make_exception_ptr(StreamClosedError()));
        return;
      }
      if (error) {
        s->unbusy(key);
        promise.try_set_exception(error);
        return;
      }
      ++s->opened;
      // The slot counted while connecting becomes the checked-out connection's.
      promise.try_set_result(PooledConnection(weak, std::move(stream), key, false));
    });
  }

  void unbusy(const std::string& key) {
    auto it = groups.find(key);
    if (it != groups.end()) {
      --it->second.busy;
      --busy_total;
    }
    dispatch();
    maybe_erase(key);
  }

  void give_back(const std::string& key, std::shared_ptr<IOStream> stream, bool reusable) {
    // Whatever happens to the stream, the holder's callbacks are cleared or replaced here:
    // holders may capture raw pointers to themselves (the proxy's exchange does).
    auto it = groups.find(key);
    if (it == groups.end()) {
      stream->set_close_callback(nullptr);
      stream->set_data_handler(nullptr);
      stream->close();
      return;
    }
    EndpointGroup& g = it->second;
    --g.busy;
    --busy_total;
    // At most one: the oldest waiter for this endpoint (no vector to allocate per request).
    std::optional<Handoff> handoff;
    if (closed || !reusable || stream->closed()) {
      stream->set_close_callback(nullptr);
      stream->set_data_handler(nullptr);
      stream->close();
    } else {
      stream->set_close_callback(nullptr);
      auto w = std::find_if(waiters.begin(), waiters.end(),
                            [&](const Waiter& w) { return w.key == key && w.reuse_idle; });
      if (w != waiters.end()) {
        // Replaced, not cleared: the last holder's handler goes, reads keep running.
        IOStream* raw = stream.get();
        stream->set_data_handler([raw](std::string_view) { raw->close(); });
        loop->remove_timeout(w->timer);
        --g.waiting;
        // The waiter's own copy of the key goes with the connection: it is erased next.
        handoff.emplace(Handoff{std::move(w->promise),
                                checkout(g, std::move(w->key), std::move(stream), true)});
        waiters.erase(w);
      } else if (g.idle.size() < options.max_idle_per_endpoint) {
        park(g, std::move(stream));
      } else {
        stream->set_data_handler(nullptr);
        stream->close();
      }
    }
    stop_sweep_if_idle_none();
    if (handoff) handoff->promise.try_set_result(std::move(handoff->connection));
    dispatch();
    maybe_erase(key);
  }

  // A checked-out connection leaves the pool for good (an Upgrade took it over): its
  // slot is free, the stream is the holder's.
  void forget(const std::string& key) {
    auto it = groups.find(key);
    if (it == groups.end()) return;
    --it->second.busy;
    --busy_total;
    stop_sweep_if_idle_none();
    dispatch();
    maybe_erase(key);
  }

  // Serves waiters, oldest first, from idle connections or with new ones while the
  // limits allow.
  void dispatch() {
    if (dispatching) {
      redispatch = true;
      return;
    }
    dispatching = true;
    std::vector<Handoff> handoffs;
    std::vector<PendingConnect> connects;
    do {
      redispatch = false;
      for (auto it = waiters.begin(); it != waiters.end();) {
        EndpointGroup& g = groups.at(it->key);
        std::shared_ptr<IOStream> stream = it->reuse_idle ? take_idle(g) : nullptr;
        if (stream) {
          handoffs.push_back(
              Handoff{std::move(it->promise), checkout(g, it->key, std::move(stream), true)});
        } else if (make_room(g)) {
          // Counted busy now, so that later waiters see the slot as taken.
          ++g.busy;
          ++busy_total;
          connects.push_back(PendingConnect{it->key, it->deadline, std::move(it->promise)});
        } else {
          ++it;
          continue;
        }
        loop->remove_timeout(it->timer);
        --g.waiting;
        it = waiters.erase(it);
      }
      for (auto& h : handoffs) h.promise.try_set_result(std::move(h.connection));
      handoffs.clear();
      for (auto& c : connects) {
        EndpointGroup& g = groups.at(c.key);
        --g.busy;  // start_connect counts it again
        --busy_total;
        start_connect(std::move(c));
      }
      connects.clear();
    } while (redispatch);
    dispatching = false;
  }

  void close() {
    if (closed) return;
    closed = true;
    loop->remove_timeout(sweep_timer);
    sweep_at = TimePoint::max();
    for (auto& [key, g] : groups) {
      for (auto& c : g.idle) close_idle(c);
      idle_total -= g.idle.size();
      g.idle.clear();
      g.waiting = 0;
    }
    std::list<Waiter> failed = std::move(waiters);
    waiters.clear();
    for (auto it = groups.begin(); it != groups.end();) {
      it = it->second.busy == 0 ? groups.erase(it) : std::next(it);
    }
    for (auto& w : failed) {
      loop->remove_timeout(w.timer);
      w.promise.try_set_exception(std::make_exception_ptr(StreamClosedError()));
    }
  }
};

}  // namespace detail

PooledConnection& PooledConnection::operator=(PooledConnection&& other) noexcept {
  if (this != &other) {
    discard();
    pool_ = std::move(other.pool_);
    stream_ = std::move(other.stream_);
    key_ = std::move(other.key_);
    reused_ = other.reused_;
    other.stream_.reset();
  }
  return *this;
}

void PooledConnection::give_back(bool reusable) {
  if (!stream_) return;
  std::shared_ptr<IOStream> stream = std::move(stream_);
  stream_.reset();
  if (auto pool = pool_.lock()) {
    pool->give_back(key_, std::move(stream), reusable);
  } else {
    stream->set_close_callback(nullptr);
    stream->set_data_handler(nullptr);
    stream->close();
  }
  pool_.reset();
}

std::shared_ptr<IOStream> PooledConnection::take() {
  if (!stream_) return nullptr;
  std::shared_ptr<IOStream> stream = std::move(stream_);
  stream_.reset();
  if (auto pool = pool_.lock()) pool->forget(key_);
  pool_.reset();
  return stream;
}

void PooledConnection::release() {
  give_back(true);
}
void PooledConnection::discard() {
  give_back(false);
}

ConnectionPool::ConnectionPool(ConnectionPoolOptions options, IOLoop* loop)
    : state_(std::make_shared<detail::PoolState>(std::move(options),
                                                 loop ? loop : &IOLoop::current())) {
  auto& o = state_->options;
  o.max_per_endpoint = std::max<std::size_t>(o.max_per_endpoint, 1);
  o.max_total = std::max<std::size_t>(o.max_total, 1);
}

ConnectionPool::~ConnectionPool() {
  state_->close();
}

Future<PooledConnection> ConnectionPool::acquire(const Endpoint& endpoint, Duration timeout,
                                                 bool reuse_idle) {
  return state_->acquire(endpoint, timeout, reuse_idle);
}

void ConnectionPool::close() {
  state_->close();
}

ConnectionPool::Stats ConnectionPool::stats() const {
  return Stats{state_->busy_total, state_->idle_total, state_->waiters.size(), state_->opened,
               state_->reused};
}

std::size_t ConnectionPool::close_idle(const Endpoint& endpoint) {
  const std::string key = endpoint.key();
  auto it = state_->groups.find(key);
  if (it == state_->groups.end()) return 0;
  std::vector<detail::IdleConnection> idle = std::move(it->second.idle);
  it->second.idle.clear();
  state_->idle_total -= idle.size();
  state_->stop_sweep_if_idle_none();
  for (auto& c : idle) state_->close_idle(c);
  // Freed slots may let waiters of other endpoints (over max_total) go ahead.
  state_->dispatch();
  state_->maybe_erase(key);
  return idle.size();
}

std::size_t ConnectionPool::idle_count(const Endpoint& endpoint) const {
  auto it = state_->groups.find(endpoint.key());
  return it == state_->groups.end() ? 0 : it->second.idle.size();
}

const ConnectionPoolOptions& ConnectionPool::options() const {
  return state_->options;
}

}  // namespace tronada
