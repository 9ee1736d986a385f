#include "tronada/http/http_client.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "tronada/async/spawn.h"
#include "tronada/async/task.h"
#include "tronada/base/error.h"
#include "tronada/http/http_client_exchange.h"
#include "tronada/net/ssl_context.h"

namespace tronada {

namespace {

// The shared clients of this thread's loops. Entries are destroyed by close_instance();
// one still here at thread exit is leaked on purpose, because its loop may already be
// gone and closing its connections would touch freed libuv handles.
struct InstanceCache {
  std::unordered_map<IOLoop*, AsyncHTTPClient*> clients;
  ~InstanceCache() = default;
};
thread_local InstanceCache instances;

// TLS contexts built for validate_cert / ca_certs, shared by every client of the
// thread: endpoint keys compare contexts by identity, so equal settings must give the
// same context for connections to be reused.
std::shared_ptr<SSLContext> client_ssl_context(bool validate, const std::string& ca_file) {
  thread_local std::map<std::pair<bool, std::string>, std::shared_ptr<SSLContext>> contexts;
  auto key = std::make_pair(validate, ca_file);
  auto it = contexts.find(key);
  if (it != contexts.end()) return it->second;
  SSLClientConfig config;
  config.verify_peer = validate;
  config.check_hostname = validate;
  config.ca_file = ca_file;
  auto ctx = SSLContext::client(std::move(config));
  if (contexts.size() < 64) contexts.emplace(key, ctx);
  return ctx;
}

bool is_redirect(int code) {
  return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

Duration remaining_until(IOLoop& loop, TimePoint deadline) {
  if (deadline == TimePoint::max()) return Duration::zero();
  Duration left = deadline - loop.time();
  if (left <= Duration::zero()) throw HTTPTimeoutError("Timeout during request");
  return left;
}

Task<HTTPResponse> fetch_task(std::weak_ptr<AsyncHTTPClient*> alive, HTTPRequest request,
                              bool raise_error) {
  AsyncHTTPClient* client = *alive.lock();
  IOLoop& loop = client->loop();
  const AsyncHTTPClientOptions& options = client->options();
  std::size_t max_body = request.max_body_size ? request.max_body_size : options.max_body_size;
  std::size_t max_header = options.max_header_size;
  std::string user_agent = options.user_agent;
  TimePoint start = loop.time();
  TimePoint deadline = request.request_timeout > Duration::zero() ? start + request.request_timeout
                                                                  : TimePoint::max();
  std::string url = request.url;
  std::string method = request.method;
  HTTPResponse response;
  for (int redirects = 0;; ++redirects) {
    ClientURL target = parse_client_url(url);
    Endpoint endpoint;
    endpoint.scheme = target.scheme;
    endpoint.host = target.host;
    endpoint.port = target.port;
    endpoint.unix_path = target.unix_path;
    if (target.tls()) {
      endpoint.ssl = request.ssl_context
                         ? request.ssl_context
                         : client_ssl_context(request.validate_cert, request.ca_certs);
    }
    std::string peer = endpoint.describe();
    detail::ExchangeResult result;
    for (int attempt = 0;; ++attempt) {
      auto owner = alive.lock();
      if (!owner) throw HTTPStreamClosedError("the HTTP client was closed");
      Duration left = remaining_until(loop, deadline);
      Duration acquire_timeout = request.connect_timeout;
      if (left > Duration::zero() &&
          (acquire_timeout == Duration::zero() || left < acquire_timeout)) {
        acquire_timeout = left;
      }
      // Serialized first: a request we refuse to send must not cost a connection.
      detail::ExchangeParams params;
      std::string body = request.body.value_or("");
      params.framing =
          serialize_request_head(request, target, method, body.size(), user_agent, params.head);
      params.body = std::move(body);
      params.body_producer = request.body_producer;
      params.head_request = method == "HEAD";
      params.max_header_size = max_header;
      params.max_body_size = max_body;
      params.decompress = request.decompress_response;
      params.streaming_callback = request.streaming_callback;
      params.header_callback = request.header_callback;
      params.peer = peer;
      Future<PooledConnection> acquiring =
          (*owner)->pool().acquire(endpoint, acquire_timeout, attempt == 0);
      owner.reset();
      PooledConnection connection;
      try {
        connection = co_await acquiring;
      } catch (const TimeoutError&) {
        throw HTTPTimeoutError("Timeout while connecting to " + peer);
      }
      params.timeout = remaining_until(loop, deadline);
      Future<detail::ExchangeResult> exchanging =
          detail::run_exchange(std::move(connection), std::move(params));
      bool retry = false;
      try {
        result = co_await exchanging;
      } catch (const detail::StaleConnectionError&) {
        if (attempt > 0 || !is_idempotent_method(method) || request.body_producer) throw;
        retry = true;
      }
      if (!retry) break;
    }
    response.code = result.head.status;
    response.reason = std::move(result.head.reason);
    response.headers = std::move(result.head.headers);
    response.body = std::move(result.body);
    response.effective_url = target.to_string();
    auto location = response.headers.get("Location");
    if (request.follow_redirects && redirects < request.max_redirects &&
        is_redirect(response.code) && location &&
        !((response.code == 307 || response.code == 308) && request.body_producer)) {
      std::string next = resolve_redirect(target, *location);
      ClientURL next_url = parse_client_url(next);
      if (response.code == 303 ||
          ((response.code == 301 || response.code == 302) && method != "HEAD" && method != "GET")) {
        method = "GET";
        request.body.reset();
        request.body_producer = nullptr;
        request.headers.remove("Content-Length");
        request.headers.remove("Content-Type");
        request.headers.remove("Transfer-Encoding");
      }
      request.headers.remove("Host");
      if (next_url.host != target.host || next_url.port != target.port ||
          next_url.scheme != target.scheme || next_url.unix_path != target.unix_path) {
        // Credentials were meant for the first origin only.
        request.headers.remove("Authorization");
        request.auth_username.clear();
        request.auth_password.clear();
      }
      url = std::move(next);
      continue;
    }
    break;
  }
  response.request_time = loop.time() - start;
  if (response.code < 200 || response.code >= 300) {
    auto copy = std::make_shared<const HTTPResponse>(response);
    response.error = std::make_exception_ptr(HTTPClientError(
        response.code, response.reason.empty() ? "Unknown" : response.reason, copy));
    if (raise_error) std::rethrow_exception(response.error);
  }
  co_return response;
}

}  // namespace

AsyncHTTPClient::AsyncHTTPClient(AsyncHTTPClientOptions options, IOLoop* loop)
    : loop_(loop ? loop : &IOLoop::current()),
      options_(std::move(options)),
      alive_(std::make_shared<AsyncHTTPClient*>(this)) {
  ConnectionPoolOptions pool;
  pool.max_total = std::max<std::size_t>(options_.max_clients, 1);
  pool.max_per_endpoint = options_.max_per_host ? options_.max_per_host : pool.max_total;
  pool.max_idle_per_endpoint = options_.max_idle_per_host;
  pool.idle_timeout = options_.idle_timeout;
  pool.max_waiters = options_.max_queued;
  pool_ = std::make_unique<ConnectionPool>(std::move(pool), loop_);
}

AsyncHTTPClient::~AsyncHTTPClient() {
  alive_.reset();
  pool_->close();
}

AsyncHTTPClient& AsyncHTTPClient::instance(IOLoop* loop) {
  IOLoop* l = loop ? loop : &IOLoop::current();
  auto it = instances.clients.find(l);
  if (it != instances.clients.end()) return *it->second;
  auto* client = new AsyncHTTPClient(AsyncHTTPClientOptions{}, l);
  instances.clients.emplace(l, client);
  return *client;
}

void AsyncHTTPClient::close_instance(IOLoop* loop) {
  IOLoop* l = loop ? loop : IOLoop::current_or_null();
  auto it = instances.clients.find(l);
  if (it == instances.clients.end()) return;
  AsyncHTTPClient* client = it->second;
  instances.clients.erase(it);
  delete client;
}

Future<HTTPResponse> AsyncHTTPClient::fetch(HTTPRequest request, bool raise_error) {
  return spawn(fetch_task(alive_, std::move(request), raise_error));
}

Future<HTTPResponse> AsyncHTTPClient::fetch(std::string url, bool raise_error) {
  return fetch(HTTPRequest(std::move(url)), raise_error);
}

void AsyncHTTPClient::fetch(HTTPRequest request, std::function<void(HTTPResponse)> callback) {
  Future<HTTPResponse> future = spawn(fetch_task(alive_, std::move(request), false));
  IOLoop* loop = loop_;
  future.add_done_callback([weak = future.weak_state(), loop, callback = std::move(callback)] {
    auto state = weak.lock();
    if (!state) return;
    Future<HTTPResponse> done(state);
    HTTPResponse response;
    if (auto error = done.exception()) {
      response.code = 599;
      response.error = error;
      try {
        std::rethrow_exception(error);
      } catch (const HTTPClientError& e) {
        response.code = e.code;
        response.reason = e.what();
      } catch (const std::exception& e) {
        response.reason = e.what();
      } catch (...) {
      }
    } else {
      response = done.result();
    }
    loop->add_callback(
        [callback, response = std::move(response)]() mutable { callback(std::move(response)); });
  });
}

}  // namespace tronada
