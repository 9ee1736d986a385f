#include "tronada/http/http_server_request.h"

#include <chrono>

#include "tronada/async/detail/pool_allocator.h"

namespace tronada {

double HTTPServerRequest::request_time() const {
  TimePoint end = finish_time_ == TimePoint{} ? Clock::now() : finish_time_;
  return std::chrono::duration<double>(end - start_time).count();
}

std::string HTTPServerRequest::full_url() const {
  std::string url = protocol + "://" + host;
  if (!uri.empty() && uri[0] == '/') {
    url += uri;
  } else {
    // absolute-form (its authority is `host` already) or "*": the path and query.
    url += path;
    if (uri.find('?') != std::string::npos) {
      url += '?';
      url += query;
    }
  }
  return url;
}

std::shared_ptr<HTTPServerRequest> make_server_request() {
  return std::allocate_shared<HTTPServerRequest>(detail::PoolAllocator<HTTPServerRequest>());
}

std::string_view split_host_name(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    auto end = host.find(']');
    return end == std::string_view::npos ? host : host.substr(0, end + 1);
  }
  auto colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

bool HTTPServerRequest::parse_target() {
  if (auto h = headers.get("Host")) return parse_target(*h);
  return parse_target_rest();
}

bool HTTPServerRequest::parse_target(std::string_view host_field) {
  host.assign(host_field);
  return parse_target_rest();
}

bool HTTPServerRequest::parse_target_rest() {
  std::string_view target = uri;
  if (method == "CONNECT") {
    // authority-form: "host:port" names the tunnel's other end; there is no path.
    host.assign(target);
    host_name.assign(split_host_name(host));
    path.clear();
    query.clear();
    return true;
  }
  if (target.size() > 1 && target[0] != '/' && target != "*") {
    // absolute-form: "http://host/path". Its authority wins over Host (RFC 9112 3.2.2).
    auto scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) return false;
    std::string_view rest = target.substr(scheme_end + 3);
    auto slash = rest.find_first_of("/?");
    host.assign(rest.substr(0, slash));
    target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  }
  auto q = target.find('?');
  if (q == std::string_view::npos) {
    path.assign(target);
    query.clear();
  } else {
    path.assign(target.substr(0, q));
    query.assign(target.substr(q + 1));
  }
  if (!path.empty() && path[0] != '/' && path != "*") path.insert(0, "/");
  host_name.assign(split_host_name(host));
  return true;
}

}  // namespace tronada
