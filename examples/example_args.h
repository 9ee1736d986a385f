// Command-line flags every example takes: --port N (default 8888) and --address A
// (default 127.0.0.1), as DESIGN.md's contract says.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace examples {

struct Args {
  int port = 8888;
  std::string address = "127.0.0.1";
  std::string url;  // a positional argument, for the client examples
};

inline Args parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (std::strcmp(argv[i], "--port") == 0) {
      char* end = nullptr;
      long port = std::strtol(value("--port"), &end, 10);
      if (*end != '\0' || port < 0 || port > 65535) {
        std::fprintf(stderr, "--port: not a port number\n");
        std::exit(2);
      }
      args.port = static_cast<int>(port);
    } else if (std::strcmp(argv[i], "--address") == 0) {
      args.address = value("--address");
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::printf("usage: %s [--port N] [--address ADDR]\n", argv[0]);
      std::exit(0);
    } else if (argv[i][0] != '-' && args.url.empty()) {
      args.url = argv[i];
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", argv[i]);
      std::exit(2);
    }
  }
  return args;
}

}  // namespace examples
