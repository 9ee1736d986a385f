// The harness of the HTTP1RequestParser tests: feeds the parser whole, one byte at a time
// and cut in two at every offset, and records what its delegate saw.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/http/http1_parser.h"

namespace tronada::http1_test {

// One request as the delegate saw it; the body is the concatenation of on_body pieces, since
// how it is cut depends on how the input was fed.
struct SeenRequest {
  RequestStartLine start;
  HTTPHeaders headers;
  RequestInfo info;
  std::string body;
  HTTPHeaders trailers;
  bool complete = false;
};

class Recorder : public HTTP1ParserDelegate {
 public:
  HTTP1RequestParser* parser = nullptr;
  std::vector<SeenRequest> requests;
  HeadersAction action = HeadersAction::kContinue;
  // Called from on_headers, e.g. to pick a body limit per route.
  std::function<void(HTTP1RequestParser&, const RequestStartLine&)> on_headers_hook;
  bool throw_in_body = false;
  bool allow_abandoned = false;  // after reset() mid-request

  HeadersAction on_headers(RequestStartLine&& start_line, HTTPHeaders&& headers,
                           const RequestInfo& info) override {
    if (!allow_abandoned && !requests.empty() && !requests.back().complete) {
      ADD_FAILURE() << "headers mid-request";
    }
    EXPECT_TRUE(parser->in_message());
    SeenRequest& r = requests.emplace_back();
    r.start = std::move(start_line);
    r.headers = std::move(headers);
    r.info = info;
    if (on_headers_hook) on_headers_hook(*parser, r.start);
    return action;
  }

  void on_body(std::string_view chunk) override {
    if (requests.empty() || requests.back().complete) ADD_FAILURE() << "body outside a request";
    if (chunk.empty()) ADD_FAILURE() << "empty body chunk";
    if (throw_in_body) throw std::runtime_error("handler failed");
    requests.back().body.append(chunk);
  }

  void on_trailers(HTTPHeaders&& trailers) override {
    if (requests.empty() || requests.back().complete) ADD_FAILURE() << "trailers outside";
    requests.back().trailers = std::move(trailers);
  }

  void on_message_complete() override {
    if (requests.empty() || requests.back().complete) ADD_FAILURE() << "complete outside";
    requests.back().complete = true;
  }
};

// A string literal with its embedded NULs.
template <std::size_t N>
inline std::string bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

inline std::string escape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

struct Outcome {
  std::vector<SeenRequest> requests;
  FeedStatus status = FeedStatus::kNeedMore;  // kNeedMore: all input consumed
  std::size_t consumed = 0;                   // total, meaningful unless kError
  int error_status = 0;
  std::string error_reason;

