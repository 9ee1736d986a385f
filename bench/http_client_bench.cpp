// http_client_bench: AsyncHTTPClient as a load generator (bench/run.py's `client`
// workload, compared with wrk against the same server).
//
//   build/bin/http_client_bench --port N [--host 127.0.0.1] [--path /] [-c CONNECTIONS]
//                               [-d SECONDS] [-n REQUESTS]
//
// CONNECTIONS coroutines each fetch http://HOST:PORT/PATH in a loop, one request in
// flight each, over one client whose pool keeps CONNECTIONS connections alive (as
// wrk's -c). Stops after SECONDS (or REQUESTS in all, when given) and prints one line
// of JSON: requests, seconds, requests per second, latency percentiles (µs), errors.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tronada/async/gather.h"
#include "tronada/async/run_sync.h"
#include "tronada/http/http_client.h"

using namespace tronada;

namespace {

struct Config {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/";
  int connections = 64;
  double seconds = 5;
  long requests = 0;  // 0: run for `seconds`
};

struct Shared {
  AsyncHTTPClient* client;
  std::string url;
  TimePoint end;
  long budget;  // requests left to start; negative: unlimited
  long done = 0;
  long errors = 0;
  std::vector<std::uint32_t> latencies_us;
};

Task<void> worker(Shared* s) {
  IOLoop& loop = IOLoop::current();
  while (loop.time() < s->end && s->budget != 0) {
    if (s->budget > 0) --s->budget;
    HTTPRequest request(s->url);
    request.decompress_response = false;
    TimePoint start = Clock::now();
    Future<HTTPResponse> pending = s->client->fetch(std::move(request), false);
    try {
      HTTPResponse r = co_await pending;
      if (r.code != 200) ++s->errors;
    } catch (const std::exception&) {
      ++s->errors;
    }
    ++s->done;
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
    s->latencies_us.push_back(static_cast<std::uint32_t>(us));
  }
}

Task<void> run(Config c) {
  AsyncHTTPClientOptions options;
  options.max_clients = static_cast<std::size_t>(c.connections);
  options.max_idle_per_host = options.max_clients;
  options.max_queued = options.max_clients * 2;
  AsyncHTTPClient client(options);
  Shared s;
  s.client = &client;
  s.url = "http://" + c.host + ":" + std::to_string(c.port) + c.path;
  s.budget = c.requests > 0 ? c.requests : -1;
  TimePoint start = Clock::now();
  s.end = IOLoop::current().time() +
          std::chrono::duration_cast<Duration>(std::chrono::duration<double>(c.seconds));
  std::vector<Task<void>> workers;
  for (int i = 0; i < c.connections; ++i) workers.push_back(worker(&s));
  co_await gather(std::move(workers));
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(s.latencies_us.begin(), s.latencies_us.end());
  auto pct = [&](double p) -> std::uint32_t {
    if (s.latencies_us.empty()) return 0;
    return s.latencies_us[std::min(s.latencies_us.size() - 1,
                                   static_cast<std::size_t>(p * s.latencies_us.size()))];
  };
  std::printf(
      "{\"requests\": %ld, \"seconds\": %.3f, \"rps\": %.1f, \"p50_us\": %u, \"p99_us\": %u, "
      "\"errors\": %ld, \"connections_opened\": %llu}\n",
      s.done, secs, secs > 0 ? s.done / secs : 0.0, pct(0.5), pct(0.99), s.errors,
      static_cast<unsigned long long>(client.pool().stats().opened));
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--port")) {
      c.port = std::atoi(value());
    } else if (!std::strcmp(argv[i], "--host")) {
      c.host = value();
    } else if (!std::strcmp(argv[i], "--path")) {
      c.path = value();
    } else if (!std::strcmp(argv[i], "-c")) {
      c.connections = std::max(1, std::atoi(value()));
    } else if (!std::strcmp(argv[i], "-d")) {
      c.seconds = std::atof(value());
    } else if (!std::strcmp(argv[i], "-n")) {
      c.requests = std::atol(value());
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", argv[i]);
      return 2;
    }
  }
  if (c.port <= 0) {
    std::fprintf(stderr, "usage: http_client_bench --port N [-c CONNS] [-d SECONDS] [-n N]\n");
    return 2;
  }
  run_sync([c] { return run(c); });
  return 0;
}
