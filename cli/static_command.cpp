#include "cli/static_command.h"

#include <CLI/CLI.hpp>

#include <memory>

#include "cli/byte_size.h"
#include "cli/common_options.h"
#include "cli/config.h"
#include "cli/operations.h"
#include "cli/route_table.h"
#include "cli/server_runner.h"
#include "tronada/async/spawn.h"
#include "tronada/http/options_asterisk.h"
#include "tronada/metrics/route_series.h"
#include "tronada/web/static_files.h"

namespace tronada::cli {

namespace {

// What a request adds to the route's counters once answered: a clock read and a few
// atomic adds, no task of its own.
void count(metrics::RouteSeries& series, TimePoint start, int status, std::uint64_t bytes) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
  series.record(status, static_cast<std::uint64_t>(ns), 0, bytes);
}

Task<void> serve_file(const StaticFiles& files, std::shared_ptr<HTTPServerRequest> request,
                      std::string path, metrics::RouteSeries* series) {
  if (!series) {
    co_await files.serve(std::move(request), std::move(path));
    co_return;
  }
  auto start = request->start_time;
  std::uint64_t bytes = 0;
  int status = co_await files.serve(std::move(request), std::move(path), &bytes);
  count(*series, start, status, bytes);
}

struct StaticCommand {
  CommonOptions common;
  StaticBackend backend;  // what a [route.static] table would say

  void run() {
    apply_logging(common);
    StaticFiles files(static_file_options(backend));  // throws with a clear message for a bad root
    Operations ops(common.admin, 1);
    ops.attach_process();
    metrics::RouteSeries* series = route_metrics("/", "static");

    HTTPServerOptions options;
    // Static files need no request body: nginx's 1 MiB default is generous.
    options.limits.max_body_bytes = common.max_body_size.value_or(1024 * 1024);
    HTTPServer server(
        [&files, series](std::shared_ptr<HTTPServerRequest> request) {
          if (is_options_asterisk(*request)) {
            answer_options_asterisk(*request, "GET, HEAD, OPTIONS");
            return;
          }
          // Files the cache knows are answered here and now, with no coroutine, and
          // counted here when metrics are on.
          std::uint64_t bytes = 0;
          if (int status = files.serve_cached(*request, request->path, series ? &bytes : nullptr)) {
            if (series) count(*series, request->start_time, status, bytes);
            return;
          }
          std::string path = request->path;
          spawn_logged(serve_file(files, std::move(request), std::move(path), series),
                       "static file");
        },
        options);
    listen_all(server, common.binds_or_default());
    log::info("static", "serving " + files.real_root());
    ops.start_listener();
    run_until_signalled(server, common, ProcessRole::single);
  }
};

}  // namespace

void register_static_command(CLI::App& app) {
  auto cmd = std::make_shared<StaticCommand>();
  CLI::App* sub = app.add_subcommand("static", "Serve the files of a directory over HTTP");
  StaticBackend& b = cmd->backend;
  sub->add_option("DIR", b.root, "Directory to serve")->required()->check(CLI::ExistingDirectory);
  sub->add_option("--index", b.index, "File served for a directory")->capture_default_str();
  sub->add_option("--max-age", b.max_age, "Cache-Control max-age in seconds");
  sub->add_flag("--precompressed", b.precompressed,
                "Serve FILE.br / FILE.gz to clients that accept br / gzip");
  sub->add_option_function<std::string>(
         "--cache-valid", [&b](const std::string& v) { b.cache_valid = parse_duration(v); },
         "How long a looked-up file is trusted before it is looked at again, e.g. 1s, "
         "500ms; 0 looks on every request (default 1s)")
      ->type_name("DURATION")
      ->check(parse_validator([](const std::string& v) { parse_duration(v); }));
  sub->add_option("--cache-entries", b.cache_entries,
                  "Files the open-file cache keeps; 0 turns it off (default 4096)");
  sub->add_option_function<std::string>(
         "--cache-file-size",
         [&b](const std::string& v) { b.cache_file_size = parse_byte_size(v); },
         "Files up to this size are kept in memory (default 64KiB)")
      ->type_name("SIZE")
      ->check(byte_size_validator());
  sub->add_option_function<std::string>(
         "--cache-memory", [&b](const std::string& v) { b.cache_memory = parse_byte_size(v); },
         "Most file bytes the cache keeps in memory (default 32MiB)")
      ->type_name("SIZE")
      ->check(byte_size_validator());
  add_common_options(*sub, cmd->common);
  sub->callback([cmd] { cmd->run(); });
}

}  // namespace tronada::cli
