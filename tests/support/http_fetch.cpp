// http_fetch: drives AsyncHTTPClient for the integration tests. Fetches URL `--count`
// times one after the other (or `--parallel` at once) and prints one JSON object per
// response, then one with the pool's statistics:
//
//   http_fetch [--method M] [--body TEXT] [--header 'Name: value']... [--count N]
//              [--parallel N] [--timeout S] [--connect-timeout S] [--no-redirects]
//              [--max-redirects N] [--ca FILE] [--insecure] [--no-decompress]
//              [--stream] [--chunked-body] [--max-body N] [--user U --password P] URL
//
// {"code": 200, "reason": "OK", "body": "...", "headers": {...}, "effective_url": "...",
//  "error": "...", "pieces": N}   ...   {"stats": {"opened": 1, "reused": 2}}
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tronada/async/gather.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/spawn.h"
#include "tronada/http/http_client.h"

using namespace tronada;
using nlohmann::json;

namespace {

struct Options {
  HTTPRequest request;
  int count = 1;
  int parallel = 1;
  bool stream = false;
  bool chunked_body = false;
};

Duration seconds(const char* text) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(std::atof(text)));
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--method") {
      o.request.method = value();
    } else if (a == "--body") {
      o.request.body = value();
    } else if (a == "--header") {
      std::string h = value();
      auto colon = h.find(':');
      o.request.headers.add(h.substr(0, colon), h.substr(h.find_first_not_of(' ', colon + 1)));
    } else if (a == "--count") {
      o.count = std::atoi(value());
    } else if (a == "--parallel") {
      o.parallel = std::atoi(value());
    } else if (a == "--timeout") {
      o.request.request_timeout = seconds(value());
    } else if (a == "--connect-timeout") {
      o.request.connect_timeout = seconds(value());
    } else if (a == "--no-redirects") {
      o.request.follow_redirects = false;
    } else if (a == "--max-redirects") {
      o.request.max_redirects = std::atoi(value());
    } else if (a == "--ca") {
      o.request.ca_certs = value();
    } else if (a == "--insecure") {
      o.request.validate_cert = false;
    } else if (a == "--no-decompress") {
      o.request.decompress_response = false;
    } else if (a == "--stream") {
      o.stream = true;
    } else if (a == "--chunked-body") {
      o.chunked_body = true;
    } else if (a == "--max-body") {
      o.request.max_body_size = std::strtoull(value(), nullptr, 10);
    } else if (a == "--user") {
      o.request.auth_username = value();
    } else if (a == "--password") {
      o.request.auth_password = value();
    } else if (!a.empty() && a[0] != '-' && o.request.url.empty()) {
      o.request.url = a;
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", a.c_str());
      std::exit(2);
    }
  }
  if (o.request.url.empty()) {
    std::fprintf(stderr, "usage: http_fetch [options] URL\n");
    std::exit(2);
  }
  return o;
}

Task<json> fetch_one(HTTPRequest request, bool stream, bool chunked_body) {
  auto pieces = std::make_shared<int>(0);
  auto streamed = std::make_shared<std::string>();
  if (stream) {
    request.streaming_callback = [pieces, streamed](std::string_view p) {
      ++*pieces;
      streamed->append(p);
    };
  }
  if (chunked_body && request.body) {
    std::string all = *request.body;
    request.body.reset();
    request.body_producer = [all](BodyWriter write) -> Future<void> {
      return spawn([](BodyWriter w, std::string text) -> Task<void> {
        for (std::size_t i = 0; i < text.size(); i += 3) {
          Future<void> sent = w(text.substr(i, 3));
          co_await sent;
        }
      }(std::move(write), all));
    };
  }
  json out;
  Future<HTTPResponse> pending = AsyncHTTPClient::instance().fetch(std::move(request), false);
  try {
    HTTPResponse r = co_await pending;
    out["code"] = r.code;
    out["reason"] = r.reason;
    out["body"] = stream ? *streamed : r.body;
    json headers = json::object();
    for (const auto& f : r.headers) headers[f.name] = f.value;
    out["headers"] = headers;
    out["effective_url"] = r.effective_url;
    out["pieces"] = *pieces;
    if (r.error) {
      try {
        r.rethrow();
      } catch (const std::exception& e) {
        out["error"] = e.what();
      }
    }
  } catch (const HTTPClientError& e) {
    out["code"] = e.code;
    out["error"] = e.what();
  } catch (const std::exception& e) {
    out["code"] = 599;
    out["error"] = e.what();
  }
  co_return out;
}

Task<int> run(Options o) {
  for (int done = 0; done < o.count;) {
    std::vector<Task<json>> batch;
    for (int i = 0; i < o.parallel && done < o.count; ++i, ++done) {
      batch.push_back(fetch_one(o.request, o.stream, o.chunked_body));
    }
    std::vector<json> results = co_await gather(std::move(batch));
    for (const auto& r : results) std::printf("%s\n", r.dump().c_str());
  }
  auto stats = AsyncHTTPClient::instance().pool().stats();
  json s = {{"stats", {{"opened", stats.opened}, {"reused", stats.reused}}}};
  std::printf("%s\n", s.dump().c_str());
  std::fflush(stdout);
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  int rc = run_sync([o] { return run(o); });
  AsyncHTTPClient::close_instance();
  return rc;
}
