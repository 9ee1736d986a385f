#include "cli/static_command.h"

#include <CLI/CLI.hpp>

#include <memory>

#include "cli/common_options.h"
#include "cli/server_runner.h"
#include "tronada/async/spawn.h"
#include "tronada/http/options_asterisk.h"
#include "tronada/web/static_files.h"

namespace tronada::cli {

namespace {

Task<void> serve_file(const StaticFiles& files, std::shared_ptr<HTTPServerRequest> request,
                      std::string path) {
  co_await files.serve(std::move(request), std::move(path));
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

    HTTPServerOptions options;
    // Static files need no request body: nginx's 1 MiB default is generous.
    options.limits.max_body_bytes = common.max_body_size.value_or(1024 * 1024);
    HTTPServer server(
        [&files](std::shared_ptr<HTTPServerRequest> request) {
          if (is_options_asterisk(*request)) {
            answer_options_asterisk(*request, "GET, HEAD, OPTIONS");
            return;
          }
          std::string path = request->path;
          spawn_logged(serve_file(files, std::move(request), std::move(path)), "static file");
        },
        options);
    listen_all(server, common.binds_or_default());
    log::info("static", "serving " + files.real_root());
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
