#include "cli/static_command.h"

#include <CLI/CLI.hpp>

#include <memory>

#include "cli/common_options.h"
#include "cli/operations.h"
#include "cli/server_runner.h"
#include "tronada/async/spawn.h"
#include "tronada/http/options_asterisk.h"
#include "tronada/metrics/route_series.h"
#include "tronada/web/static_files.h"

namespace tronada::cli {

namespace {

Task<void> serve_file(const StaticFiles& files, std::shared_ptr<HTTPServerRequest> request,
                      std::string path, metrics::RouteSeries* series) {
  if (!series) {
    co_await files.serve(std::move(request), std::move(path));
    co_return;
  }
  auto start = request->start_time;
  std::uint64_t bytes = 0;
  int status = co_await files.serve(std::move(request), std::move(path), &bytes);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
  series->record(status, static_cast<std::uint64_t>(ns), 0, bytes);
}

struct StaticCommand {
  CommonOptions common;
  std::string root;
  std::string index = "index.html";
  std::optional<long> max_age;

  void run() {
    apply_logging(common);
    StaticFileOptions sopts;
    sopts.root = root;
    sopts.index_files = {index};
    if (max_age) sopts.max_age = std::chrono::seconds(*max_age);
    StaticFiles files(sopts);  // throws with a clear message for a bad root
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
          std::string path = request->path;
          spawn_logged(serve_file(files, std::move(request), std::move(path), series),
                       "static file");
        },
        options);
    listen_all(server, common.binds_or_default());
    log::info("static", "serving " + files.real_root());
    ops.start_listener();
    run_until_signalled(server, common);
  }
};

}  // namespace

void register_static_command(CLI::App& app) {
  auto cmd = std::make_shared<StaticCommand>();
  CLI::App* sub = app.add_subcommand("static", "Serve the files of a directory over HTTP");
  sub->add_option("DIR", cmd->root, "Directory to serve")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--index", cmd->index, "File served for a directory")->capture_default_str();
  sub->add_option("--max-age", cmd->max_age, "Cache-Control max-age in seconds");
  add_common_options(*sub, cmd->common);
  sub->callback([cmd] { cmd->run(); });
}

}  // namespace tronada::cli
