#include "tronada/http/http_client_request.h"

#include <cctype>

#include "tronada/base/base64.h"
#include "tronada/http/url_codec.h"

namespace tronada {

namespace {

bool has_forbidden_byte(std::string_view s) {
  for (unsigned char c : s) {
    if (c <= 0x20 || c == 0x7f) return true;
  }
  return false;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (std::isalnum(c)) continue;
    if (std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) == std::string_view::npos)
      return false;
  }
  return true;
}

int default_port(std::string_view scheme) {
  return scheme == "https" ? 443 : 80;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Removes "." and ".." segments (RFC 3986 section 5.2.4).
std::string remove_dot_segments(std::string_view path) {
  std::string out;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t next = path.find('/', i + 1);
    if (next == std::string_view::npos) next = path.size();
    std::string_view seg = path.substr(i, next - i);  // "/name" (or "name" at the start)
    if (seg == "/." || seg == ".") {
      if (next == path.size()) out += '/';
    } else if (seg == "/.." || seg == "..") {
      std::size_t cut = out.rfind('/');
      out.erase(cut == std::string::npos ? 0 : cut);
      if (next == path.size()) out += '/';
    } else {
      out.append(seg);
    }
    i = next;
  }
  if (out.empty() || out[0] != '/') out.insert(out.begin(), '/');
  return out;
}

}  // namespace

HTTPClientError::HTTPClientError(int code_, const std::string& message,
                                 std::shared_ptr<const HTTPResponse> response_)
    : std::runtime_error("HTTP " + std::to_string(code_) + ": " + message),
      code(code_),
      response(std::move(response_)) {}

std::string ClientURL::host_header() const {
  if (!unix_path.empty()) return "localhost";
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (explicit_port && port != default_port(scheme)) h += ":" + std::to_string(port);
  return h;
}

std::string ClientURL::to_string() const {
  if (!unix_path.empty()) return "http+unix://" + url_encode(unix_path, "") + path;
  return scheme + "://" + host_header() + path;
}

ClientURL parse_client_url(std::string_view text) {
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument("invalid URL '" + std::string(text.substr(0, 200)) + "': " + why);
  };
  if (has_forbidden_byte(text)) fail("spaces or control characters");
  std::size_t colon = text.find("://");
  if (colon == std::string_view::npos) fail("no scheme (expected http:// or https://)");
  ClientURL url;
  std::string scheme = lower(text.substr(0, colon));
  bool unix_target = scheme == "http+unix";
  if (scheme != "http" && scheme != "https" && !unix_target) fail("unsupported scheme " + scheme);
  url.scheme = unix_target ? "http" : scheme;
  std::string_view rest = text.substr(colon + 3);
  std::size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? "" : rest.substr(end);
  if (auto hash = tail.find('#'); hash != std::string_view::npos) tail = tail.substr(0, hash);
  url.path = tail.empty() ? "/" : (tail[0] == '?' ? "/" + std::string(tail) : std::string(tail));

  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view info = authority.substr(0, at);
    authority = authority.substr(at + 1);
    std::size_t sep = info.find(':');
    url.username = url_decode(info.substr(0, sep)).value_or("");
    if (sep != std::string_view::npos) url.password = url_decode(info.substr(sep + 1)).value_or("");
  }
  if (unix_target) {
    auto decoded = url_decode(authority);
    if (!decoded || decoded->empty()) fail("no socket path");
    url.unix_path = *decoded;
    url.port = 0;
    return url;
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority[0] == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) fail("unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') fail("junk after IPv6 literal");
      port = after.substr(1);
      url.explicit_port = true;
    }
  } else if (auto c = authority.rfind(':'); c != std::string_view::npos) {
    host = authority.substr(0, c);
    port = authority.substr(c + 1);
    url.explicit_port = true;
  }
  if (host.empty()) fail("empty host");
  url.host = lower(host);
  url.port = default_port(url.scheme);
  if (url.explicit_port) {
    if (port.empty() || port.size() > 5) fail("bad port");
    int p = 0;
    for (char c : port) {
      if (c < '0' || c > '9') fail("bad port");
      p = p * 10 + (c - '0');
    }
    if (p < 1 || p > 65535) fail("port out of range");
    url.port = p;
  }
  return url;
}

