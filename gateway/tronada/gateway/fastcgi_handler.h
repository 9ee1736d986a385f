// FastCGIHandler: a RequestHandler that serves a PHP site through a FastCGI responder
// (php-fpm) the way Caddy's php_fastcgi does, or any responder for a rule.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/gateway/fastcgi_client.h"
#include "tronada/gateway/fastcgi_record.h"
#include "tronada/gateway/fastcgi_target.h"
#include "tronada/gateway/gateway_handler.h"
#include "tronada/web/static_files.h"

namespace tronada {

/// Settings shared by every request of one FastCGI rule.
struct FastCGIConfig {
  /// The site's document root (DOCUMENT_ROOT); scripts outside it are never run.
  std::string root;
  /// The directory index and front controller ("index.php").
  std::string index = "index.php";
  /// Caddy's php_fastcgi: existing files are served as static files, a directory with
  /// an index redirects to its slash form and runs the index, and anything else runs
  /// the front controller /index.php. Off: every request runs the script its path
  /// names (404 if none).
  bool try_files = true;
  /// Where SCRIPT_NAME ends and PATH_INFO begins ("/a.php/b" -> "/a.php" + "/b").
  std::string split = ".php";
  /// SERVER_ADDR and SERVER_PORT (the address the server listens on); SERVER_PORT falls
  /// back to the Host header's port.
  std::string server_addr = "127.0.0.1";
  int server_port = 0;
  /// Extra parameters sent with every request (fastcgi_param).
  fastcgi::NameValuePairs env;
  /// Request body limit; 0 for none (the responder decides, as Caddy does).
  std::uint64_t max_body_size = 0;
  /// A body without Content-Length (chunked) is buffered whole, up to this, because
  /// php-fpm needs CONTENT_LENGTH; larger ones get 413.
  std::size_t max_spooled_body = 64 * 1024 * 1024;
  /// Body bytes received ahead of what the responder took before the client is paused.
  std::size_t body_buffer = 1024 * 1024;
  /// The connections to the responder.
  std::shared_ptr<fastcgi::Pool> pool;
  /// Serves the static files under `root` (made by make_fastcgi_config).
  std::shared_ptr<const StaticFiles> static_files;
  /// Finds each request's script or file off the loop, with a short cache (made by
  /// make_fastcgi_config; when null, every request asks the executor, uncached).
  std::shared_ptr<FastCGIResolver> resolver;
};

/// Builds a config for `root` (resolved to its real path; throws std::runtime_error if
/// it is not a directory) and a pool for `address`.
std::shared_ptr<FastCGIConfig> make_fastcgi_config(std::string root, std::string_view address,
                                                   fastcgi::PoolOptions pool_options = {});

/// Runs each request through the responder. The URL path is normalised first, as nginx
/// does (dot segments removed, slashes merged; 400 for one that climbs above the root),
/// and its script found off the loop (FastCGIResolver). Then the CGI/1.1 parameters
/// nginx's fastcgi_params sends, the body streamed to FCGI_STDIN as it arrives, FCGI_STDOUT
/// parsed for the CGI header block and streamed to the client with backpressure,
/// FCGI_STDERR to the log. Errors: 502 for an unreachable or broken responder, 504 for
/// one that times out, 503 with Retry-After: 1 when the pool's limits refuse it (queue
/// full, max_wait); a responder failing after the headers went out closes the client
/// connection. Each try is counted in the pool's upstream series (Pool::measure). Mount
/// it as Rule("/.*", handler<FastCGIHandler>(config)).
class FastCGIHandler : public GatewayHandler {
 public:
  FastCGIHandler();
  ~FastCGIHandler() override;
  void initialize(std::shared_ptr<const FastCGIConfig> config);

  void data_received(std::string_view chunk) override;
  std::optional<std::uint64_t> max_body_size() const override;
  void on_connection_close() override;
  /// Adds Retry-After to the 503 of a request the pool refused.
  void write_error(int status, std::exception_ptr error) override;

  struct Exchange;

 private:
  Task<void> serve() override;
  Task<void> serve_static();
  Task<void> run_script(int redirects_left);
  void start_exchange();
  /// Starts finding where `url_path` goes, once per request path.
  Future<FastCGITarget> resolve(std::string_view url_path);
  /// The target is known: body bytes that arrived before it go where it says.
  void target_found(FastCGITarget target);
  void take_body(std::string_view chunk);

  std::shared_ptr<const FastCGIConfig> config_;
  std::optional<FastCGITarget> target_;
  Future<FastCGITarget> resolving_;
  std::string early_body_;  // body bytes received while the target was being found
  bool early_paused_ = false;
  // Dropped with the handler: a resolution that completes later finds it gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::shared_ptr<Exchange> exchange_;
  std::string spool_;  // a chunked body, gathered for its CONTENT_LENGTH
  bool spooled_too_large_ = false;
  bool pool_refused_ = false;  // the 503 is the pool's: it says when to come back
};

}  // namespace tronada
