#include "tronada/gateway/cgi_response.h"

#include "tronada/http/http_headers.h"

namespace tronada {

namespace {

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_hop_by_hop(std::string_view name) {
  return detail::iequals(name, "Connection") || detail::iequals(name, "Keep-Alive") ||
         detail::iequals(name, "Transfer-Encoding") || detail::iequals(name, "Upgrade");
}

}  // namespace

std::size_t CGIResponseParser::feed(std::string_view data) {
  std::size_t used = 0;
  while (!done_ && used < data.size()) {
    std::string_view rest = data.substr(used);
    std::size_t nl = rest.find('\n');
    std::size_t take = nl == std::string_view::npos ? rest.size() : nl + 1;
    if (seen_ + take > max_header_bytes_) {
      throw CGIResponseError("CGI header block larger than " + std::to_string(max_header_bytes_) +
                             " bytes");
    }
    seen_ += take;
    used += take;
    if (nl == std::string_view::npos) {
      line_.append(rest);
      break;
    }
    std::string_view line;
    if (line_.empty()) {
      line = rest.substr(0, nl);
    } else {
      line_.append(rest.substr(0, nl));
      line = line_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      complete();
    } else {
      parse_line(line);
    }
    line_.clear();
  }
  return used;
}

void CGIResponseParser::finish() {
  if (!done_) throw CGIResponseError("CGI output ended inside its header block");
}

void CGIResponseParser::parse_line(std::string_view line) {
  if (line.front() == ' ' || line.front() == '\t') {
    throw CGIResponseError("CGI header line folding is not allowed");
  }
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) throw CGIResponseError("CGI header line without ':'");
  std::string_view name = line.substr(0, colon);
  std::string_view value = trim(line.substr(colon + 1));
  if (name.empty()) throw CGIResponseError("CGI header with an empty name");
  for (char c : name) {
    if (!is_tchar(c)) throw CGIResponseError("CGI header name with an invalid character");
  }
  for (char c : value) {
    if (c == '\0' || c == '\r') throw CGIResponseError("CGI header value with CR or NUL");
  }
  if (detail::iequals(name, "Status")) {
    if (has_status_) throw CGIResponseError("CGI response with two Status fields");
    if (value.size() < 3 || (value.size() > 3 && value[3] != ' ')) {
      throw CGIResponseError("CGI Status is not a three-digit code");
    }
    int code = 0;
    for (int i = 0; i < 3; ++i) {
      if (value[i] < '0' || value[i] > '9') throw CGIResponseError("CGI Status is not a number");
      code = code * 10 + (value[i] - '0');
    }
    if (code < 100) throw CGIResponseError("CGI Status below 100");
    has_status_ = true;
    response_.status = code;
    response_.reason = std::string(trim(value.substr(3)));
    return;
  }
  if (is_hop_by_hop(name)) return;
  if (detail::iequals(name, "Location")) {
    if (response_.headers.contains("Location")) {
      throw CGIResponseError("CGI response with two Location fields");
    }
    response_.location = std::string(value);
  }
  response_.headers.add(name, value);
}

void CGIResponseParser::complete() {
  done_ = true;
  if (response_.location.empty()) return;
  // RFC 3875 6.2.2: a local redirect is a Location path and nothing else.
  if (response_.location.front() == '/' && !has_status_ && response_.headers.size() == 1) {
    response_.kind = CGIResponse::Kind::local_redirect;
    return;
  }
  response_.kind = CGIResponse::Kind::client_redirect;
  if (!has_status_) response_.status = 302;
}

}  // namespace tronada
