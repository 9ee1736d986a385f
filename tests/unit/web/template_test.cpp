// render() and render_string(): mustache templates from ApplicationSettings::template_path.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tronada/testing/test_server.h"
#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"

using namespace tronada;
using tronada::testing::TestServer;

namespace {

class PageHandler : public RequestHandler {
 public:
  Task<void> get() override {
    std::string name = get_argument("t", "page.html");
    render(name, {{"title", get_argument("title", "Shop")},
                  {"items", {"tea", "<b>cake</b>"}},
                  {"empty", nlohmann::json::array()},
                  {"user", {{"name", "Ana"}, {"admin", false}}},
                  {"count", 3}});
    co_return;
  }
};

class StringHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_header("Content-Type", "text/plain");
    write("[" + render_string("page.html", {{"title", "x"}}) + "]");
    co_return;
  }
};

// A directory of templates that lives as long as the test.
class TemplateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tronada-templates-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    write("page.html",
          "<h1>{{title}}</h1><ul>{{#items}}<li>{{.}}</li>{{/items}}</ul>"
          "{{^empty}}none{{/empty}} {{user.name}}{{#user.admin}}!{{/user.admin}} "
          "{{count}} {{{raw}}}");
    write("raw.html", "{{{title}}}|{{title}}");
    write("broken.html", "{{#items}}unclosed");
    write("form.html", "<form>{{{xsrf_form_html}}}</form>");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }

  std::unique_ptr<Application> app(bool debug = false, bool xsrf = false) {
    ApplicationSettings s;
    s.template_path = dir_.string();
    s.debug = debug;
    s.xsrf_cookies = xsrf;
    s.log_function = [](const RequestHandler&) {};
    return std::make_unique<Application>(
        std::vector<Rule>{Rule("/", handler<PageHandler>()),
                          Rule("/string", handler<StringHandler>())},
        s);
  }

  std::filesystem::path dir_;
};

TEST_F(TemplateTest, RendersSectionsInvertedSectionsDottedNamesAndEscapesByDefault) {
  TestServer server(app());
  auto r = server.fetch("/?title=%3Cscript%3E%26");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.get("Content-Type").value_or(""), "text/html; charset=UTF-8");
  EXPECT_EQ(r.body,
            "<h1>&lt;script&gt;&amp;</h1><ul><li>tea</li><li>&lt;b&gt;cake&lt;/b&gt;</li></ul>"
            "none Ana 3 ");
}

TEST_F(TemplateTest, TripleMustacheIsNotEscaped) {
  TestServer server(app());
  EXPECT_EQ(server.fetch("/?t=raw.html&title=%3Ci%3E").body, "<i>|&lt;i&gt;");
}

TEST_F(TemplateTest, RenderStringReturnsTheTextWithoutFinishing) {
  TestServer server(app());
  auto r = server.fetch("/string");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.substr(0, 14), "[<h1>x</h1><ul");
  EXPECT_EQ(r.body.back(), ']');
}

TEST_F(TemplateTest, MissingBrokenAndEscapingTemplateNamesAre500) {
  TestServer server(app());
  EXPECT_EQ(server.fetch("/?t=nope.html").status, 500);
  EXPECT_EQ(server.fetch("/?t=broken.html").status, 500);
  EXPECT_EQ(server.fetch("/?t=../page.html").status, 500);
  // The error page does not leak the template path outside debug mode.
  EXPECT_EQ(server.fetch("/?t=nope.html").body.find(dir_.string()), std::string::npos);
  EXPECT_EQ(server.fetch("/").status, 200);  // and the next request is fine
}

TEST_F(TemplateTest, CachedUnlessDebug) {
  TestServer cached(app(false));
  EXPECT_EQ(cached.fetch("/?t=raw.html&title=a").body, "a|a");
  write("raw.html", "changed");
  EXPECT_EQ(cached.fetch("/?t=raw.html&title=a").body, "a|a");

  TestServer debug(app(true));
  EXPECT_EQ(debug.fetch("/?t=raw.html").body, "changed");
  write("raw.html", "changed again");
  EXPECT_EQ(debug.fetch("/?t=raw.html").body, "changed again");
}

TEST_F(TemplateTest, XsrfFormHtmlIsAvailableWhenXsrfIsOn) {
  TestServer server(app(false, true));
  auto r = server.fetch("/?t=form.html");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("<form><input type=\"hidden\" name=\"_xsrf\" value=\""), std::string::npos)
      << r.body;
  EXPECT_TRUE(r.headers.get("Set-Cookie").value_or("").starts_with("_xsrf="));
}

}  // namespace
