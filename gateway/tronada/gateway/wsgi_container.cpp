#include "tronada/gateway/wsgi_container.h"

#include "tronada/gateway/wsgi_exchange.h"

namespace tronada {

WSGIContainer::~WSGIContainer() {
  if (exchange_) exchange_->forget_on_done();
}

void WSGIContainer::initialize(const std::shared_ptr<WSGIApplication>& app,
                               const std::string& script_name) {
  app_ = app;
  script_name_ = script_name;
}

std::optional<std::uint64_t> WSGIContainer::max_body_size() const {
  return app_->options().max_body_size;
}

void WSGIContainer::start() {
  // The exchange calls back when the response ended. A handler whose request was
  // abandoned before it ran may go first: its destructor then drops the callback.
  exchange_ = app_->start(shared_request(), script_name_, [this](int status) { on_done(status); });
}

void WSGIContainer::data_received(std::string_view chunk) {
  if (!exchange_) start();
  exchange_->body_received(chunk);
}

Task<void> WSGIContainer::prepare() {
  if (!exchange_) start();
  exchange_->body_ended();
  if (!done_) {
    waiting_.emplace();
    Future<void> finished = waiting_->get_future();
    co_await finished;
  }
  // The exchange answered through the connection directly; count the bytes it sent.
  complete_elsewhere(done_status_ ? done_status_ : 500, exchange_->bytes_sent());
}

void WSGIContainer::on_connection_close() {
  if (exchange_) exchange_->connection_closed();
}

void WSGIContainer::on_done(int status) {
  done_ = true;
  done_status_ = status;
  if (waiting_) waiting_->try_set_result();
}

Rule wsgi_rule(std::string prefix, std::shared_ptr<WSGIApplication> app) {
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  std::string pattern;
  for (char c : prefix) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) pattern += '\\';
    pattern += c;
  }
  // Mounted at the root, the app also gets `OPTIONS *` (PATH_INFO "*"), as under gunicorn.
  pattern += prefix.empty() ? "(?:/.*|\\*)" : "(?:/.*)?";
  return Rule(pattern, handler<WSGIContainer>(std::move(app), std::move(prefix)));
}

}  // namespace tronada
