#include "tronada/gateway/proxy_handler.h"

#include <algorithm>
#include <charconv>
#include <system_error>

#include "tronada/async/detail/pool_allocator.h"
#include "tronada/async/spawn.h"
#include "tronada/base/error.h"
#include "tronada/base/log.h"
#include "tronada/gateway/dns_resolver.h"
#include "tronada/gateway/tunnel.h"
#include "tronada/http/http1_response_parser.h"
#include "tronada/http/http_client.h"
#include "tronada/http/http_client_request.h"
#include "tronada/http/url_codec.h"
#include "tronada/loop/periodic_callback.h"
#include "tronada/loop/timeout_list.h"
#include "tronada/metrics/shared_region.h"
#include "tronada/net/iostream.h"
#include "tronada/net/ssl_context.h"

namespace tronada {

namespace {

// A body kept for a retry on another connection at most this big; a larger one that
// meets a failure before any response byte gets 502 instead of a retry.
constexpr std::size_t kMaxRetainedBody = 1024 * 1024;

// Response bytes passed on between two looks at the client's backpressure. drain() costs
// a Promise and forces a flush, once per upstream read when asked each time; a body that
// trickles in small reads would pay it per read. We hold at most this much beyond the
// client stream's high-water mark.
constexpr std::uint64_t kDrainCheckBytes = 64 * 1024;

bool connection_has_token(const HTTPHeaders& headers, std::string_view token) {
  for (std::string_view value : headers.get_all("Connection")) {
    while (!value.empty()) {
      std::size_t comma = value.find(',');
      std::string_view t = value.substr(0, comma);
      while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
      while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
      if (detail::iequals(t, token)) return true;
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
  return false;
}

std::string describe_error(const std::exception_ptr& error, bool& timed_out) {
  timed_out = false;
  try {
    std::rethrow_exception(error);
  } catch (const TimeoutError& e) {
    timed_out = true;
    return std::string("timed out connecting (") + e.what() + ")";
  } catch (const std::system_error& e) {
    return std::string("cannot connect: ") + e.code().message();
  } catch (const std::exception& e) {
    return std::string("cannot connect: ") + e.what();
  } catch (...) {
    return "cannot connect";
  }
}

/// A connect that failed while looking for an upstream: logged (the request may still
/// be served by another), at most once a second per upstream so a dead host under load
/// does not flood the log; the lines in between are counted into the next one.
void log_connect_failure(Upstream& u, const std::string& what) {
  TimePoint now = IOLoop::current().time();
  if (u.connect_error_logged != TimePoint{} &&
      now - u.connect_error_logged < std::chrono::seconds(1)) {
    ++u.connect_errors_unlogged;
    return;
  }
  std::string line = what;
  if (u.connect_errors_unlogged > 0) {
    line += " (and " + std::to_string(u.connect_errors_unlogged) + " more since the last line)";
  }
  u.connect_errors_unlogged = 0;
  u.connect_error_logged = now;
  log::warning("proxy", line);
}

void append_hex(std::string& out, std::size_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n, 16);
  out.append(buf, end);
}

}  // namespace

// --- ProxyRoute ----------------------------------------------------------------

namespace {

/// The configured upstreams, with TLS set up for the https:// ones (a member found by
/// DNS later copies its source, context and name included).
std::vector<Upstream> parse_upstreams(const std::vector<std::string>& urls,
                                      const ProxyOptions& options) {
  std::vector<Upstream> out;
  out.reserve(urls.size());
  for (const auto& url : urls) out.push_back(parse_upstream(url));
  std::shared_ptr<SSLContext> tls;
  for (Upstream& u : out) {
    if (u.endpoint.scheme != "https") continue;
    if (!tls) {
      SSLClientConfig config;
      config.verify_peer = config.check_hostname = options.upstream_verify;
      config.ca_file = options.upstream_ca_file;
      config.alpn_protocols = {"http/1.1"};
      tls = SSLContext::client(std::move(config));
    }
    u.endpoint.ssl = tls;
    u.endpoint.server_hostname = u.endpoint.host;
  }
  return out;
}

}  // namespace

ProxyRoute::ProxyRoute(const std::vector<std::string>& upstream_urls, ProxyOptions options)
    : options_(std::move(options)),
      group_(parse_upstreams(upstream_urls, options_), options_.balance) {
  if (!options_.health_uri.empty() && options_.health_uri[0] != '/') {
    throw std::invalid_argument("health check path must start with '/'");
  }
  if (options_.resolve_interval < Duration::zero()) {
    throw std::invalid_argument("resolve_interval must not be negative");
  }
  if (options_.health_timeout < Duration::zero()) {
    throw std::invalid_argument("health_timeout must not be negative");
  }
  if (!options_.health_uri.empty() && options_.health_interval <= Duration::zero()) {
    throw std::invalid_argument("health_interval must be positive");
  }
  DnsResolver::validate_servers(options_.resolver);
  if (options_.resolve_interval > Duration::zero()) {
    std::vector<std::string> names;
    for (const Upstream& u : group_.sources()) {
      if (!has_host_name(u)) continue;
      discovered_sources_.push_back(u.source);
      names.push_back(u.endpoint.host);
    }
    if (!names.empty()) {
      DiscoveryOptions d;
      d.interval = options_.resolve_interval;
      d.resolver = options_.resolver;
      d.logger = "proxy";
      discovery_ = std::make_unique<UpstreamDiscovery>(
          std::move(names), std::move(d),
          [this](std::size_t index, const std::vector<std::string>& addresses) {
            addresses_changed(discovered_sources_[index], addresses);
          });
    }
  }
  if (!options_.health_uri.empty() || discovery_) {
    // Checks and lookups begin when the loop that serves the route runs, before the
    // first request.
    std::weak_ptr<bool> alive = alive_;
    IOLoop::current().add_callback([this, alive] {
      if (alive.expired()) return;
      start_discovery();
      start_health_checks();
      start_metrics();
    });
  }
}

ProxyRoute::~ProxyRoute() {
  *alive_ = false;
  if (health_) health_->stop();
  if (metrics_publisher_) metrics_publisher_->stop();
  // Gauges of a route a reload dropped would stay as they were; a route that replaces
  // it publishes them again within a second. Not once the region is gone (`tronada
  // proxy` declares its route before its Operations): the series are unmapped then.
  if (metrics::current()) {
    for (metrics::UpstreamSeries* s : series_) {
      if (s) s->published.store(0, std::memory_order_relaxed);
    }
  }
}

void ProxyRoute::start_metrics() {
  if (metrics_started_) return;
  metrics_started_ = true;
  metrics::SharedRegion* region = metrics::current();
  if (!region) return;
  for (const Upstream& u : group_.sources()) {
    series_.push_back(region->upstream_series(options_.metrics_route, u.url));
  }
  if (discovery_) published_dns_.resize(discovered_sources_.size());
  metrics_publisher_ =
      std::make_unique<PeriodicCallback>([this] { publish_metrics(); }, std::chrono::seconds(1));
  metrics_publisher_->start();
  publish_metrics();
}

void ProxyRoute::publish_metrics() {
  constexpr auto relaxed = std::memory_order_relaxed;
  struct Gauges {
    std::int64_t members = 0, down = 0, idle = 0, busy = 0;
  };
  std::vector<Gauges> by_source(series_.size());
  TimePoint now = IOLoop::current().time();
  for (const auto& u : group_.upstreams()) {
    if (u->source >= by_source.size()) continue;
    Gauges& g = by_source[u->source];
    ++g.members;
    if (u->down(now)) ++g.down;
    g.busy += static_cast<std::int64_t>(u->active);
    if (pool_) g.idle += static_cast<std::int64_t>(pool_->idle_count(u->endpoint));
  }
  for (std::size_t i = 0; i < series_.size(); ++i) {
    metrics::UpstreamSeries* s = series_[i];
    if (!s) continue;
    s->members.store(by_source[i].members, relaxed);
    s->members_down.store(by_source[i].down, relaxed);
    s->idle.store(by_source[i].idle, relaxed);
    s->busy.store(by_source[i].busy, relaxed);
  }
  for (std::size_t d = 0; d < published_dns_.size(); ++d) {
    metrics::UpstreamSeries* s = series_[discovered_sources_[d]];
    if (!s) continue;
    // Counters grow by what happened since the last publication: a reload's new
    // discovery starts from zero, the shared counter does not.
    const UpstreamDiscovery::Stats& now_stats = discovery_->stats(d);
    UpstreamDiscovery::Stats& last = published_dns_[d];
    s->dns_lookups.fetch_add(now_stats.lookups - last.lookups, relaxed);
    s->dns_failures.fetch_add(now_stats.failures - last.failures, relaxed);
    last = now_stats;
    s->dns_addresses.store(static_cast<std::int64_t>(discovery_->addresses(d).size()), relaxed);
  }
  for (metrics::UpstreamSeries* s : series_) {
    if (s) s->published.store(1, relaxed);
  }
}

void ProxyRoute::start_discovery() {
  if (discovery_) discovery_->start();
}

bool ProxyRoute::discovery_unsettled() const {
  return discovery_ && !discovery_->settled();
}

Future<void> ProxyRoute::discovery_settled(Duration timeout) {
  if (!discovery_ || discovery_->settled()) return make_ready_future<void>();
  return discovery_->wait_settled(timeout);
}

UpstreamDiscovery::Stats ProxyRoute::discovery_stats() const {
  return discovery_ ? discovery_->stats() : UpstreamDiscovery::Stats{};
}

Duration ProxyRoute::health_timeout() const {
  if (options_.health_timeout > Duration::zero()) return options_.health_timeout;
  return std::min<Duration>(std::chrono::seconds(5), options_.health_interval);
}

namespace {

std::string state_key(const Upstream& u) {
  return u.url + '\n' + u.address;
}

}  // namespace

void ProxyRoute::carry_state_from(const ProxyRoute& previous) {
  for (const auto& u : previous.group_.upstreams()) {
    CarriedState state;
    state.failures = u->failures;
    state.first_failure = u->first_failure;
    state.down_until = u->down_until;
    // A down flag only means something to a route that checks again: without active
    // checks nothing would ever clear it.
    state.health_check_down = !options_.health_uri.empty() && u->health_check_down;
    if (state.failures == 0 && state.down_until == TimePoint{} && !state.health_check_down) {
      continue;  // nothing to carry: fresh is the same
    }
    carried_.emplace(state_key(*u), state);
  }
  for (const auto& u : group_.upstreams()) apply_carried_state(*u);
}

void ProxyRoute::apply_carried_state(Upstream& u) {
  if (carried_.empty()) return;
  auto it = carried_.find(state_key(u));
  if (it == carried_.end()) return;
  u.failures = it->second.failures;
  u.first_failure = it->second.first_failure;
  u.down_until = it->second.down_until;
  u.health_check_down = it->second.health_check_down;
  carried_.erase(it);
}

void ProxyRoute::addresses_changed(std::size_t source, const std::vector<std::string>& addresses) {
  std::vector<std::shared_ptr<Upstream>> left = group_.set_addresses(source, addresses);
  for (const auto& u : group_.upstreams()) {
    if (u->source == source && u->requests == 0) apply_carried_state(*u);
  }
  // Drained: requests in flight to these finish on their own connections (the exchange
  // holds its upstream), which are then closed rather than pooled (removed); idle ones
  // go now, and pick() no longer offers them.
  for (const auto& u : left) {
    if (pool_) pool_->close_idle(u->endpoint);
  }
  if (health_) {
    // Newcomers are checked at once rather than trusted until the next round.
    for (const auto& u : group_.upstreams()) {
      if (u->source == source && u->requests == 0) check_health(u);
    }
  }
}

ConnectionPool& ProxyRoute::pool() {
  if (!pool_) pool_ = std::make_unique<ConnectionPool>(options_.pool);
  return *pool_;
}

TimeoutList& ProxyRoute::read_timeouts() {
  if (!read_timeouts_) {
    read_timeouts_ = std::make_unique<TimeoutList>(IOLoop::current(), options_.read_timeout);
  }
  return *read_timeouts_;
}

TimeoutList& ProxyRoute::write_timeouts() {
  if (!write_timeouts_) {
    write_timeouts_ = std::make_unique<TimeoutList>(IOLoop::current(), options_.write_timeout);
  }
  return *write_timeouts_;
}

const std::shared_ptr<TimeoutList>& ProxyRoute::tunnel_timeouts() {
  if (!tunnel_timeouts_) {
    tunnel_timeouts_ =
        std::make_shared<TimeoutList>(IOLoop::current(), options_.tunnel_idle_timeout);
  }
  return tunnel_timeouts_;
}

void ProxyRoute::start_health_checks() {
  if (health_ || options_.health_uri.empty()) return;
  health_ =
      std::make_unique<PeriodicCallback>([this] { run_health_checks(); }, options_.health_interval);
  health_->start();
  run_health_checks();
}

void ProxyRoute::run_health_checks() {
  // A copy: a DNS change may alter the members while checks are being sent.
  std::vector<std::shared_ptr<Upstream>> members = group_.upstreams();
  for (const auto& u : members) check_health(u);
}

void ProxyRoute::check_health(const std::shared_ptr<Upstream>& u) {
  if (u->health_checking) return;
  HTTPRequest request;
  if (!u->endpoint.unix_path.empty()) {
    request.url = "http+unix://" + url_encode(u->endpoint.unix_path, "") + options_.health_uri;
  } else if (!u->address.empty() && u->endpoint.ssl) {
    // A member found by DNS over TLS: the HTTP client cannot dial an address while it
    // verifies a name, and checking the name would test whichever address the system
    // resolver picks. Passive checks only (docs/proxy.md).
    return;
  } else if (!u->address.empty()) {
    // A member found by DNS: its own address, with the name in Host.
    std::string host =
        u->address.find(':') != std::string::npos ? "[" + u->address + "]" : u->address;
    request.url = u->endpoint.scheme + "://" + host + ":" + std::to_string(u->endpoint.port) +
                  u->path_prefix + options_.health_uri;
    request.headers.set("Host", u->host_header);
  } else {
    request.url =
        u->endpoint.scheme + "://" + u->host_header + u->path_prefix + options_.health_uri;
  }
  request.connect_timeout = health_timeout();
  request.request_timeout = health_timeout();
  request.follow_redirects = false;
  std::weak_ptr<bool> alive = alive_;
  std::weak_ptr<Upstream> weak = u;
  std::string url = request.url;
  u->health_checking = true;
  AsyncHTTPClient::instance().fetch(std::move(request), [alive, weak, url](HTTPResponse r) {
    auto up = weak.lock();
    if (!up) return;
    up->health_checking = false;
    if (alive.expired() || up->removed) return;
    bool healthy = !r.error && r.code >= 200 && r.code < 400;
    if (healthy != !up->health_check_down) {
      if (healthy) {
        log::info("proxy", "upstream " + up->url + " is healthy again");
      } else {
        log::warning("proxy", "upstream " + up->url + " failed its health check " + url + " (" +
                                  std::to_string(r.code) + ")");
      }
    }
    up->health_check_down = !healthy;
  });
}

// --- the exchange -----------------------------------------------------------------

/// One request's trip to an upstream and back. Shared by the handler, the connecting
/// task and the upstream stream's callbacks, so whichever ends first (client leaves,
/// upstream fails, response completes) leaves the others something valid to look at.
///
/// Lifetime: the handler owns the exchange (and ends it when it goes), the connecting
/// task holds it while it runs, and a call from the upstream stream holds it for the
/// call; the stream's callbacks are cleared whenever the connection is given back,
/// discarded or taken over, so they never reach a destroyed exchange.
class ProxyHandler::Exchange : public HTTP1ResponseParser::Events,
                               public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<ProxyRoute> route, std::shared_ptr<HTTPServerRequest> request)
      : route_(std::move(route)),
        request_(std::move(request)),
        parser_(*this, route_->options().max_response_header_size),
        timeout_(&Exchange::on_timeout, this) {
    const HTTPServerRequest& r = *request_;
    head_request_ = r.method == "HEAD";
    idempotent_ = is_idempotent_method(r.method);
    if (r.headers.contains("Content-Length")) {
      framing_ = UpstreamFraming::content_length;
    } else if (r.version != "HTTP/2" && r.version != "HTTP/2.0") {
      // HTTP/1 says whether a body comes: Transfer-Encoding or nothing.
      framing_ = r.headers.contains("Transfer-Encoding") ? UpstreamFraming::chunked
                                                         : UpstreamFraming::none;
    } else {
      framing_known_ = false;  // HTTP/2: known when the first DATA or the end arrives
    }
    if (r.version == "HTTP/1.1" && connection_has_token(r.headers, "upgrade")) {
      upgrade_ = std::string(r.headers.get("Upgrade").value_or(""));
    }
    std::size_t tries = route_->options().max_tries;
    std::size_t n = route_->group().upstreams().size();
    max_tries_ = tries == 0 ? n : tries;
  }

