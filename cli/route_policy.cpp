#include "cli/route_policy.h"

#include "tronada/base/log.h"
#include "tronada/http/http_server_request.h"
#include "tronada/loop/io_loop.h"
#include "tronada/web/request_handler.h"

namespace tronada::cli {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

/// Adds `names` to a response's Vary, keeping what the backend said ("*" already covers
/// everything).
void merge_vary(HTTPHeaders& headers, const std::vector<std::string_view>& names) {
  if (names.empty()) return;
  std::string value = headers.get_joined("Vary").value_or("");
  std::vector<std::string_view> present;
  for (std::string_view rest = value; !rest.empty();) {
    auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == "*") return;
    present.push_back(item);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  std::string merged = value;
  for (std::string_view name : names) {
    bool have = false;
    for (std::string_view p : present) have = have || iequals(p, name);
    if (have) continue;
    if (!merged.empty()) merged += ", ";
    merged += name;
  }
  if (merged != value) headers.set("Vary", merged);
}

/// An answer the policy gives by itself: a preflight's 204, a 429, a 503.
class PolicyAnswerHandler final : public RequestHandler {
 public:
  void initialize(int status, const HTTPHeaders& fields, const std::string& body) {
    status_ = status;
    fields_ = fields;
    body_ = body;
  }
  // The request's body is read and dropped, never buffered: a refused upload must not
  // cost memory (a `serve` route may have no body limit at all).
  bool stream_request_body() const override { return true; }
  void data_received(std::string_view) override {}

  Task<void> prepare() override {
    set_status(status_);
    clear_header("Content-Type");
    if (!body_.empty()) set_header("Content-Type", "text/plain; charset=utf-8");
    for (const auto& f : fields_) add_header(f.name, f.value);
    finish(body_);
    co_return;
  }

 private:
  int status_ = 204;
  HTTPHeaders fields_;
  std::string body_;
};

/// The response channel of a request on a policy route: adds the policy's fields to
/// whatever head the backend writes. They may still change after the request started
/// (a Redis answer fills in RateLimit-*), but never after the head went out: the
/// backend's handler only starts once the policy let the request through.
class PolicyConnection final : public HTTPConnection {
 public:
  PolicyConnection(std::shared_ptr<HTTPConnection> inner, bool owns_cors)
      : inner_(std::move(inner)), owns_cors_(owns_cors) {}

  HTTPHeaders extra;
  std::vector<std::string_view> vary;  // views of CorsPolicy's constants

  void write_headers(int status, const HTTPHeaders& headers) override {
    inner_->write_headers(status, merged(headers));
  }
  void write_headers_with_reason(int status, std::string_view reason,
                                 const HTTPHeaders& headers) override {
    inner_->write_headers_with_reason(status, reason, merged(headers));
  }
  void write(std::string_view chunk) override { inner_->write(chunk); }
  void finish() override { inner_->finish(); }
  void abort() override { inner_->abort(); }
  Future<void> drain() override { return inner_->drain(); }
  bool closed() const override { return inner_->closed(); }
  void set_close_callback(std::function<void()> cb) override {
    inner_->set_close_callback(std::move(cb));
  }
  DetachedConnection detach() override { return inner_->detach(); }
  void pause_reading() override { inner_->pause_reading(); }
  void resume_reading() override { inner_->resume_reading(); }
  std::pair<std::string, int> local_address() const override { return inner_->local_address(); }
  void write_response(int status, const HTTPHeaders& headers, std::string_view body) override {
    inner_->write_response(status, merged(headers), body);
  }
  void write_response_with_reason(int status, std::string_view reason, const HTTPHeaders& headers,
                                  std::string_view body) override {
    inner_->write_response_with_reason(status, reason, merged(headers), body);
  }
  void write_head(int status, std::span<const HeaderRef> fields) override {
    inner_->write_headers(status, merged(to_headers(fields)));
  }
  void write_whole_response(int status, std::span<const HeaderRef> fields,
                            std::string_view body) override {
    inner_->write_response(status, merged(to_headers(fields)), body);
  }
  bool can_write_file() const override { return inner_->can_write_file(); }
  void write_file(FileRegion region) override { inner_->write_file(std::move(region)); }

 private:
  static HTTPHeaders to_headers(std::span<const HeaderRef> fields) {
    HTTPHeaders headers;
    headers.reserve(fields.size());
    for (const HeaderRef& f : fields) headers.add(f.name, f.value);
    return headers;
  }
  HTTPHeaders merged(const HTTPHeaders& headers) const {
    HTTPHeaders out = headers;
    if (owns_cors_) {
      out.remove("Access-Control-Allow-Origin");
      out.remove("Access-Control-Allow-Credentials");
      out.remove("Access-Control-Expose-Headers");
    }
    for (const auto& f : extra) out.set(f.name, f.value);
    merge_vary(out, vary);
    return out;
  }