std::string resolve_redirect(const ClientURL& base, std::string_view location) {
  std::size_t scheme_end = location.find("://");
  std::size_t first_special = location.find_first_of("/?#");
  if (scheme_end != std::string_view::npos && scheme_end < first_special) {
    return parse_client_url(location).to_string();
  }
  std::string origin = base.to_string();
  origin.resize(origin.size() - base.path.size());
  std::string result;
  if (location.starts_with("//")) {
    result =
        (base.unix_path.empty() ? base.scheme : std::string("http")) + ":" + std::string(location);
  } else if (location.starts_with("/")) {
    result = origin + remove_dot_segments(location.substr(0, location.find_first_of("?#"))) +
             std::string(location.substr(std::min(location.size(), location.find_first_of("?#"))));
  } else if (location.empty() || location[0] == '#') {
    result = origin + base.path;
  } else if (location[0] == '?') {
    result = origin + base.path.substr(0, base.path.find('?')) + std::string(location);
  } else {
    std::string dir = base.path.substr(0, base.path.find('?'));
    dir.erase(dir.rfind('/') + 1);
    std::size_t q = location.find_first_of("?#");
    std::string query = q == std::string_view::npos ? "" : std::string(location.substr(q));
    result = origin + remove_dot_segments(dir + std::string(location.substr(0, q))) + query;
  }
  return parse_client_url(result).to_string();
}

bool is_idempotent_method(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
         method == "OPTIONS" || method == "TRACE";
}

BodyFraming serialize_request_head(const HTTPRequest& request, const ClientURL& url,
                                   std::string_view method, std::size_t body_size,
                                   const std::string& default_user_agent, std::string& out) {
  if (!is_token(method)) {
    throw std::invalid_argument("invalid HTTP method '" + std::string(method.substr(0, 50)) + "'");
  }
  for (const auto& f : request.headers) {
    if (!is_valid_header_name(f.name) || !is_valid_header_value(f.value)) {
      throw std::invalid_argument("invalid request header '" + f.name.substr(0, 100) + "'");
    }
  }
  out.append(method);
  out += ' ';
  out += url.path;
  out += " HTTP/1.1\r\n";
  const HTTPHeaders& h = request.headers;
  auto add = [&](std::string_view name, std::string_view value) {
    out.append(name);
    out += ": ";
    out.append(value);
    out += "\r\n";
  };
  if (!h.contains("Host")) add("Host", url.host_header());
  if (!h.contains("User-Agent")) {
    const std::string& ua = request.user_agent.empty() ? default_user_agent : request.user_agent;
    if (!ua.empty()) {
      if (!is_valid_header_value(ua)) throw std::invalid_argument("invalid user_agent");
      add("User-Agent", ua);
    }
  }
  if (request.decompress_response && !h.contains("Accept-Encoding")) add("Accept-Encoding", "gzip");
  if (!h.contains("Authorization")) {
    const std::string& user = request.auth_username.empty() ? url.username : request.auth_username;
    const std::string& pass = request.auth_username.empty() ? url.password : request.auth_password;
    if (!user.empty()) add("Authorization", "Basic " + base64_encode(user + ":" + pass));
  }
  BodyFraming framing = BodyFraming::none;
  if (h.contains("Content-Length")) {
    framing = BodyFraming::content_length;
  } else if (h.contains("Transfer-Encoding")) {
    framing = BodyFraming::chunked;
  } else if (request.body_producer) {
    add("Transfer-Encoding", "chunked");
    framing = BodyFraming::chunked;
  } else if (request.body || body_size > 0 || method == "POST" || method == "PUT" ||
             method == "PATCH") {
    add("Content-Length", std::to_string(body_size));
    framing = BodyFraming::content_length;
  }
  for (const auto& f : h) add(f.name, f.value);
  out += "\r\n";
  return framing;
}

}  // namespace tronada