  ~Exchange() override {
    if (counted_ && upstream_) route_->group().end(*upstream_);
  }

  Future<void> done() { return done_.get_future(); }
  /// The upstream of the last try, or null before the first.
  const Upstream* upstream() const { return upstream_.get(); }

  // --- what the handler tells us ---

  void start() {
    if (started_) return;
    started_ = true;
    route_->start_discovery();
    route_->start_health_checks();
    route_->start_metrics();
    spawn_logged(connect(shared_from_this(), false), "proxy connect");
  }

  void body(std::string_view chunk) {
    if (ended_) return;
    if (!framing_known_) {
      framing_known_ = true;
      framing_ = UpstreamFraming::chunked;
    }
    keep_for_retry(chunk);
    if (!head_written_) {
      pending_.append(chunk);
      if (pending_.size() > route_->options().body_buffer) pause_client();
      return;
    }
    write_body(chunk);
  }

  void request_complete() {
    if (request_done_) return;
    request_done_ = true;
    if (!framing_known_) {
      framing_known_ = true;
      framing_ = UpstreamFraming::none;
    }
    start();
    if (conn_ && !ended_) {
      send_head();
      finish_body();
      read_response();
    }
  }

  void client_gone() {
    if (ended_) return;
    client_gone_ = true;
    drop_connection(false);
    end();
  }

