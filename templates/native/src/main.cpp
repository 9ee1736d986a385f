// {{name}}: serves the application from app.cpp.
//
//   {{name}} [--port N] [--address A] [--static-path DIR]
//
// Started by `tronada run` or by systemd with socket activation, it serves the listening
// sockets it was given (LISTEN_FDS) instead of binding its own, so a restart never
// refuses a connection.
//
// Without --static-path it finds the app's static/ folder from where the program is, not
// from the current folder, so `demo/build/demo` works from anywhere. A mistake (a missing
// folder, a busy port) ends with one line saying what and how to fix it, and exit status 1.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <tronada/loop/io_loop.h>
#include <tronada/net/systemd.h>

#include "app.h"

namespace fs = std::filesystem;

namespace {

/// Where the static files may be, most specific first: next to the build folder the
/// program is in (the app folder, even if it moved), the app folder it was built from,
/// and where `cmake --install` puts them (PREFIX/share/{{name}}/static).
std::vector<fs::path> static_candidates() {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path dir = exe.parent_path();
    out.push_back(dir.parent_path() / "static");
    out.push_back(dir.parent_path() / "share" / "{{name}}" / "static");
  }
#ifdef APP_DIR
  out.push_back(fs::path(APP_DIR) / "static");
#endif
  return out;
}

std::optional<fs::path> find_static_path(std::string& looked_in) {
  for (const fs::path& p : static_candidates()) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) return p;
    looked_in += (looked_in.empty() ? "" : ", ") + p.string();
  }
  return std::nullopt;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "{{name}}: error: %s\n", message.c_str());
  return 1;
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--port N] [--address A] [--static-path DIR]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 8888;
  std::string address = "127.0.0.1";
  std::string static_path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 < argc && arg == "--port") {
      char* end = nullptr;
      long n = std::strtol(argv[++i], &end, 10);
      if (*argv[i] == '\0' || *end != '\0' || n < 1 || n > 65535) {
        std::fprintf(stderr, "%s: --port takes a number from 1 to 65535, not '%s'\n", argv[0],
                     argv[i]);
        return usage(argv[0]);
      }
      port = static_cast<int>(n);
    } else if (i + 1 < argc && arg == "--address") {
      address = argv[++i];
    } else if (i + 1 < argc && arg == "--static-path") {
      static_path = argv[++i];
    } else {
      return usage(argv[0]);
    }
  }

  if (static_path.empty()) {
    std::string looked_in;
    auto found = find_static_path(looked_in);
    if (!found) {
      return fail("no static folder found (looked in " + looked_in +
                  "); pass --static-path DIR, the app's static/ folder");
    }
    static_path = found->string();
  }

  try {
    auto app = {{name}}::make_app(static_path);
    tronada::HTTPServer server(*app);
    std::vector<int> fds = tronada::systemd_listen_fds();
    if (!fds.empty()) {
      server.add_sockets(fds);
      std::printf("{{name}}: serving %zu inherited socket(s)\n", fds.size());
    } else {
      try {
        server.listen(port, address);
      } catch (const std::exception& e) {
        return fail(e.what() + std::string("; pass another --port or --address"));
      }
      std::printf("{{name}}: listening on http://%s:%d/\n", address.c_str(), port);
    }
    std::fflush(stdout);
    tronada::systemd_notify("READY=1");

    tronada::IOLoop& loop = tronada::IOLoop::current();
    loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
    loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
    loop.start();
    server.stop();
  } catch (const std::exception& e) {
    // make_app checks the static folder: say which flag fixes it.
    std::string why = e.what();
    if (why.find("static root") != std::string::npos) {
      why += "; pass --static-path DIR, the app's static/ folder";
    }
    return fail(why);
  }
  return 0;
}
