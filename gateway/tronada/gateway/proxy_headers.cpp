#include "tronada/gateway/proxy_headers.h"

#include <array>
#include <vector>

#include "tronada/base/error.h"

namespace tronada {

namespace {

using detail::iequals;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// The comma-separated tokens of every Connection field.
std::vector<std::string> connection_tokens(const HTTPHeaders& headers) {
  std::vector<std::string> tokens;
  for (std::string_view value : headers.get_all("Connection")) {
    while (!value.empty()) {
      std::size_t comma = value.find(',');
      std::string_view token = trim(value.substr(0, comma));
      if (!token.empty()) tokens.emplace_back(token);
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
  return tokens;
}

bool named_by(const std::vector<std::string>& tokens, std::string_view name) {
  for (const auto& t : tokens) {
    if (iequals(t, name)) return true;
  }
  return false;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

bool is_hop_by_hop(std::string_view name) {
  // By length first: most fields (Date, Server, Content-Type, Content-Length) are
  // rejected without a comparison.
  switch (name.size()) {
    case 2:
    case 7:
    case 10:
    case 16:
    case 17:
    case 18:
    case 19:
      break;
    default:
      return false;
  }
  static constexpr std::string_view kHopByHop[] = {"Connection",
                                                   "Keep-Alive",
                                                   "Proxy-Connection",
                                                   "TE",
                                                   "Trailer",
                                                   "Transfer-Encoding",
                                                   "Upgrade",
                                                   "Proxy-Authenticate",
                                                   "Proxy-Authorization"};
  for (std::string_view h : kHopByHop) {
    if (name.size() == h.size() && iequals(name, h)) return true;
  }
  return false;
}

namespace {

/// Whether `name` is among the comma-separated tokens of `listed`.
bool listed_in(std::string_view listed, std::string_view name) {
  while (!listed.empty()) {
    std::size_t comma = listed.find(',');
    std::string_view token = trim(listed.substr(0, comma));
    if (token.size() == name.size() && iequals(token, name)) return true;
    if (comma == std::string_view::npos) break;
    listed.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

void strip_hop_by_hop(HTTPHeaders& headers) {
  // The Connection fields' tokens, copied into one buffer since the removals below move
  // fields over their storage ("keep-alive" fits a string's inline storage: nothing is
  // allocated for the common response).
  std::string listed;
  for (const HeaderField& f : headers) {
    if (f.name.size() != 10 || !iequals(f.name, "Connection")) continue;
    if (!listed.empty()) listed += ',';
    listed += f.value;
  }
  // One scan finds what goes, then a removal per name found: a response has one or two
  // hop-by-hop fields (Connection, maybe Keep-Alive), where removing every name that could
  // be one took ten passes over the fields. The names are copied since removals move the
  // fields. "Connection: close" names no field; a field called "close" going too is
  // harmless.
  for (;;) {
    std::array<std::string, 4> names;
    std::size_t found = 0;
    for (const HeaderField& f : headers) {
      if (found == names.size()) break;  // more than that: another round
      if (is_hop_by_hop(f.name) || listed_in(listed, f.name)) names[found++] = f.name;
    }
    for (std::size_t i = 0; i < found; ++i) headers.remove(names[i]);
    if (found < names.size()) return;
  }
}

std::string upstream_request_head(const HTTPServerRequest& request, const Upstream& upstream,
                                  const ProxyHeaderOptions& options, UpstreamFraming framing,
                                  std::string_view upgrade) {
  std::string out;
  out.reserve(256 + request.uri.size());
  out.append(request.method);
  out += ' ';
  out.append(upstream.path_prefix);
  std::string_view path = request.path;
  std::string_view strip = options.strip_prefix;
  while (!strip.empty() && strip.back() == '/') strip.remove_suffix(1);
  if (!strip.empty() && path.starts_with(strip) &&
      (path.size() == strip.size() || path[strip.size()] == '/')) {
    path.remove_prefix(strip.size());
  }
  if (path.empty() || path[0] != '/') out += '/';
  out.append(path);
  if (!request.query.empty()) {
    out += '?';
    out.append(request.query);
  }
  out.append(" HTTP/1.1\r\n");

  const std::string& host =
      options.preserve_host && !request.host.empty() ? request.host : upstream.host_header;
  append_field(out, "Host", host);

  std::vector<std::string> listed = connection_tokens(request.headers);
  std::string cookies;
  std::string forwarded_for;
  std::string via;
  for (const auto& f : request.headers) {
    const std::string& n = f.name;
    if (is_hop_by_hop(n) || named_by(listed, n)) continue;
    if (iequals(n, "Host") || iequals(n, "Content-Length") || iequals(n, "Expect") ||
        iequals(n, "X-Forwarded-Proto") || iequals(n, "X-Forwarded-Host")) {
      continue;
    }
    if (iequals(n, "X-Forwarded-For")) {
      if (options.trust_forwarded) {
        if (!forwarded_for.empty()) forwarded_for += ", ";
        forwarded_for += f.value;
      }
      continue;
    }
    if (iequals(n, "Via")) {
      if (!via.empty()) via += ", ";
      via += f.value;
      continue;
    }
    if (iequals(n, "Cookie")) {
      if (!cookies.empty()) cookies += "; ";
      cookies += f.value;
      continue;
    }
    append_field(out, n, f.value);
  }
  if (!cookies.empty()) append_field(out, "Cookie", cookies);

  // The client's address ends the chain, unless the trusted chain already ends with it
  // (the server took remote_ip from that very header).
  std::string_view last = forwarded_for;
  if (std::size_t comma = last.rfind(','); comma != std::string_view::npos) {
    last.remove_prefix(comma + 1);
  }
  if (trim(last) != request.remote_ip) {
    if (!forwarded_for.empty()) forwarded_for += ", ";
    forwarded_for += request.remote_ip;
  }
  append_field(out, "X-Forwarded-For", forwarded_for);
  append_field(out, "X-Forwarded-Proto", request.protocol);
  if (!request.host.empty()) append_field(out, "X-Forwarded-Host", request.host);
  // Via names the protocol version we received (RFC 9110 section 7.6.3).
  std::string_view version = request.version;
  if (version.starts_with("HTTP/")) version.remove_prefix(5);
  if (version == "2.0") version = "2";
  if (!via.empty()) via += ", ";
  via.append(version);
  via += ' ';
  via.append(options.via_name);
  append_field(out, "Via", via);

  if (!upgrade.empty()) {
    append_field(out, "Connection", "upgrade");
    append_field(out, "Upgrade", upgrade);
  }
  switch (framing) {
    case UpstreamFraming::none:
      break;
    case UpstreamFraming::content_length:
      append_field(out, "Content-Length", request.headers.get("Content-Length").value_or("0"));
      break;
    case UpstreamFraming::chunked:
      append_field(out, "Transfer-Encoding", "chunked");
      break;
  }
  out.append("\r\n");
  return out;
}

void downstream_response_headers(HTTPHeaders& headers, int status) {
  if (status == 101) {
    std::string upgrade(headers.get("Upgrade").value_or(""));
    strip_hop_by_hop(headers);
    headers.add("Connection", "Upgrade");
    if (!upgrade.empty()) headers.add("Upgrade", upgrade);
    return;
  }
  strip_hop_by_hop(headers);
}

}  // namespace tronada
