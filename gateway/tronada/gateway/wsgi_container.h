// WSGIContainer: a RequestHandler that serves a WSGI app (PEP 3333) on any rule.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "tronada/async/future.h"
#include "tronada/gateway/wsgi_application.h"
#include "tronada/web/request_handler.h"
#include "tronada/web/routing.h"

namespace tronada {

class WSGIExchange;

/// Serves every method of the requests its rule matches by calling a WSGI app on the
/// app's worker threads, unlike Tornado's WSGIContainer which ran the app on its IOLoop.
/// The body streams into wsgi.input as it arrives (the app starts on the first piece);
/// the response streams back with backpressure. `script_name` is the mount prefix
/// ("/app"; empty at the root): it becomes SCRIPT_NAME and is cut from PATH_INFO.
///
///   app.add_rule(wsgi_rule("/app", WSGIApplication::load("myproject.wsgi:application")));
class WSGIContainer : public RequestHandler {
 public:
  ~WSGIContainer() override;
  void initialize(const std::shared_ptr<WSGIApplication>& app, const std::string& script_name);

  bool stream_request_body() const override { return true; }
  std::optional<std::uint64_t> max_body_size() const override;
  void data_received(std::string_view chunk) override;
  Task<void> prepare() override;
  void on_connection_close() override;

 private:
  void start();
  void on_done(int status);

  std::shared_ptr<WSGIApplication> app_;
  std::string script_name_;
  std::shared_ptr<WSGIExchange> exchange_;
  bool done_ = false;
  int done_status_ = 0;
  std::optional<Promise<void>> waiting_;
};

/// A rule mounting `app` at `prefix` ("" or "/" for the whole site): matches the prefix
/// itself and everything below it.
Rule wsgi_rule(std::string prefix, std::shared_ptr<WSGIApplication> app);

}  // namespace tronada
