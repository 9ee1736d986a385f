// RequestHandler: one instance per request, as tornado.web.RequestHandler.
#pragma once

#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// The whole JSON type, not its forward declaration: write_json({...}), json_body() and
// render() take or return it by value, and a handler should compile with this header alone.
#include <nlohmann/json.hpp>

#include "tronada/async/detail/pool_allocator.h"
#include "tronada/async/future.h"
#include "tronada/async/task.h"
#include "tronada/http/http_headers.h"
#include "tronada/http/http_server_request.h"

namespace tronada {

namespace metrics {
struct RouteSeries;
}  // namespace metrics

class Application;
struct CookieOptions;

/// Thrown from a handler to answer with `status` (Tornado's HTTPError). `log_message`
/// goes to the log, never to the client.
class HTTPError : public std::runtime_error {
 public:
  explicit HTTPError(int status, std::string log_message = "")
      : std::runtime_error(log_message.empty() ? "HTTP " + std::to_string(status) : log_message),
        status(status),
        log_message(std::move(log_message)) {}
  int status;
  std::string log_message;
};

/// A file from a multipart/form-data body.
struct UploadedFile {
  std::string filename;
  std::string content_type;
  std::string body;
};

/// Handles one request. Subclass it and override the methods you serve; each is a
/// coroutine (`Task<void> get() override { write("hi"); co_return; }`). The response is
/// finished automatically when the method's task ends, unless the handler called
/// `keep_open()` (Tornado's @asynchronous) and finishes later, from a callback.
///
/// Order of calls: initialize (from the rule's arguments, before anything else),
/// prepare, the HTTP method, on_finish. on_connection_close runs if the client goes away
/// first. Unsupported methods get 405 with Allow; exceptions become send_error(500),
/// HTTPError its status.
///
/// Handlers are made with `new` by their factory, one per request; their memory comes
/// from a per-thread pool (detail::PooledObject), so a keep-alive request costs no heap
/// allocation for it in the steady state.
class RequestHandler : public detail::PooledObject {
 public:
  RequestHandler();
  virtual ~RequestHandler();
  RequestHandler(const RequestHandler&) = delete;
  RequestHandler& operator=(const RequestHandler&) = delete;

  // --- what subclasses override ---
  virtual Task<void> prepare();
  virtual Task<void> get();
  virtual Task<void> head();
  virtual Task<void> post();
  virtual Task<void> put();
  virtual Task<void> patch();
  virtual Task<void> delete_();  // DELETE ("delete" is a C++ keyword)
  virtual Task<void> options();
  virtual void on_finish() {}
  virtual void on_connection_close() {}
  /// Writes the error page for send_error; the default is a short HTML page, with the
  /// exception's text only when the application runs in debug mode.
  virtual void write_error(int status, std::exception_ptr error);
  /// Stream the request body to data_received instead of buffering it
  /// (Tornado's @stream_request_body). The body limit is then max_body_size().
  virtual bool stream_request_body() const { return false; }
  virtual void data_received(std::string_view chunk) { (void)chunk; }
  /// Body size limit for this handler; nullopt keeps the application's.
  virtual std::optional<std::uint64_t> max_body_size() const { return std::nullopt; }
  /// Methods this handler answers (for 405's Allow): by default the ones overridden is
  /// not knowable in C++, so list them: {"GET", "POST"}. Empty: GET and HEAD.
  virtual std::vector<std::string> allowed_methods() const { return {}; }

  // --- the request ---
  HTTPServerRequest& request() { return *request_; }
  const HTTPServerRequest& request() const { return *request_; }
  Application& application() { return *application_; }
  const std::vector<std::string>& path_args() const { return path_args_; }
  const std::map<std::string, std::string>& path_kwargs() const { return path_kwargs_; }

  /// The last value of argument `name` from the query or a form body; HTTPError(400)
  /// if missing and no default is given (Tornado's MissingArgumentError).
  std::string get_argument(std::string_view name) const;
  std::string get_argument(std::string_view name, std::string_view default_value) const;
  std::vector<std::string> get_arguments(std::string_view name) const;
  std::optional<std::string> get_query_argument(std::string_view name) const;
  std::vector<std::string> get_query_arguments(std::string_view name) const;
  std::optional<std::string> get_body_argument(std::string_view name) const;
  std::vector<std::string> get_body_arguments(std::string_view name) const;
  /// Uploaded files of a multipart body, by field name.
  const std::vector<UploadedFile>& files(std::string_view name) const;

  // --- the response ---
  void set_status(int status);
  int get_status() const { return status_; }
  /// Response body bytes handed to the connection so far (for access logs).
  std::uint64_t bytes_written() const { return bytes_written_; }
  void set_header(std::string_view name, std::string_view value);
  void add_header(std::string_view name, std::string_view value);
  void clear_header(std::string_view name);
  HTTPHeaders& response_headers() { return headers_; }
  /// Appends to the response body (buffered until flush or finish).
  void write(std::string_view chunk);
  /// Writes `value` as JSON and sets Content-Type: application/json.
  void write_json(const nlohmann::json& value);
  /// The request body parsed as JSON; HTTPError(400) if it is not valid JSON.
  nlohmann::json json_body() const;
  /// Sends what was written so far (headers first) and completes once the client took
  /// it, so a handler streaming a large body keeps memory bounded.
  Future<void> flush();
  /// Ends the response. Called for you when the method's task ends (unless keep_open).
  void finish();
  void finish(std::string_view chunk);
  /// Redirects with 302 (or 301 when permanent, or `status`).
  void redirect(std::string_view url, bool permanent = false, int status = 0);
  /// Answers with an error page (write_error) unless headers were already sent, in
  /// which case the connection is closed.
  void send_error(int status = 500, std::exception_ptr error = nullptr);
  /// Keeps the request open after the method returns; finish() it later.
  void keep_open() { auto_finish_ = false; }
  bool finished() const { return finished_; }
  /// The status line and headers were handed to the connection.
  bool headers_written() const { return headers_written_; }

