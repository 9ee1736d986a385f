// Forms, signed cookies and XSRF protection: a guestbook that remembers your name.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "example_args.h"
#include "tronada/http/cookies.h"
#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"

using namespace tronada;

namespace {

std::vector<std::string> g_entries;

std::string escape(std::string_view in) {
  std::string out;
  for (char c : in) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

class GuestbookHandler : public RequestHandler {
 public:
  Task<void> get() override {
    std::string name = get_signed_cookie("name").value_or("");
    std::string page = "<!doctype html><title>Guestbook</title><h1>Guestbook</h1>";
    if (!name.empty()) page += "<p>Welcome back, " + escape(name) + ".</p>";
    page += "<form method=post>" + xsrf_form_html() +
            "<input name=name placeholder=name value=\"" + escape(name) +
            "\"> <input name=message placeholder=message> <button>Sign</button></form><ul>";
    for (const auto& e : g_entries) page += "<li>" + escape(e) + "</li>";
    page += "</ul>";
    write(page);
    co_return;
  }

  Task<void> post() override {
    std::string name = get_argument("name");
    std::string message = get_argument("message", "");
    g_entries.push_back(name + ": " + message);
    CookieOptions options;
    options.http_only = true;
    options.same_site = "Lax";
    set_signed_cookie("name", name, options);
    redirect("/");
    co_return;
  }
  std::vector<std::string> allowed_methods() const override { return {"GET", "POST"}; }
};

}  // namespace

int main(int argc, char** argv) {
  auto args = examples::parse_args(argc, argv);
  ApplicationSettings settings;
  settings.cookie_secret = "change me: a long random string";
  settings.xsrf_cookies = true;
  Application app({Rule("/", handler<GuestbookHandler>())}, settings);
  HTTPServer& server = app.listen(args.port, args.address);
  std::printf("guestbook on http://%s:%d/\n", args.address.c_str(), server.ports().at(0));
  std::fflush(stdout);
  IOLoop& loop = IOLoop::current();
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.start();
  return 0;
}
