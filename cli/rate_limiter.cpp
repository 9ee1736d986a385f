#include "cli/rate_limiter.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/sha.h>
#include <sys/socket.h>

#include <charconv>
#include <stdexcept>

#include "tronada/base/log.h"
#include "tronada/http/http_server_request.h"
#include "tronada/metrics/route_series.h"

namespace tronada::cli {

namespace {

constexpr auto kLogEvery = std::chrono::seconds(10);
// Header values longer than this are keyed by their SHA-256: a client must not make
// each of max_keys entries (or each Redis key) as large as a whole header.
constexpr std::size_t kLongestKey = 64;

std::string sha256_hex(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof digest);
  for (unsigned char c : digest) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// hiredis wants an address: it would resolve a name with a blocking getaddrinfo on
// every reconnect, on the loop.
std::string resolve_host(const std::string& host) {
  in6_addr probe{};
  if (inet_pton(AF_INET, host.c_str(), &probe) == 1 ||
      inet_pton(AF_INET6, host.c_str(), &probe) == 1) {
    return host;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || !found) {
    throw std::invalid_argument("cannot resolve redis host '" + host + "': " + gai_strerror(rc));
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (found->ai_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr, text,
              sizeof text);
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(found->ai_addr)->sin6_addr, text,
              sizeof text);
  }
  freeaddrinfo(found);
  return text;
}

}  // namespace

std::shared_ptr<RateLimiter> RateLimiter::create(RateLimitOptions options, std::string name,
                                                 metrics::RouteSeries* series) {
  return std::shared_ptr<RateLimiter>(new RateLimiter(std::move(options), std::move(name), series));
}

RateLimiter::RateLimiter(RateLimitOptions options, std::string name, metrics::RouteSeries* series)
    : options_(std::move(options)), name_(std::move(name)), series_(series) {
  check_rate_key(options_.key);
  if (options_.key != "remote_ip") header_name_ = options_.key.substr(7);
  RateWindow window(options_.requests, options_.per.count());
  policy_value_ = std::to_string(options_.requests) +
                  ";w=" + std::to_string(std::max<std::int64_t>(options_.per.count() / 1000, 1));
  RateStoreAddress store = parse_rate_store(options_.store);
  if (!store.redis) {
    memory_ = std::make_unique<MemoryRateStore>(window, options_.max_keys);
    return;
  }
  RedisRateStore::Options ro;
  ro.connect.host = resolve_host(store.host);
  ro.connect.port = store.port;
  ro.timeout = options_.timeout;
  // Instances share a key only if they agree on the route and the limit: a config that
  // changes the limit starts a fresh budget rather than misreading the old counts.
  ro.prefix = options_.redis_prefix + name_ + ":" + std::to_string(options_.requests) + "/" +
              std::to_string(options_.per.count()) + ":";
  redis_ = std::make_unique<RedisRateStore>(window, std::move(ro));
}

RateLimiter::~RateLimiter() = default;

std::string RateLimiter::key_of(const HTTPServerRequest& request) const {
  if (!header_name_.empty()) {
    if (auto v = request.headers.get(header_name_)) {
      if (v->size() > kLongestKey) return "h#" + sha256_hex(*v);
      return "h:" + std::string(*v);
    }
  }
  return "ip:" + request.remote_ip;
}

void RateLimiter::check(std::string_view key, Done done) {
  if (memory_) {
    RateOutcome o;
    o.decision = memory_->hit(key, steady_ms());
    o.allowed = o.decision.allowed;
    if (!o.allowed && series_) series_->rate_limited.fetch_add(1, std::memory_order_relaxed);
    done(o);
    return;
  }
  redis_->hit(key, wall_ms(),
              [weak = weak_from_this(), done = std::move(done)](std::optional<RateDecision> d,
                                                                std::string_view why) {
                auto self = weak.lock();
                RateOutcome o;
                if (d) {
                  o.decision = *d;
                  o.allowed = d->allowed;
                  if (!o.allowed && self && self->series_) {
                    self->series_->rate_limited.fetch_add(1, std::memory_order_relaxed);
                  }
                } else {
                  o.store_error = true;
                  o.allowed = self ? self->options_.allow_on_store_error : true;
                  if (self) self->store_failed(why);
                }
                done(o);
              });
}

void RateLimiter::store_failed(std::string_view why) {
  if (series_) series_->rate_limit_store_errors.fetch_add(1, std::memory_order_relaxed);
  TimePoint now = Clock::now();
  if (now < next_log_) {
    ++unlogged_errors_;
    return;
  }
  std::string line = "rate limit of " + name_ + ": store " + options_.store + " failed (" +
                     std::string(why) + "); requests are " +
                     (options_.allow_on_store_error ? "allowed" : "refused with 503") +
                     " while it does";
  if (unlogged_errors_) {
    line += " (" + std::to_string(unlogged_errors_) + " more since the last message)";
  }
  log::warning("ratelimit", line);
  unlogged_errors_ = 0;
  next_log_ = now + kLogEvery;
}

void RateLimiter::add_headers(const RateOutcome& outcome, HTTPHeaders& fields) const {
  if (outcome.store_error) {
    if (!outcome.allowed) fields.set("Retry-After", "1");
    return;
  }
  const RateDecision& d = outcome.decision;
  fields.set("RateLimit-Limit", std::to_string(d.limit));
  fields.set("RateLimit-Remaining", std::to_string(d.remaining));
  fields.set("RateLimit-Reset", std::to_string(d.reset_seconds()));
  fields.set("RateLimit-Policy", policy_value_);
  if (!d.allowed) fields.set("Retry-After", std::to_string(d.reset_seconds()));
}

}  // namespace tronada::cli