  // --- cookies ---
  std::optional<std::string> get_cookie(std::string_view name) const;
  void set_cookie(std::string_view name, std::string_view value, const CookieOptions& options);
  void set_cookie(std::string_view name, std::string_view value);
  void clear_cookie(std::string_view name, std::string_view path = "/",
                    std::string_view domain = "");
  /// A cookie signed with the application's cookie_secret; nullopt if missing, tampered
  /// with or older than max_age_days.
  std::optional<std::string> get_signed_cookie(std::string_view name, int max_age_days = 31) const;
  void set_signed_cookie(std::string_view name, std::string_view value,
                         const CookieOptions& options);
  void set_signed_cookie(std::string_view name, std::string_view value);

  // --- XSRF ---
  /// This user's XSRF token (sets the _xsrf cookie on first use).
  std::string xsrf_token();
  /// `<input type="hidden" name="_xsrf" value="...">` for forms.
  std::string xsrf_form_html();
  /// Raises HTTPError(403) unless the _xsrf argument or X-XSRFToken / X-CSRFToken header
  /// matches the _xsrf cookie. Run automatically for POST/PUT/PATCH/DELETE when the
  /// application has xsrf_cookies on.
  void check_xsrf_cookie();

  // --- templates, URLs ---
  /// Renders the mustache template `name` from the template path with `data` (a JSON
  /// object) and finishes with it. HTML-escaped by default.
  void render(std::string_view name, const nlohmann::json& data);
  std::string render_string(std::string_view name, const nlohmann::json& data);
  std::string reverse_url(std::string_view name, const std::vector<std::string>& args = {}) const;
  /// A URL for a static file with a version query string (?v=hash) for caching.
  std::string static_url(std::string_view path) const;

 protected:
  /// The request as shared, for what outlives one call of the handler (a gateway's
  /// exchange, StaticFiles' coroutine).
  const std::shared_ptr<HTTPServerRequest>& shared_request() const { return request_; }
  /// The response went out elsewhere, straight through the connection (StaticFiles, a
  /// gateway, a tunnel), not through write() and finish(): account it as finished with
  /// `status` and `body_bytes`, so that the framework writes no second response, and
  /// run on_finish and the access log as finish() does. Nothing is written.
  void complete_elsewhere(int status, std::uint64_t body_bytes);
  /// This handler's owning pointer, for a handler that must outlive its request's task
  /// (WebSocketHandler hands it to the WebSocket). Only while the HTTP method runs:
  /// nullptr before and after.
  std::shared_ptr<RequestHandler> shared_self() const {
    return running_ ? *running_ : std::shared_ptr<RequestHandler>();
  }
  /// For a handler that took its connection over (detach()) and lives on after the
  /// exchange was completed elsewhere: frees what only the exchange needed, the response's
  /// header fields and body buffer, the parsed arguments, and the request's header fields,
  /// body and response channel (which holds the HTTP/1 connection). request() keeps its
  /// request line, addresses and host, and its header fields if `keep_request_headers`.
  void release_exchange(bool keep_request_headers = false);

 private:
  friend class Application;
  friend class HandlerRunner;

  /// Runs the whole request: arguments, XSRF check, prepare, the method, finish.
  /// `self` owns this handler and outlives the task (it is the caller's frame's).
  Task<void> execute(const std::shared_ptr<RequestHandler>& self);
  void parse_body_arguments();
  void flush_headers_if_needed();
  void log_request();

  std::shared_ptr<HTTPServerRequest> request_;
  Application* application_ = nullptr;
  std::vector<std::string> path_args_;
  std::map<std::string, std::string> path_kwargs_;

  struct Arguments;
  std::unique_ptr<Arguments> arguments_;

  int status_ = 200;
  HTTPHeaders headers_;
  std::string body_;
  bool headers_written_ = false;
  bool finished_ = false;
  bool auto_finish_ = true;
  bool connection_closed_ = false;
  std::uint64_t bytes_written_ = 0;
  std::uint64_t bytes_received_ = 0;         // streamed body bytes (a buffered body is in request_)
  metrics::RouteSeries* metrics_ = nullptr;  // the rule's counters, or nullptr
  std::optional<std::string> xsrf_token_;
  std::optional<Promise<void>> finished_promise_;
  // The caller's owning pointer while execute() runs (see shared_self()): a pointer to
  // it rather than a weak_ptr, so that requests pay no reference counting for it.
  const std::shared_ptr<RequestHandler>* running_ = nullptr;
};

}  // namespace tronada