  // --- outcome, read by the handler once done() completed ---
  int status = 0;
  bool head_sent = false;
  bool upgraded = false;
  bool client_left() const { return client_gone_; }
  int error_status = 0;
  std::string error_message;
  std::uint64_t bytes = 0;
  /// The last try's time from its start to the response's end (0: no whole response).
  std::uint64_t upstream_ns = 0;

  // --- HTTP1ResponseParser::Events ---

  void on_head(HTTPResponseHead&& head) override {
    if (head.status >= 100 && head.status < 200 && head.status != 101) {
      informational_ = true;
      return;
    }
    informational_ = false;
    if (head.status == 101) {
      parser_.expect_no_body();
      if (upgrade_.empty()) {
        broken_ = "switched protocols without an Upgrade request";
        return;
      }
      switching_ = true;
      switch_head_ = std::move(head);
      return;
    }
    if (head.status == 204 || head.status == 304) parser_.expect_no_body();
    downstream_response_headers(head.headers, head.status);
    try {
      request_->connection->write_headers(head.status, head.headers);
    } catch (const std::invalid_argument& e) {
      broken_ = std::string("invalid response head: ") + e.what();
      return;
    }
    status = head.status;
    head_sent = true;
  }

  void on_body(std::string_view chunk) override {
    bytes += chunk.size();
    request_->connection->write(chunk);
  }