  // A transcript that must not depend on how the input was cut.
  std::string describe() const {
    std::string out;
    for (const SeenRequest& r : requests) {
      out += r.start.method + " " + escape(r.start.target) + " HTTP/" +
             std::to_string(r.start.version_major) + "." + std::to_string(r.start.version_minor);
      out += " keep_alive=" + std::to_string(r.info.keep_alive);
      out += " chunked=" + std::to_string(r.info.chunked);
      out += " content_length=" +
             (r.info.content_length ? std::to_string(*r.info.content_length) : "none");
      out += " expect_continue=" + std::to_string(r.info.expect_continue);
      out += " upgrade=" + std::to_string(r.info.upgrade) + "\n";
      for (const HeaderField& f : r.headers) out += "  " + f.name + ": " + escape(f.value) + "\n";
      out += "  body[" + escape(r.body) + "]\n";
      for (const HeaderField& f : r.trailers) out += "  trailer " + f.name + ": " + f.value + "\n";
      out += r.complete ? "  complete\n" : "  incomplete\n";
    }
    switch (status) {
      case FeedStatus::kNeedMore:
        out += "need-more consumed=" + std::to_string(consumed);
        break;
      case FeedStatus::kPaused:
        out += "paused?!";
        break;
      case FeedStatus::kUpgrade:
        out += "upgrade consumed=" + std::to_string(consumed);
        break;
      case FeedStatus::kError:
        out += "error " + std::to_string(error_status) + " (" + error_reason + ")";
        break;
    }
    return out;
  }
};

using Setup = std::function<void(Recorder&)>;

// Feeds `input` cut into pieces at `cuts` (offsets, ascending), resuming after each request
// like a connection does, until the input is used up, an upgrade or an error.
inline Outcome run_cut(std::string_view input, const std::vector<std::size_t>& cuts,
                       const HTTP1Limits& limits, const Setup& setup) {
  Recorder recorder;
  if (setup) setup(recorder);
  HTTP1RequestParser parser(recorder, limits);
  recorder.parser = &parser;
  Outcome outcome;
  std::size_t begin = 0;
  std::size_t next_cut = 0;
  while (begin < input.size()) {
    std::size_t end = next_cut < cuts.size() ? cuts[next_cut++] : input.size();
    if (end <= begin) continue;
    std::size_t at = begin;
    while (at < end) {
      FeedResult r = parser.feed(input.data() + at, end - at);
      EXPECT_LE(r.consumed, end - at);
      if (r.status == FeedStatus::kNeedMore) {
        EXPECT_EQ(r.consumed, end - at);
        at = end;
      } else if (r.status == FeedStatus::kPaused) {
        at += r.consumed;
        EXPECT_FALSE(parser.in_message());
        parser.resume();
      } else if (r.status == FeedStatus::kUpgrade) {
        outcome.status = FeedStatus::kUpgrade;
        outcome.consumed = at + r.consumed;
        // A stopped parser ignores input until resumed.
        EXPECT_EQ(parser.feed("x", 1).consumed, 0u);
        outcome.requests = recorder.requests;
        return outcome;
      } else {
        outcome.status = FeedStatus::kError;
        outcome.error_status = parser.error_status();
        outcome.error_reason = std::string(parser.error_reason());
        // After an error the parser refuses everything.
        FeedResult again = parser.feed("GET / HTTP/1.1\r\n", 16);
        EXPECT_EQ(again.status, FeedStatus::kError);
        EXPECT_EQ(again.consumed, 0u);
        outcome.requests = recorder.requests;
        return outcome;
      }
    }
    begin = end;
  }
  outcome.consumed = input.size();
  outcome.requests = recorder.requests;
  return outcome;
}

inline std::vector<std::size_t> every_byte(std::size_t size) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < size; ++i) cuts.push_back(i);
  return cuts;
}

// Parses `input` in one piece, one byte at a time, and (for short inputs) cut in two at
// every offset; all must tell the same story. Returns the one-piece outcome.
inline Outcome parse(std::string_view input, const HTTP1Limits& limits = {},
                     const Setup& setup = {}) {
  Outcome whole = run_cut(input, {}, limits, setup);
  Outcome bytewise = run_cut(input, every_byte(input.size()), limits, setup);
  EXPECT_EQ(whole.describe(), bytewise.describe()) << "one byte at a time: " << escape(input);
  if (input.size() <= 600) {
    for (std::size_t cut = 1; cut < input.size(); ++cut) {
      Outcome split = run_cut(input, {cut}, limits, setup);
      EXPECT_EQ(whole.describe(), split.describe()) << "cut at " << cut << ": " << escape(input);
    }
  }
  return whole;
}

inline const SeenRequest& only_request(const Outcome& outcome) {
  EXPECT_EQ(outcome.requests.size(), 1u) << outcome.describe();
  static const SeenRequest none;
  return outcome.requests.empty() ? none : outcome.requests.front();
}

// A request that must fail with `status` however it is cut (see malformed_requests()).
struct Malformed {
  const char* name;
  std::string input;
  int status;
  HTTP1Limits limits = {};
};

inline std::string req(std::string_view extra_headers, std::string_view body = "",
                       std::string_view line = "POST / HTTP/1.1") {
  return std::string(line) + "\r\nHost: h\r\n" + std::string(extra_headers) + "\r\n" +
         std::string(body);
}

inline HTTP1Limits small_body_limit() {
  HTTP1Limits limits;
  limits.max_body_bytes = 10;
  return limits;
}

}  // namespace tronada::http1_test
