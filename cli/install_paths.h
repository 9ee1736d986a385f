// Where the `tronada` program finds its own files: the templates `tronada new` copies and
// the CMake package a native app builds against. Both are looked up relative to the
// program, so an install under any prefix (/usr, /usr/local, a build tree) finds its own.
#pragma once

#include <filesystem>
#include <optional>

namespace tronada::cli {

/// The folder the running program is in (from /proc/self/exe).
std::filesystem::path program_dir();

/// The templates folder: $TRONADA_TEMPLATES if set, else <program dir>/../share/tronada/
/// templates (installed, and linked to the source's templates/ in a build tree). Throws
/// std::runtime_error naming what it tried when there is none.
std::filesystem::path templates_dir();

/// When the program runs from a tronada build tree (build/bin/tronada), that build
/// tree, which holds a tronadaConfig.cmake for find_package(tronada); nullopt when
/// installed (CMake then finds the installed package by itself).
std::optional<std::filesystem::path> build_tree_package_dir();

}  // namespace tronada::cli