  void on_complete() override {}

 private:
  // --- connecting ---

  static Task<void> connect(std::shared_ptr<Exchange> self, bool fresh) {
    ProxyRoute& route = *self->route_;
    if (!fresh && route.discovery_unsettled()) {
      // Upstreams found by DNS: the first answers are a few milliseconds away after
      // start-up or a reload; connecting by name meanwhile could reach nothing (a name
      // only the configured resolver knows). Bounded by the connect timeout; on timeout
      // the name is used as it is.
      Future<void> settled = route.discovery_settled(route.options().connect_timeout);
      if (!settled.done()) {
        try {
          co_await settled;
        } catch (const TimeoutError&) {
        }
        if (self->ended_) co_return;
      }
    }
    for (;;) {
      if (self->ended_) co_return;
      std::shared_ptr<Upstream> u =
          fresh ? self->upstream_ : route.group().pick(IOLoop::current().time(), self->tried_);
      if (!u || (!fresh && self->tries_ >= self->max_tries_)) {
        self->give_up(self->last_timed_out_ ? 504 : 502, self->last_error_);
        co_return;
      }
      if (!fresh) ++self->tries_;
      self->upstream_ = u;
      self->series_ = route.upstream_series(*u);
      // A retry after a failed try; the stale-connection retry (fresh) is the same try.
      if (self->series_ && !fresh && self->tries_ > 1) {
        self->series_->retries.fetch_add(1, std::memory_order_relaxed);
      }
      if (!fresh) self->try_started_ns_ = metrics::monotonic_ns();
      route.group().begin(*u);
      self->counted_ = true;
      Future<PooledConnection> acquiring =
          route.pool().acquire(u->endpoint, route.options().connect_timeout, !fresh);
      PooledConnection connection;
      std::exception_ptr error;
      try {
        connection = co_await acquiring;
      } catch (...) {
        error = std::current_exception();
      }
      if (self->ended_) co_return;  // the client left meanwhile; the connection goes back
      if (!error) {
        if (self->series_) {
          self->series_->record_connect(metrics::monotonic_ns() - self->try_started_ns_);
        }
        self->attach(std::move(connection));
        co_return;
      }
      route.group().end(*u);
      self->counted_ = false;
      bool timed_out = false;
      std::string why = describe_error(error, timed_out);
      metrics::UpstreamOutcome outcome =
          timed_out ? metrics::UpstreamOutcome::timeout : metrics::UpstreamOutcome::connect_error;
      try {
        std::rethrow_exception(error);
      } catch (const PoolFullError&) {
        // Our own queue is full: not the upstream's fault.
        outcome = metrics::UpstreamOutcome::rejected;
      } catch (...) {
        route.group().report_failure(*u, IOLoop::current().time());
      }
      self->note_failure(*u, why, timed_out);
      self->record_try(outcome);
      log_connect_failure(*u, self->last_error_);
      self->tried_.push_back(u);
      fresh = false;
    }
  }

