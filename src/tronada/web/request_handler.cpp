#include "tronada/web/request_handler.h"

#include <kainjow/mustache.hpp>
#include <nlohmann/json.hpp>

#include <chrono>

#include "tronada/base/log.h"
#include "tronada/http/cookies.h"
#include "tronada/http/form_data.h"
#include "tronada/http/http_status.h"
#include "tronada/http/multipart.h"
#include "tronada/metrics/route_series.h"
#include "tronada/net/iostream.h"
#include "tronada/web/application.h"
#include "tronada/web/response_transforms.h"
#include "tronada/web/signed_value.h"

namespace tronada {

// Made on first use, for a request with a query or body: pooled like the handler.
struct RequestHandler::Arguments : detail::PooledObject {
  QueryArguments query;
  QueryArguments body;
  std::map<std::string, std::vector<UploadedFile>, std::less<>> files;
  bool parsed = false;
};

namespace {

const std::vector<UploadedFile> kNoFiles;

std::string html_escape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

bool method_needs_xsrf(std::string_view m) {
  return m != "GET" && m != "HEAD" && m != "OPTIONS";
}

kainjow::mustache::data to_mustache(const nlohmann::json& j) {
  using kainjow::mustache::data;
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      data d{data::type::object};
      for (auto it = j.begin(); it != j.end(); ++it) d.set(it.key(), to_mustache(it.value()));
      return d;
    }
    case nlohmann::json::value_t::array: {
      data d{data::type::list};
      for (const auto& e : j) d.push_back(to_mustache(e));
      return d;
    }
    case nlohmann::json::value_t::string:
      return data(j.get<std::string>());
    case nlohmann::json::value_t::boolean:
      return j.get<bool>() ? data(data::type::bool_true) : data(data::type::bool_false);
    case nlohmann::json::value_t::null:
      return data(data::type::bool_false);
    default:
      return data(j.dump());
  }
}

}  // namespace

// Arguments are made on first use: most requests have no query or body to parse.
RequestHandler::RequestHandler() = default;
RequestHandler::~RequestHandler() = default;

Task<void> RequestHandler::prepare() {
  co_return;
}
Task<void> RequestHandler::get() {
  throw HTTPError(405);
}
Task<void> RequestHandler::head() {
  throw HTTPError(405);
}
Task<void> RequestHandler::post() {
  throw HTTPError(405);
}
Task<void> RequestHandler::put() {
  throw HTTPError(405);
}
Task<void> RequestHandler::patch() {
  throw HTTPError(405);
}
Task<void> RequestHandler::delete_() {
  throw HTTPError(405);
}
Task<void> RequestHandler::options() {
  throw HTTPError(405);
}

// --- execution ---------------------------------------------------------------

Task<void> RequestHandler::execute(const std::shared_ptr<RequestHandler>& self) {
  running_ = &self;
  struct Unset {
    const std::shared_ptr<RequestHandler>** p;
    ~Unset() { *p = nullptr; }
  } unset{&running_};
  const std::string& method = request_->method;
  try {
    if (!request_->body.empty() || !request_->query.empty()) parse_body_arguments();
    if (application_->settings().xsrf_cookies && method_needs_xsrf(method)) check_xsrf_cookie();
    co_await prepare();
    if (!finished_) {
      if (method == "GET") {
        co_await get();
      } else if (method == "POST") {
        co_await post();
      } else if (method == "HEAD") {
        co_await head();
      } else if (method == "PUT") {
        co_await put();
      } else if (method == "DELETE") {
        co_await delete_();
      } else if (method == "PATCH") {
        co_await patch();
      } else if (method == "OPTIONS") {
        co_await options();
      } else {
        throw HTTPError(405);
      }
    }
    if (!finished_) {
      if (auto_finish_) {
        finish();
      } else if (!connection_closed_) {
        // Tornado's @asynchronous: the handler finishes later from a callback; the task
        // waits for it so the handler stays alive until then.
        finished_promise_.emplace();
        Future<void> done = finished_promise_->get_future();
        co_await done;
      }
    }
  } catch (const HTTPError& e) {
    if (e.status >= 500 || !e.log_message.empty()) {
      log::warning("web", std::to_string(e.status) + " " + request_->method + " " + request_->uri +
                              ": " + e.log_message);
    }
    if (!finished_) send_error(e.status, std::current_exception());
  } catch (const std::exception& e) {
    log::error("web",
               "uncaught exception in " + request_->method + " " + request_->uri + ": " + e.what());
    if (!finished_) send_error(500, std::current_exception());
  } catch (...) {
    log::error("web", "uncaught exception in " + request_->method + " " + request_->uri);
    if (!finished_) send_error(500, std::current_exception());
  }
}

