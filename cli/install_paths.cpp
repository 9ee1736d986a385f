#include "cli/install_paths.h"

#include <cstdlib>
#include <stdexcept>

namespace tronada::cli {

namespace fs = std::filesystem;

fs::path program_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec)
    throw std::runtime_error("cannot find the tronada program: /proc/self/exe: " + ec.message());
  return exe.parent_path();
}

fs::path templates_dir() {
  if (const char* env = std::getenv("TRONADA_TEMPLATES"); env && *env) {
    if (!fs::is_directory(env)) {
      throw std::runtime_error(std::string("TRONADA_TEMPLATES=") + env + " is not a folder");
    }
    return env;
  }
  fs::path dir = (program_dir() / ".." / "share" / "tronada" / "templates").lexically_normal();
  if (!fs::is_directory(dir)) {
    throw std::runtime_error("no templates at " + dir.string() +
                             " (set TRONADA_TEMPLATES to the templates folder)");
  }
  return dir;
}

std::optional<fs::path> build_tree_package_dir() {
  fs::path build = program_dir().parent_path();
  if (fs::exists(build / "tronadaConfig.cmake") && fs::exists(build / "CMakeCache.txt")) {
    return build;
  }
  return std::nullopt;
}

}  // namespace tronada::cli