  void attach(PooledConnection connection) {
    conn_ = std::move(connection);
    received_any_ = false;
    parser_.reset();
    if (head_request_) parser_.expect_no_body();
    IOStream& s = conn_.stream();
    // `this`, not a shared_ptr: std::function keeps a pointer inline, where a captured
    // shared_ptr cost two allocations per request. The callbacks never outlive us:
    // every way the connection leaves (release, discard, take, and our destructor,
    // through conn_) clears both first. Each call holds a reference while it runs, since
    // finishing the client's response may release the handler that holds us.
    Exchange* self = this;
    s.set_data_handler([self](std::string_view data) {
      std::shared_ptr<Exchange> keep = self->shared_from_this();
      self->on_upstream_data(data);
    });
    s.set_close_callback([self] {
      std::shared_ptr<Exchange> keep = self->shared_from_this();
      self->on_upstream_closed();
    });
    if (!request_done_) {
      // The response is read once the whole request is in: the client's connection
      // takes it only then.
      s.pause_reading();
    }
    send_head();
    if (request_done_) {
      finish_body();
      read_response();
    }
  }

  // --- sending ---

  void send_head() {
    if (head_written_ || !framing_known_) return;
    head_written_ = true;
    const ProxyOptions& o = route_->options();
    std::string head = upstream_request_head(*request_, *upstream_, o.headers, framing_, upgrade_);
    IOStream& s = conn_.stream();
    std::string_view h(head);
    s.write_pieces(&h, 1);
    if (!pending_.empty()) {
      std::string body;
      body.swap(pending_);
      write_body(body);
      resume_client();
    }
  }