void RequestHandler::parse_body_arguments() {
  if (!arguments_) arguments_ = std::make_unique<Arguments>();
  Arguments& a = *arguments_;
  if (a.parsed) return;
  a.parsed = true;
  try {
    a.query = parse_query_string(request_->query);
    if (request_->body.empty()) return;
    std::string_view type = request_->headers.get("Content-Type").value_or("");
    // Media types are case-insensitive.
    if (detail::iequals(type.substr(0, 33), "application/x-www-form-urlencoded")) {
      a.body = parse_query_string(request_->body);
    } else if (detail::iequals(type.substr(0, 19), "multipart/form-data")) {
      auto boundary = parse_boundary(type);
      if (!boundary) throw HTTPError(400, "multipart body without a boundary");
      auto parsed = parse_multipart(request_->body, *boundary);
      a.body = std::move(parsed.fields);
      for (auto& f : parsed.files) {
        a.files[f.name].push_back(
            UploadedFile{std::move(f.filename), std::move(f.content_type), std::move(f.body)});
      }
    }
  } catch (const HTTPError&) {
    throw;
  } catch (const std::exception& e) {
    throw HTTPError(400, std::string("malformed request arguments: ") + e.what());
  }
}

// --- arguments ---------------------------------------------------------------

std::vector<std::string> RequestHandler::get_query_arguments(std::string_view name) const {
  const_cast<RequestHandler*>(this)->parse_body_arguments();
  auto values = arguments_->query.get_all(name);
  return {values.begin(), values.end()};
}

std::vector<std::string> RequestHandler::get_body_arguments(std::string_view name) const {
  const_cast<RequestHandler*>(this)->parse_body_arguments();
  auto values = arguments_->body.get_all(name);
  return {values.begin(), values.end()};
}

std::vector<std::string> RequestHandler::get_arguments(std::string_view name) const {
  auto all = get_query_arguments(name);
  auto body = get_body_arguments(name);
  all.insert(all.end(), body.begin(), body.end());
  return all;
}

std::optional<std::string> RequestHandler::get_query_argument(std::string_view name) const {
  auto v = get_query_arguments(name);
  if (v.empty()) return std::nullopt;
  return v.back();
}

std::optional<std::string> RequestHandler::get_body_argument(std::string_view name) const {
  auto v = get_body_arguments(name);
  if (v.empty()) return std::nullopt;
  return v.back();
}

std::string RequestHandler::get_argument(std::string_view name) const {
  auto v = get_arguments(name);
  if (v.empty()) throw HTTPError(400, "missing argument " + std::string(name));
  return v.back();
}

std::string RequestHandler::get_argument(std::string_view name,
                                         std::string_view default_value) const {
  auto v = get_arguments(name);
  return v.empty() ? std::string(default_value) : v.back();
}

const std::vector<UploadedFile>& RequestHandler::files(std::string_view name) const {
  const_cast<RequestHandler*>(this)->parse_body_arguments();
  auto it = arguments_->files.find(name);
  return it == arguments_->files.end() ? kNoFiles : it->second;
}

nlohmann::json RequestHandler::json_body() const {
  try {
    return nlohmann::json::parse(request_->body);
  } catch (const nlohmann::json::exception& e) {
    throw HTTPError(400, std::string("invalid JSON body: ") + e.what());
  }
}

// --- response ----------------------------------------------------------------

void RequestHandler::set_status(int status) {
  if (status < 100 || status > 999) throw std::invalid_argument("bad HTTP status");
  status_ = status;
}

void RequestHandler::set_header(std::string_view name, std::string_view value) {
  if (!is_valid_header_name(name) || !is_valid_header_value(value)) {
    throw std::invalid_argument("unsafe header value for " + std::string(name));
  }
  headers_.set(name, value);
}

void RequestHandler::add_header(std::string_view name, std::string_view value) {
  if (!is_valid_header_name(name) || !is_valid_header_value(value)) {
    throw std::invalid_argument("unsafe header value for " + std::string(name));
  }
  headers_.add(name, value);
}

void RequestHandler::clear_header(std::string_view name) {
  headers_.remove(name);
}

void RequestHandler::write(std::string_view chunk) {
  if (finished_) throw std::logic_error("write() after finish()");
  body_.append(chunk);
}

void RequestHandler::write_json(const nlohmann::json& value) {
  set_header("Content-Type", "application/json; charset=UTF-8");
  write(value.dump());
}

void RequestHandler::flush_headers_if_needed() {
  if (headers_written_) return;
  headers_written_ = true;
  request_->connection->write_headers(status_, headers_);
}

Future<void> RequestHandler::flush() {
  if (finished_) throw std::logic_error("flush() after finish()");
  flush_headers_if_needed();
  if (!body_.empty()) {
    bytes_written_ += body_.size();
    request_->connection->write(body_);
    body_.clear();
  }
  return request_->connection->drain();
}

