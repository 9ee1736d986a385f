#include "tronada/gateway/wsgi_environ.h"

#include "tronada/http/http_server_request.h"

namespace tronada {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "Content-Type" -> "HTTP_CONTENT_TYPE"; false for names with '_' (see the header).
bool cgi_header_name(std::string_view name, std::string& out) {
  out.assign("HTTP_");
  for (char c : name) {
    if (c == '_') return false;
    if (c == '-') {
      out += '_';
    } else if (c >= 'a' && c <= 'z') {
      out += static_cast<char>(c - 'a' + 'A');
    } else {
      out += c;
    }
  }
  return true;
}

}  // namespace

WSGIServerInfo wsgi_server_info(const HTTPServerRequest& request, const WSGIServerInfo& fallback) {
  if (!request.connection) return fallback;
  auto [address, port] = request.connection->local_address();
  if (address.empty()) return fallback;
  WSGIServerInfo info;
  info.unix_socket = port == 0;
  info.server_name = std::move(address);
  info.server_port = info.unix_socket ? "" : std::to_string(port);
  return info;
}

const std::string* WSGIEnviron::find(std::string_view name) const {
  for (const auto& [k, v] : vars) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::string decode_wsgi_path(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%' && i + 2 < path.size()) {
      int hi = hex_value(path[i + 1]);
      int lo = hex_value(path[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += c;
  }
  return out;
}

WSGIEnviron build_wsgi_environ(const HTTPServerRequest& request, std::string_view script_name,
                               const WSGIServerInfo& server) {
  WSGIEnviron env;
  auto& v = env.vars;
  v.reserve(16 + request.headers.size());
  v.emplace_back("REQUEST_METHOD", request.method);

  std::string path = decode_wsgi_path(request.path);
  std::string script(script_name);
  if (!script.empty() && path.compare(0, script.size(), script) == 0 &&
      (path.size() == script.size() || path[script.size()] == '/')) {
    path.erase(0, script.size());
  } else {
    // A rule that matched without the prefix: the app sees the whole path.
    script.clear();
  }
  v.emplace_back("SCRIPT_NAME", std::move(script));
  v.emplace_back("PATH_INFO", std::move(path));
  v.emplace_back("QUERY_STRING", request.query);
  v.emplace_back("RAW_URI", request.uri);
  v.emplace_back("REQUEST_URI", request.uri);
  v.emplace_back("SERVER_PROTOCOL", request.version.empty() ? "HTTP/1.0" : request.version);

  // SERVER_NAME/PORT from the socket, as gunicorn; from Host only over a Unix socket.
  std::string host_name = server.server_name;
  std::string port = server.server_port;
  if (server.unix_socket && !request.host.empty()) {
    host_name = request.host_name;
    std::string_view rest =
        std::string_view(request.host).substr(split_host_name(request.host).size());
    port = rest.size() > 1 && rest[0] == ':' ? std::string(rest.substr(1)) : "";
    if (port.empty()) port = request.protocol == "https" ? "443" : "80";
    // gunicorn splits Host at ':' and would make "[" of "[::1]:80"; the address is meant.
    if (host_name.size() > 1 && host_name.front() == '[' && host_name.back() == ']') {
      host_name = host_name.substr(1, host_name.size() - 2);
    }
  } else if (server.unix_socket) {
    port.clear();
  }
  v.emplace_back("SERVER_NAME", std::move(host_name));
  v.emplace_back("SERVER_PORT", std::move(port));
  v.emplace_back("REMOTE_ADDR", request.remote_ip);
  v.emplace_back("REMOTE_PORT", std::to_string(request.remote_port));

  std::string key;
  for (const auto& field : request.headers) {
    if (!cgi_header_name(field.name, key)) continue;
    std::string_view bare = std::string_view(key).substr(5);
    if (bare == "CONTENT_TYPE" || bare == "CONTENT_LENGTH") key.erase(0, 5);
    bool joined = false;
    for (auto& [k, val] : v) {
      if (k == key) {
        // Cookie is the one header whose pieces RFC 6265 separates with "; ".
        val += (key == "HTTP_COOKIE") ? "; " : ", ";
        val += field.value;
        joined = true;
        break;
      }
    }
    if (!joined) v.emplace_back(key, field.value);
  }
  return env;
}

}  // namespace tronada