  void write_body(std::string_view chunk) {
    if (chunk.empty() || !conn_) return;
    IOStream& s = conn_.stream();
    if (framing_ == UpstreamFraming::chunked) {
      std::string prefix;
      append_hex(prefix, chunk.size());
      prefix += "\r\n";
      std::string_view pieces[3] = {prefix, chunk, "\r\n"};
      s.write_pieces(pieces, 3);
    } else {
      s.write_pieces(&chunk, 1);
    }
    if (s.write_buffer_size() > route_->options().body_buffer && !client_paused_) {
      // The upstream reads slower than the client sends: hold the client.
      pause_client();
      route_->write_timeouts().arm(timeout_);
      std::weak_ptr<Exchange> weak = weak_from_this();
      s.write_pieces(nullptr, 0, [weak] {
        auto self = weak.lock();
        if (!self || self->ended_) return;
        self->timeout_.disarm();
        self->resume_client();
        if (self->request_done_) self->read_response();
      });
    }
  }

  void finish_body() {
    if (body_finished_ || !head_written_) return;
    body_finished_ = true;
    if (framing_ == UpstreamFraming::chunked) {
      std::string_view last = "0\r\n\r\n";
      conn_.stream().write_pieces(&last, 1);
    }
  }

  void keep_for_retry(std::string_view chunk) {
    if (!retain_) return;
    if (retained_.size() + chunk.size() > kMaxRetainedBody) {
      retain_ = false;
      std::string().swap(retained_);
      return;
    }
    retained_.append(chunk);
  }

  void pause_client() {
    if (client_paused_) return;
    client_paused_ = true;
    request_->connection->pause_reading();
  }

  void resume_client() {
    if (!client_paused_) return;
    client_paused_ = false;
    request_->connection->resume_reading();
  }

  // --- receiving ---

  void read_response() {
    if (!conn_ || ended_) return;
    if (!timeout_.armed()) route_->read_timeouts().arm(timeout_);
    conn_.stream().resume_reading();
  }

  void on_upstream_data(std::string_view data) {
    if (ended_) return;
    received_any_ = true;
    route_->read_timeouts().arm(timeout_);
    while (!data.empty() || informational_) {
      std::size_t n = 0;
      try {
        n = parser_.feed(data);
      } catch (const std::exception& e) {
        // Passing the response on threw (the parser rethrows what on_head/on_body threw
        // once out of llhttp): our side failed, not the upstream, so it is not blamed.
        return response_handler_failed(e.what());
      }
      if (!broken_.empty()) return upstream_failed(broken_, 502);
      if (parser_.failed()) return upstream_failed("malformed response: " + parser_.error(), 502);
      data.remove_prefix(n);
      if (ended_) return;
      if (!parser_.complete()) break;
      if (informational_) {
        informational_ = false;
        parser_.reset();
        if (head_request_) parser_.expect_no_body();
        continue;
      }
      if (switching_) return switch_protocols(data);
      return complete_response(!data.empty());
    }
    if (!head_sent || bytes - bytes_at_drain_check_ < kDrainCheckBytes) return;
    bytes_at_drain_check_ = bytes;
    // Backpressure from the client: stop reading the upstream until it took what we
    // passed on, so a slow client never makes us hold a whole response.
    Future<void> drained = request_->connection->drain();
    if (drained.done()) return;
    conn_.stream().pause_reading();
    timeout_.disarm();
    std::weak_ptr<Exchange> weak = weak_from_this();
    drained.add_done_callback([weak] {
      if (auto self = weak.lock(); self && !self->ended_) self->read_response();
    });
  }

  void complete_response(bool extra_bytes) {
    IOStream& s = conn_.stream();
    bool reusable = !extra_bytes && parser_.keep_alive() && body_finished_ &&
                    s.write_buffer_size() == 0 && !s.closed();
    request_->connection->finish();
    route_->group().report_success(*upstream_);
    record_response();
    drop_connection(reusable);
    end();
  }

