#include "cli/new_command.h"

#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "cli/bind_address.h"
#include "cli/install_paths.h"

namespace tronada::cli {

namespace fs = std::filesystem;

namespace {

std::string substitute(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    const std::string placeholder = "{{" + key + "}}";
    for (std::size_t at = text.find(placeholder); at != std::string::npos;
         at = text.find(placeholder, at + value.size())) {
      text.replace(at, placeholder.size(), value);
    }
  }
  return text;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

int copy_template(const fs::path& from, const fs::path& to,
                  const std::map<std::string, std::string>& values, bool force) {
  struct Item {
    fs::path source;
    fs::path target;
  };
  std::vector<Item> items;
  // Follow the build tree's link to templates/, but never a link inside a template.
  for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator();
       ++it) {
    if (!it->is_regular_file()) continue;
    fs::path rel = fs::relative(it->path(), from);
    fs::path target = to;
    for (const fs::path& part : rel) {
      std::string name = substitute(part.string(), values);
      if (name == "gitignore") name = ".gitignore";
      target /= name;
    }
    items.push_back({it->path(), target});
  }
  // Check every target first, so a refusal leaves the folder as it was.
  if (!force) {
    for (const Item& item : items) {
      if (fs::exists(item.target)) {
        throw std::runtime_error(item.target.string() +
                                 " already exists; pass --force to overwrite it");
      }
    }
  }
  for (const Item& item : items) {
    fs::create_directories(item.target.parent_path());
    std::string text = substitute(read_file(item.source), values);
    std::ofstream out(item.target, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + item.target.string());
    // The template's own mode (an executable script stays executable), but writable by
    // its new owner even when the installed template is read-only.
    fs::permissions(item.target, fs::status(item.source).permissions() | fs::perms::owner_write);
  }
  return static_cast<int>(items.size());
}

namespace {

struct NewCommand {
  std::string name;
  std::string template_name = "native";
  std::string dir;
  bool force = false;
  std::string app;
  std::string to;
  std::string root;

  void validate() {
    // The name becomes a C++ namespace, a CMake target, a program and a unit name.
    static const std::regex kName("[A-Za-z][A-Za-z0-9_]{0,63}");
    if (!std::regex_match(name, kName)) {
      throw CLI::ValidationError(
          "NAME", "'" + name +
                      "' is not a valid app name: use a letter, then letters, digits "
                      "or '_' (it becomes a C++ namespace, a program and a service name)");
    }
    auto only_for = [&](const std::string& value, const char* flag, const char* templates) {
      if (!value.empty() && std::string(templates).find(template_name) == std::string::npos) {
        throw CLI::ValidationError(flag, std::string("only for --template ") + templates);
      }
    };
    only_for(app, "--app", "wsgi");
    only_for(to, "--to", "fastcgi|proxy");
    only_for(root, "--root", "fastcgi");
    if (template_name == "wsgi") {
      if (app.empty()) app = "app:application";
      if (app.find(':') == std::string::npos) {
        throw CLI::ValidationError("--app",
                                   "must be MODULE:CALLABLE, e.g. myproject.wsgi:application");
      }
    } else if (template_name == "fastcgi") {
      if (to.empty()) to = "unix:/run/php/php8.2-fpm.sock";
      try {
        parse_bind_address(to);
      } catch (const std::exception& e) {
        throw CLI::ValidationError("--to", e.what());
      }
      if (root.empty()) root = "public";
    } else if (template_name == "proxy") {
      if (to.empty()) to = "http://127.0.0.1:8000";
      if (to.rfind("http://", 0) != 0 && to.rfind("https://", 0) != 0) {
        throw CLI::ValidationError("--to", "'" + to + "' is not an http:// or https:// URL");
      }
    }
    for (const std::string* v : {&app, &to, &root}) {
      // Values land inside TOML strings: keep them plain.
      if (v->find_first_of("\"\\\n") != std::string::npos) {
        throw CLI::ValidationError("'" + *v + "' must not contain quotes, backslashes or newlines");
      }
    }
  }

  void run() {
    validate();
    fs::path source = templates_dir() / template_name;
    if (!fs::is_directory(source)) throw std::runtime_error("no template at " + source.string());
    fs::path target = dir.empty() ? fs::path(name) : fs::path(dir);
    int files = copy_template(source, target,
                              {{"name", name}, {"app", app}, {"to", to}, {"root", root}}, force);

    std::string cd = target.string();
    std::cout << "Created " << template_name << " app '" << name << "' in " << cd << " (" << files
              << " files).\n\nNext:\n  cd " << cd << "\n";
    if (template_name == "native") {
      std::cout << "  tronada run              # build and serve on http://127.0.0.1:8888\n"
                   "  tronada run --reload     # rebuild and restart after each edit in src/\n"
                   "  ctest --test-dir build   # run the tests (after a build)\n";
    } else {
      std::cout << "  tronada check            # validate tronada.toml\n"
                   "  tronada run              # serve on http://127.0.0.1:8888\n";
      if (template_name == "fastcgi") {
        std::cout << "(php-fpm must listen at " << to << ")\n";
      } else if (template_name == "proxy") {
        std::cout << "(your app must listen at " << to << ")\n";
      }
    }
    std::cout << "See " << cd << "/README.md for deploying with systemd.\n";
  }
};

}  // namespace

void register_new_command(CLI::App& app) {
  auto cmd = std::make_shared<NewCommand>();
  CLI::App* sub = app.add_subcommand(
      "new",
      "Create an app from a template: a native C++ app, or a config fronting a WSGI\n"
      "app, a FastCGI responder (PHP) or an HTTP upstream");
  sub->add_option("NAME", cmd->name, "The app's name (also its folder, unless --dir)")->required();
  sub->add_option("-t,--template", cmd->template_name, "What to create")
      ->check(CLI::IsMember({"native", "wsgi", "fastcgi", "proxy"}))
      ->capture_default_str();
  sub->add_option("--dir", cmd->dir, "Where to create it (default: ./NAME)");
  sub->add_flag("--force", cmd->force, "Overwrite files that already exist");
  sub->add_option("--app", cmd->app, "wsgi: the app, MODULE:CALLABLE (default app:application)");
  sub->add_option("--to", cmd->to,
                  "fastcgi: the responder's ADDR (default unix:/run/php/php8.2-fpm.sock);\n"
                  "proxy: the upstream URL (default http://127.0.0.1:8000)");
  sub->add_option("--root", cmd->root, "fastcgi: the site's document root (default public)");
  sub->callback([cmd] { cmd->run(); });
}

}  // namespace tronada::cli