void RequestHandler::finish(std::string_view chunk) {
  write(chunk);
  finish();
}

void RequestHandler::finish() {
  if (finished_) throw std::logic_error("finish() called twice");
  HTTPConnection& conn = *request_->connection;
  if (!headers_written_) {
    if (status_ == 200 && (request_->method == "GET" || request_->method == "HEAD") &&
        !headers_.contains("ETag")) {
      // A buffered response can carry an ETag for free, and answer a matching
      // If-None-Match with 304 (Tornado's compute_etag / check_etag_header).
      headers_.add("ETag", compute_etag_text(body_).view());  // none yet: checked above
      if (auto inm = request_->headers.get("If-None-Match");
          inm && etag_matches(*inm, *headers_.get("ETag"))) {
        status_ = 304;
        body_.clear();
      }
    }
    if (status_ == 304 || status_ == 204) {
      headers_.remove("Content-Type");
      body_.clear();
    } else {
      if (application_->settings().compress_response) {
        maybe_gzip(request_->headers, headers_, body_);
      }
      headers_.set("Content-Length", std::to_string(body_.size()));
    }
    headers_written_ = true;
    bytes_written_ += body_.size();
    conn.write_response(status_, headers_, body_);
  } else {
    if (!body_.empty()) {
      bytes_written_ += body_.size();
      conn.write(body_);
    }
    conn.finish();
  }
  body_.clear();
  finished_ = true;
  request_->mark_finished();
  IOLoop::invoke_logged("on_finish", [this] { on_finish(); });
  log_request();
  if (finished_promise_) finished_promise_->try_set_result();
}

void RequestHandler::complete_elsewhere(int status, std::uint64_t body_bytes) {
  status_ = status;
  bytes_written_ = body_bytes;
  headers_written_ = true;
  finished_ = true;
  request_->mark_finished();
  IOLoop::invoke_logged("on_finish", [this] { on_finish(); });
  log_request();
  if (finished_promise_) finished_promise_->try_set_result();
}

void RequestHandler::release_exchange(bool keep_request_headers) {
  headers_ = HTTPHeaders();
  std::string().swap(body_);
  arguments_.reset();
  if (!keep_request_headers) request_->headers = HTTPHeaders();
  std::string().swap(request_->body);
  request_->connection.reset();
}

void RequestHandler::redirect(std::string_view url, bool permanent, int status) {
  if (headers_written_) throw std::logic_error("cannot redirect after headers were sent");
  set_status(status ? status : (permanent ? 301 : 302));
  set_header("Location", url);
  finish();
}

void RequestHandler::send_error(int status, std::exception_ptr error) {
  if (finished_) return;
  if (headers_written_) {
    // Too late for an error page: the client must not mistake a cut response for a
    // whole one, so the connection goes.
    log::error("web", "cannot send error response after headers were written");
    finished_ = true;
    request_->connection->abort();
    log_request();
    if (finished_promise_) finished_promise_->try_set_result();
    return;
  }
  body_.clear();
  headers_ = HTTPHeaders();
  status_ = status;
  if (status == 405) {
    auto allowed = allowed_methods();
    std::string allow;
    for (const auto& m : allowed.empty() ? std::vector<std::string>{"GET", "HEAD"} : allowed) {
      if (!allow.empty()) allow += ", ";
      allow += m;
    }
    headers_.set("Allow", allow);
  }
  try {
    write_error(status, error);
  } catch (const std::exception& e) {
    log::error("web", std::string("exception in write_error: ") + e.what());
  }
  if (!finished_) finish();
}

void RequestHandler::write_error(int status, std::exception_ptr error) {
  set_header("Content-Type", "text/html; charset=UTF-8");
  std::string reason(http_reason(status));
  std::string page = "<html><title>" + std::to_string(status) + ": " + reason + "</title><body>" +
                     std::to_string(status) + ": " + reason;
  if (application_->settings().debug && error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      page += "<pre>" + html_escape(e.what()) + "</pre>";
    } catch (...) {
    }
  }
  page += "</body></html>";
  finish(page);
}

void RequestHandler::log_request() {
  if (metrics_) {
    // A few relaxed adds into the rule's slot of this process (metrics/route_series.h).
    auto ns = static_cast<std::uint64_t>(request_->request_time() * 1e9);
    metrics_->record(status_, ns, bytes_received_ + request_->body.size(), bytes_written_);
  }
  const auto& fn = application_->settings().log_function;
  if (fn) {
    IOLoop::invoke_logged("log_function", [&] { fn(*this); });
    return;
  }
  if (!log::enabled(log::Level::info)) return;
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.2fms", request_->request_time() * 1000.0);
  log::info("access", std::to_string(status_) + " " + request_->method + " " + request_->uri +
                          " (" + request_->remote_ip + ") " + ms);
}