  void on_upstream_closed() {
    if (ended_) return;
    parser_.finish_eof();
    if (parser_.complete() && head_sent && !informational_ && !switching_) {
      // A close-delimited body ends here.
      request_->connection->finish();
      route_->group().report_success(*upstream_);
      record_response();
      drop_connection(false);
      end();
      return;
    }
    std::error_code why = conn_ ? conn_.stream().error() : std::error_code();
    std::string reason = why ? " (" + why.message() + ")" : "";
    upstream_failed(received_any_ ? "closed the connection mid-response" + reason
                                  : "closed the connection before responding" + reason,
                    502);
  }

  static void on_timeout(void* context) {
    auto self = static_cast<Exchange*>(context)->shared_from_this();
    self->upstream_failed(self->request_done_ ? "timed out waiting for the response"
                                              : "timed out taking the request body",
                          504);
  }

  void switch_protocols(std::string_view rest) {
    HTTPConnection& client = *request_->connection;
    // Asked for and agreed to: only then does the tunnel carry WebSocket frames (and
    // so get a close handshake on drain, not a dropped connection).
    bool websocket = detail::iequals(upgrade_, "websocket") &&
                     detail::iequals(switch_head_.headers.get("Upgrade").value_or(""), "websocket");
    HTTPHeaders headers = std::move(switch_head_.headers);
    downstream_response_headers(headers, 101);
    DetachedConnection detached;
    try {
      client.write_headers(101, headers);
      detached = client.detach();
    } catch (const std::exception& e) {
      return upstream_failed(std::string("cannot switch protocols: ") + e.what(), 502);
    }
    timeout_.disarm();
    IOStream& s = conn_.stream();
    s.set_data_handler(nullptr);
    s.set_close_callback(nullptr);
    std::shared_ptr<IOStream> upstream = conn_.take();
    route_->group().report_success(*upstream_);
    record_response();
    status = 101;
    head_sent = true;
    upgraded = true;
    TunnelOptions options;
    options.idle_timeouts = route_->tunnel_timeouts();
    options.websocket = websocket;
    start_tunnel(std::move(detached.stream), std::move(detached.leftover), std::move(upstream),
                 std::string(rest), std::move(options));
    end();
  }

  // --- metrics ---

  void record_try(metrics::UpstreamOutcome outcome) {
    if (series_) series_->record_try(outcome);
  }

  void record_response() {
    upstream_ns = metrics::monotonic_ns() - try_started_ns_;
    if (!series_) return;
    series_->record_try(metrics::UpstreamOutcome::response);
    series_->record_response(upstream_ns);
  }

  // --- failure and the end ---

  void note_failure(const Upstream& u, const std::string& why, bool timed_out) {
    last_error_ = "upstream " + u.url + ": " + why;
    last_timed_out_ = timed_out;
  }

  void upstream_failed(const std::string& why, int status_code) {
    if (ended_) return;
    timeout_.disarm();
    bool reused = conn_ && conn_.reused();
    bool stale = !received_any_ && reused && status_code == 502;
    std::shared_ptr<Upstream> held = upstream_;
    Upstream& u = *held;
    note_failure(u, why, status_code == 504);
    bool nothing_seen = !head_sent && !received_any_ && !client_gone_;
    bool body_available = retain_ || !body_started();
    bool retry = false;
    bool fresh = false;
    if (nothing_seen && body_available) {
      if (stale && idempotent_) {
        // A kept-alive connection the upstream closed as we reused it: it goes again, on a
        // new connection. Only an idempotent request: an upstream that died while handling
        // it looks the same (EOF, nothing read), and a POST must not run twice. Go's
        // http.Transport draws the same line once the request was written.
        retry = !stale_retried_;
        fresh = stale_retried_ = true;
      } else if (idempotent_ && tries_ < max_tries_) {
        retry = true;
      }
    }
    drop_connection(false);
    if (!stale) {
      route_->group().report_failure(u, IOLoop::current().time());
      record_try(status_code == 504 ? metrics::UpstreamOutcome::timeout
                                    : metrics::UpstreamOutcome::error);
    }
    if (retry) {
      if (!fresh) tried_.push_back(held);
      log::info("proxy", last_error_ + "; retrying");
      head_written_ = false;
      body_finished_ = false;
      pending_ = retained_;
      spawn_logged(connect(shared_from_this(), fresh), "proxy connect");
      return;
    }
    if (head_sent) {
      log::error("proxy", last_error_ + " (after the response began; cutting it)");
      request_->connection->abort();
      end();
      return;
    }
    give_up(status_code, last_error_);
  }

  bool body_started() const { return !retained_.empty() || !retain_; }

  void response_handler_failed(const std::string& why) {
    log::error("proxy", "passing the response on failed: " + why);
    if (head_sent) {
      request_->connection->abort();
      end();
      return;
    }
    give_up(502, "passing the response on failed");
  }