  std::shared_ptr<HTTPConnection> inner_;
  bool owns_cors_;
};

/// One request waiting for its rate limit's answer from Redis. Shared by the gate (the
/// server's delegate for the request) and the callback that brings the answer.
struct GateState {
  enum class Phase { pending, open, refused };
  Phase phase = Phase::pending;
  bool starting = true;              // inside RoutePolicy::start_request (a synchronous answer)
  std::optional<RateOutcome> early;  // an answer that came while starting
  std::shared_ptr<HTTPServerRequest> request;
  std::shared_ptr<PolicyConnection> connection;
  Application* app = nullptr;  // the request pins its route table, and so the app
  std::shared_ptr<RateLimiter> limiter;
  metrics::RouteSeries* series = nullptr;
  std::unique_ptr<HTTPMessageDelegate> inner;
  std::string held;  // body bytes read while pending (at most one read: reading paused)
  bool finished = false;
  bool closed = false;

  void decided(const RateOutcome& outcome);
};

RequestStart refusal(Application& app, const std::shared_ptr<HTTPServerRequest>& request,
                     const RateOutcome& outcome, metrics::RouteSeries* series) {
  int status = outcome.store_error ? 503 : 429;
  std::string body =
      outcome.store_error ? "503 rate limit unavailable\n" : "429 too many requests\n";
  return app.start_request_with(request, handler<PolicyAnswerHandler>(status, HTTPHeaders(), body),
                                series);
}

void GateState::decided(const RateOutcome& outcome) {
  if (closed) {
    inner.reset();
    return;
  }
  limiter->add_headers(outcome, connection->extra);
  if (outcome.allowed) {
    phase = Phase::open;
  } else {
    phase = Phase::refused;
    held.clear();
    inner = refusal(*app, request, outcome, series).delegate;
  }
  connection->resume_reading();
  if (phase == Phase::open && !held.empty()) {
    std::string chunk = std::move(held);
    held.clear();
    inner->data_received(chunk);
  }
  if (finished) inner->finish();
}

/// The server's delegate for a request whose rate limit has not answered yet.
class Gate final : public HTTPMessageDelegate {
 public:
  explicit Gate(std::shared_ptr<GateState> state) : state_(std::move(state)) {}
  void data_received(std::string_view chunk) override {
    switch (state_->phase) {
      case GateState::Phase::pending:
        state_->held.append(chunk);
        break;
      case GateState::Phase::open:
        state_->inner->data_received(chunk);
        break;
      case GateState::Phase::refused:
        break;  // read and dropped: the connection stays usable for the next request
    }
  }
  void finish() override {
    if (state_->phase == GateState::Phase::pending) {
      state_->finished = true;
    } else {
      state_->inner->finish();
    }
  }
  void on_connection_close() override {
    state_->closed = true;
    if (state_->phase != GateState::Phase::pending && state_->inner) {
      state_->inner->on_connection_close();
    }
  }

 private:
  std::shared_ptr<GateState> state_;
};

}  // namespace

RoutePolicy::RoutePolicy(std::shared_ptr<const CorsPolicy> cors,
                         std::shared_ptr<RateLimiter> limiter, metrics::RouteSeries* series)
    : cors_(std::move(cors)), limiter_(std::move(limiter)), series_(series) {}

RequestStart RoutePolicy::start_request(Application& app,
                                        const std::shared_ptr<HTTPServerRequest>& request) {
  auto connection = std::make_shared<PolicyConnection>(request->connection, cors_ != nullptr);
  if (cors_) {
    if (CorsPolicy::is_preflight(request->method, request->headers)) {
      CorsAnswer a = cors_->preflight(
          *request->headers.get("Origin"), *request->headers.get("Access-Control-Request-Method"),
          request->headers.get_joined("Access-Control-Request-Headers").value_or(""));
      connection->extra = std::move(a.fields);
      connection->vary = std::move(a.vary);
      request->connection = std::move(connection);
      return app.start_request_with(
          request, handler<PolicyAnswerHandler>(204, HTTPHeaders(), std::string()), series_);
    }
    CorsAnswer a = cors_->actual(request->headers.get("Origin"));
    connection->extra = std::move(a.fields);
    connection->vary = std::move(a.vary);
  }
  request->connection = connection;
  if (!limiter_) return app.start_request(request);

  auto state = std::make_shared<GateState>();
  state->request = request;
  state->connection = connection;
  state->app = &app;
  state->limiter = limiter_;
  state->series = series_;
  limiter_->check(limiter_->key_of(*request), [state](const RateOutcome& outcome) {
    if (state->starting) {
      state->early = outcome;
      return;
    }
    // From a Redis reply: carry on from the loop, not from inside hiredis's callback.
    IOLoop::current().add_callback([state, outcome] { state->decided(outcome); });
  });
  state->starting = false;
  if (state->early) {
    // Decided at once (the memory store, a Redis store backing off): no gate needed.
    limiter_->add_headers(*state->early, connection->extra);
    if (state->early->allowed) return app.start_request(request);
    return refusal(app, request, *state->early, series_);
  }
  RequestStart start = app.start_request(request);
  state->inner = std::move(start.delegate);
  connection->pause_reading();
  start.delegate = std::make_unique<Gate>(state);
  return start;
}

}  // namespace tronada::cli
