#include "cli/redis_rate_store.h"

#include <openssl/sha.h>

#include <cstdio>

namespace tronada::cli {

namespace {

// KEYS[1]: this window's counter, KEYS[2]: the previous window's.
// ARGV: limit, period (ms), ms left in this window (how much of the previous one the
// sliding window still covers). Returns {allowed (0/1), previous, current before}.
// The estimate is the same integer arithmetic as RateWindow::estimate, so C++ decides
// the headers from the counts without a second opinion.
const char* const kScript = R"(local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local left = tonumber(ARGV[3])
local used = current + math.floor(previous * left / period)
if used < limit then
  redis.call('INCR', KEYS[1])
  redis.call('PEXPIRE', KEYS[1], period * 2)
  return {1, previous, current}
end
return {0, previous, current}
)";

std::string sha1_hex(const std::string& text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  std::string out;
  char buf[3];
  for (unsigned char c : digest) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

}  // namespace

struct RedisRateStore::State {
  explicit State(redis::ConnectOptions options) : client(std::move(options)) {}
  redis::Client client;
  TimePoint down_until{};
};

const std::string& RedisRateStore::script() {
  static const std::string text(kScript);
  return text;
}

RedisRateStore::RedisRateStore(RateWindow window, Options options)
    : window_(window), options_(std::move(options)) {
  redis::ConnectOptions connect = options_.connect;
  connect.command_timeout = options_.timeout;
  // The command's own deadline covers a connect that hangs (it runs from when the
  // command is queued); the connect timeout only bounds the socket left behind.
  connect.connect_timeout = std::max<Duration>(options_.timeout, std::chrono::seconds(1));
  state_ = std::make_shared<State>(std::move(connect));
}

RedisRateStore::~RedisRateStore() {
  state_->client.close();
}

namespace {

/// One request's trip to Redis: what to decide with and whom to tell.
struct Hit {
  RateWindow window;
  std::int64_t now_ms;
  RedisRateStore::Done done;
  std::function<void()> back_off;

  void replied(const redis::Reply& reply) {
    if (reply.type != redis::Reply::Type::array || reply.elements.size() != 3) {
      failed("unexpected reply from the rate-limit script");
      return;
    }
    RateDecision d = window.decide(reply.elements[1].integer, reply.elements[2].integer, now_ms);
    // Redis decided on the counts every instance added: its verdict stands.
    d.allowed = reply.elements[0].integer == 1;
    if (!d.allowed) d.remaining = 0;
    done(d, "");
  }
  void failed(std::string_view why) {
    back_off();
    done(std::nullopt, why);
  }
};

std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown error";
  }
}

bool is_noscript(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const redis::ServerError& ex) {
    return std::string_view(ex.what()).starts_with("NOSCRIPT");
  } catch (...) {
    return false;
  }
}

}  // namespace

void RedisRateStore::hit(std::string_view key, std::int64_t now_ms, Done done) {
  static const std::string sha = sha1_hex(script());
  if (Clock::now() < state_->down_until) {
    done(std::nullopt, "backing off after an error");
    return;
  }
  std::int64_t w = window_.window(now_ms);
  std::string base = options_.prefix;
  base.append(key);
  base += ':';
  std::vector<std::string> args = {"EVALSHA",
                                   sha,
                                   "2",
                                   base + std::to_string(w),
                                   base + std::to_string(w - 1),
                                   std::to_string(window_.limit()),
                                   std::to_string(window_.period_ms()),
                                   std::to_string(window_.until_window_end(now_ms))};
  auto hit =
      std::make_shared<Hit>(Hit{window_, now_ms, std::move(done),
                                [weak = std::weak_ptr<State>(state_), backoff = options_.backoff] {
                                  if (auto s = weak.lock()) s->down_until = Clock::now() + backoff;
                                }});
  // EVALSHA first; a server that does not know the script yet (NOSCRIPT: just started,
  // restarted, flushed) gets it by EVAL once, which also caches it for the next EVALSHA.
  Future<redis::Reply> first;
  try {
    first = state_->client.command(args);
  } catch (const std::exception& e) {
    // Opening a connection can throw (out of memory, a failed fd watch): the request
    // is decided like any other store failure, never failed with it.
    hit->failed(e.what());
    return;
  }
  first.add_done_callback(
      [hit, args, weak_store = std::weak_ptr<State>(state_), weak = first.weak_state()]() mutable {
        auto s = weak.lock();
        if (!s) return;
        if (!s->exception) {
          hit->replied(*s->value);
          return;
        }
        auto store = weak_store.lock();
        if (!store || !is_noscript(s->exception)) {
          hit->failed(describe(s->exception));
          return;
        }
        args[0] = "EVAL";
        args[1] = script();
        Future<redis::Reply> second;
        try {
          second = store->client.command(args);
        } catch (const std::exception& e) {
          hit->failed(e.what());
          return;
        }
        second.add_done_callback([hit, weak2 = second.weak_state()] {
          auto s2 = weak2.lock();
          if (!s2) return;
          if (s2->exception) {
            hit->failed(describe(s2->exception));
          } else {
            hit->replied(*s2->value);
          }
        });
      });
}

}  // namespace tronada::cli