  void give_up(int status_code, const std::string& message) {
    error_status = status_code;
    error_message = message.empty() ? "no upstream could be reached" : message;
    end();
  }

  void drop_connection(bool reusable) {
    // The pool clears our callbacks (or, on release, replaces our data handler with its
    // idle watcher without pausing reads). An upstream drained out of its group (DNS no
    // longer names it) keeps no idle connection.
    if (reusable && upstream_ && upstream_->removed) reusable = false;
    if (reusable) {
      conn_.release();
    } else {
      conn_.discard();
    }
    if (counted_) {
      route_->group().end(*upstream_);
      counted_ = false;
    }
  }

  void end() {
    if (ended_) return;
    ended_ = true;
    timeout_.disarm();
    drop_connection(false);
    resume_client();
    std::string().swap(pending_);
    std::string().swap(retained_);
    done_.try_set_result();
  }

  std::shared_ptr<ProxyRoute> route_;
  std::shared_ptr<HTTPServerRequest> request_;
  HTTP1ResponseParser parser_;
  TimeoutEntry timeout_;
  Promise<void> done_;
  PooledConnection conn_;
  // Held: the group may drop the upstream (DNS) while this exchange still uses it.
  std::shared_ptr<Upstream> upstream_;
  UpstreamGroup::Tried tried_;
  std::size_t tries_ = 0;
  std::size_t max_tries_ = 1;
  metrics::UpstreamSeries* series_ = nullptr;  // of upstream_; null: not measured
  std::uint64_t try_started_ns_ = 0;
  std::uint64_t bytes_at_drain_check_ = 0;  // `bytes` when on_upstream_data last asked drain()
  std::string last_error_;
  bool last_timed_out_ = false;
  UpstreamFraming framing_ = UpstreamFraming::none;
  bool framing_known_ = true;
  std::string upgrade_;
  std::string pending_;   // body bytes not yet written upstream
  std::string retained_;  // the body so far, for a retry
  bool retain_ = true;
  HTTPResponseHead switch_head_;
  std::string broken_;
  bool head_request_ = false;
  bool idempotent_ = false;
  bool started_ = false;
  bool counted_ = false;
  bool head_written_ = false;
  bool body_finished_ = false;
  bool request_done_ = false;
  bool client_paused_ = false;
  bool client_gone_ = false;
  bool received_any_ = false;
  bool informational_ = false;
  bool switching_ = false;
  bool stale_retried_ = false;
  bool ended_ = false;
};

// --- ProxyHandler ---------------------------------------------------------------

ProxyHandler::ProxyHandler() = default;

ProxyHandler::~ProxyHandler() {
  if (exchange_) exchange_->client_gone();
}

void ProxyHandler::initialize(std::shared_ptr<ProxyRoute> route) {
  route_ = std::move(route);
}

std::optional<std::uint64_t> ProxyHandler::max_body_size() const {
  return route_->options().max_body_size;
}

std::shared_ptr<ProxyHandler::Exchange> ProxyHandler::make_exchange() {
  // From the per-thread pool: at 700 bytes with its control block, and one per request
  // in flight, exchanges outran malloc's small per-size cache and cost a proxied request
  // about 400 instructions in the allocator.
  return std::allocate_shared<Exchange>(detail::PoolAllocator<Exchange>(), route_,
                                        shared_request());
}

void ProxyHandler::data_received(std::string_view chunk) {
  if (!exchange_) {
    exchange_ = make_exchange();
    exchange_->start();
  }
  exchange_->body(chunk);
}

void ProxyHandler::on_connection_close() {
  if (exchange_) exchange_->client_gone();
}

std::string ProxyHandler::upstream_address() const {
  const Upstream* u = exchange_ ? exchange_->upstream() : nullptr;
  if (!u) return {};
  if (u->address.empty()) return u->url;
  std::string host =
      u->address.find(':') != std::string::npos ? "[" + u->address + "]" : u->address;
  return u->endpoint.scheme + "://" + host + ":" + std::to_string(u->endpoint.port);
}

double ProxyHandler::upstream_seconds() const {
  if (!exchange_ || exchange_->upstream_ns == 0) return -1;
  return static_cast<double>(exchange_->upstream_ns) / 1e9;
}

Task<void> ProxyHandler::serve() {
  if (!exchange_) exchange_ = make_exchange();
  std::shared_ptr<Exchange> ex = exchange_;
  ex->request_complete();
  Future<void> done = ex->done();
  co_await done;
  if (ex->client_left()) co_return;
  if (!ex->head_sent) {
    throw HTTPError(ex->error_status ? ex->error_status : 502, ex->error_message);
  }
  // The exchange answered through the connection itself.
  complete_elsewhere(ex->status, ex->bytes);
}

}  // namespace tronada