// --- cookies -------------------------------------------------------------------

std::optional<std::string> RequestHandler::get_cookie(std::string_view name) const {
  for (std::string_view header : request_->headers.get_all("Cookie")) {
    for (auto& [k, v] : parse_cookie_header(header)) {
      if (k == name) return v;
    }
  }
  return std::nullopt;
}

void RequestHandler::set_cookie(std::string_view name, std::string_view value,
                                const CookieOptions& options) {
  add_header("Set-Cookie", format_set_cookie(name, value, options));
}

void RequestHandler::set_cookie(std::string_view name, std::string_view value) {
  set_cookie(name, value, CookieOptions{});
}

void RequestHandler::clear_cookie(std::string_view name, std::string_view path,
                                  std::string_view domain) {
  add_header("Set-Cookie",
             format_clear_cookie(
                 name, path,
                 domain.empty() ? std::nullopt : std::optional<std::string>(std::string(domain))));
}

std::optional<std::string> RequestHandler::get_signed_cookie(std::string_view name,
                                                             int max_age_days) const {
  const std::string& secret = application_->settings().cookie_secret;
  if (secret.empty()) throw std::logic_error("get_signed_cookie needs the cookie_secret setting");
  auto raw = get_cookie(name);
  if (!raw) return std::nullopt;
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return decode_signed_value(secret, name, *raw, max_age_days, now);
}

void RequestHandler::set_signed_cookie(std::string_view name, std::string_view value,
                                       const CookieOptions& options) {
  const std::string& secret = application_->settings().cookie_secret;
  if (secret.empty()) throw std::logic_error("set_signed_cookie needs the cookie_secret setting");
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  set_cookie(name, create_signed_value(secret, name, value, now), options);
}

void RequestHandler::set_signed_cookie(std::string_view name, std::string_view value) {
  set_signed_cookie(name, value, CookieOptions{});
}

// --- XSRF ----------------------------------------------------------------------

std::string RequestHandler::xsrf_token() {
  if (xsrf_token_) return *xsrf_token_;
  std::optional<std::string> cookie = get_cookie("_xsrf");
  std::optional<XsrfToken> existing;
  if (cookie) existing = decode_xsrf_token(*cookie);
  if (existing) {
    // The same token under a fresh mask: the page's token differs on every response,
    // which defeats compression side channels (BREACH), as Tornado's version 2 does.
    xsrf_token_ = encode_xsrf_token(*existing);
  } else {
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    xsrf_token_ = encode_xsrf_token(generate_xsrf_token(now));
    CookieOptions options;
    options.same_site = "Lax";
    set_cookie("_xsrf", *xsrf_token_, options);
  }
  return *xsrf_token_;
}

std::string RequestHandler::xsrf_form_html() {
  return "<input type=\"hidden\" name=\"_xsrf\" value=\"" + html_escape(xsrf_token()) + "\"/>";
}

void RequestHandler::check_xsrf_cookie() {
  std::optional<std::string> submitted = get_argument("_xsrf", "");
  if (submitted->empty()) {
    if (auto h = request_->headers.get("X-XSRFToken")) {
      submitted = std::string(*h);
    } else if (auto c = request_->headers.get("X-CSRFToken")) {
      submitted = std::string(*c);
    }
  }
  if (!submitted || submitted->empty()) throw HTTPError(403, "'_xsrf' argument missing from POST");
  auto cookie = get_cookie("_xsrf");
  if (!cookie) throw HTTPError(403, "'_xsrf' cookie missing");
  if (!xsrf_tokens_match(*submitted, *cookie)) {
    throw HTTPError(403, "XSRF cookie does not match POST argument");
  }
}

// --- templates and URLs ----------------------------------------------------------

std::string RequestHandler::render_string(std::string_view name, const nlohmann::json& data) {
  const std::string& source = application_->template_source(name);
  kainjow::mustache::mustache tmpl(source);
  if (!tmpl.is_valid()) {
    throw std::runtime_error("template " + std::string(name) + ": " + tmpl.error_message());
  }
  kainjow::mustache::data d = to_mustache(data);
  if (application_->settings().xsrf_cookies) d.set("xsrf_form_html", xsrf_form_html());
  return tmpl.render(d);
}

void RequestHandler::render(std::string_view name, const nlohmann::json& data) {
  std::string html = render_string(name, data);
  if (!headers_.contains("Content-Type")) set_header("Content-Type", "text/html; charset=UTF-8");
  finish(html);
}

std::string RequestHandler::reverse_url(std::string_view name,
                                        const std::vector<std::string>& args) const {
  return application_->reverse_url(name, args);
}

std::string RequestHandler::static_url(std::string_view path) const {
  return application_->static_url(path);
}

}  // namespace tronada
