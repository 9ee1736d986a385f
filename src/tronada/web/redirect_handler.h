// RedirectHandler: answers every request of its rule with a redirect (Tornado's
// tornado.web.RedirectHandler).
#pragma once

#include <string>

#include "tronada/web/request_handler.h"

namespace tronada {

/// Redirects to `url`, in which `{0}`, `{1}`... are replaced by the rule's positional
/// groups, e.g. Rule("/old/(.*)", handler<RedirectHandler>(std::string("/new/{0}"), 301)),
/// and Caddy's `{path}` and `{uri}` by the request's path and its target with the query.
/// Unless `{uri}` was used, the request's query string is kept when the target has none,
/// as Tornado does.
class RedirectHandler : public RequestHandler {
 public:
  void initialize(const std::string& url, int status = 302) {
    url_ = url;
    status_ = status;
  }
  Task<void> get() override;
  Task<void> head() override { return get(); }
  Task<void> post() override { return get(); }
  Task<void> put() override { return get(); }
  Task<void> patch() override { return get(); }
  Task<void> delete_() override { return get(); }
  Task<void> options() override { return get(); }
  std::vector<std::string> allowed_methods() const override {
    return {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  }

  /// `url` with `{N}` replaced by args[N], `{path}` by `path` and `{uri}` by `uri`;
  /// anything else in braces stays as written.
  static std::string expand(std::string_view url, const std::vector<std::string>& args,
                            std::string_view path = {}, std::string_view uri = {});

 private:
  std::string url_;
  int status_ = 302;
};

}  // namespace tronada
