#include "tronada/web/redirect_handler.h"

#include "tronada/http/http_server_request.h"

namespace tronada {

std::string RedirectHandler::expand(std::string_view url, const std::vector<std::string>& args,
                                    std::string_view path, std::string_view uri) {
  std::string out;
  out.reserve(url.size());
  for (std::size_t i = 0; i < url.size(); ++i) {
    if (url.substr(i, 6) == "{path}") {
      out += path;
      i += 5;
      continue;
    }
    if (url.substr(i, 5) == "{uri}") {
      out += uri;
      i += 4;
      continue;
    }
    if (url[i] == '{') {
      std::size_t close = url.find('}', i);
      if (close != std::string_view::npos && close > i + 1) {
        std::size_t index = 0;
        bool digits = true;
        for (std::size_t j = i + 1; j < close; ++j) {
          if (url[j] < '0' || url[j] > '9' || close - i > 6) {
            digits = false;
            break;
          }
          index = index * 10 + static_cast<std::size_t>(url[j] - '0');
        }
        if (digits && index < args.size()) {
          out += args[index];
          i = close;
          continue;
        }
      }
    }
    out += url[i];
  }
  return out;
}

Task<void> RedirectHandler::get() {
  const HTTPServerRequest& req = request();
  std::string target = expand(url_, path_args(), req.path, req.uri);
  if (!req.query.empty() && target.find('?') == std::string::npos &&
      url_.find("{uri}") == std::string::npos) {
    target += "?" + req.query;
  }
  redirect(target, false, status_);
  co_return;
}

}  // namespace tronada
