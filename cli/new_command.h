// `tronada new NAME [--template native|wsgi|fastcgi|proxy]`: scaffold an app from templates/.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace CLI {
class App;
}

namespace tronada::cli {

void register_new_command(CLI::App& app);

/// Copies the template folder `from` to `to`, replacing every "{{key}}" in file contents
/// and names with its value; a file named "gitignore" becomes ".gitignore" (a template
/// must not carry a live .gitignore). Keeps executable bits. Existing files are replaced
/// only when `force`; otherwise throws std::runtime_error before writing anything.
/// Returns the number of files written.
int copy_template(const std::filesystem::path& from, const std::filesystem::path& to,
                  const std::map<std::string, std::string>& values, bool force);

}  // namespace tronada::cli
