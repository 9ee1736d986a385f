// HTTP1ResponseParser on its own: responses an upstream could send that must not reach a
// client we forward them to. The cases come from tests/fuzz/http1_response_fuzz.
#include "tronada/http/http1_response_parser.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace tronada;

namespace {

struct Collect : HTTP1ResponseParser::Events {
  std::vector<HTTPResponseHead> heads;
  std::string body;
  bool complete = false;
  void on_head(HTTPResponseHead&& head) override { heads.push_back(std::move(head)); }
  void on_body(std::string_view chunk) override { body.append(chunk); }
  void on_complete() override { complete = true; }
};

}  // namespace

TEST(HTTP1ResponseParser, ParsesAResponseWithEmptyFieldValues) {
  Collect c;
  HTTP1ResponseParser p(c);
  std::string_view r = "HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 2\r\nY:  \r\n\r\nhi";
  EXPECT_EQ(p.feed(r), r.size());
  ASSERT_FALSE(p.failed()) << p.error();
  ASSERT_TRUE(p.complete());
  ASSERT_EQ(c.heads.size(), 1u);
  EXPECT_EQ(c.heads[0].status, 200);
  EXPECT_EQ(c.heads[0].headers.get("X-Empty"), "");
  EXPECT_EQ(c.heads[0].headers.get("Y"), "");
  EXPECT_EQ(c.body, "hi");
}

// A parser's state is kept for the next one on the thread: a parser made after one that
// stopped mid-head, or after one whose head stayed in place, starts clean.
TEST(HTTP1ResponseParser, ANewParserStartsCleanAfterOneWasDestroyedMidResponse) {
  struct KeepInPlace : HTTP1ResponseParser::Events {
    std::vector<std::string> names;
    void on_head(HTTPResponseHead&& head) override {
      for (const auto& f : head.headers) names.push_back(f.name);
    }
    void on_body(std::string_view) override {}
    void on_complete() override {}
  };
  {
    KeepInPlace first;
    HTTP1ResponseParser p(first);
    p.feed("HTTP/1.1 200 OK\r\nX-First: 1\r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(first.names.size(), 2u);
    HTTP1ResponseParser cut(first);
    cut.feed("HTTP/1.1 200 OK\r\nX-Cut: 1\r\nX-Cut-Too: ha");
  }
  for (int i = 0; i < 2; ++i) {
    KeepInPlace next;
    HTTP1ResponseParser p(next);
    std::string_view r = "HTTP/1.1 204 No Content\r\nX-Next: 2\r\n\r\n";
    EXPECT_EQ(p.feed(r), r.size());
    ASSERT_FALSE(p.failed()) << p.error();
    EXPECT_TRUE(p.complete());
    EXPECT_EQ(next.names, std::vector<std::string>{"X-Next"});
  }
}

TEST(HTTP1ResponseParser, RefusesAnEmptyFieldName) {
  Collect c;
  HTTP1ResponseParser p(c);
  p.feed("HTTP/1.1 200 OK\r\n: 13\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(p.failed());
  EXPECT_TRUE(c.heads.empty());
}

TEST(HTTP1ResponseParser, RefusesAStatusBelow100) {
  for (std::string_view r : {"HTTP/1.1 0 OK\r\nContent-Length: 0\r\n\r\n",
                             "HTTP/1.1 99 Odd\r\nContent-Length: 0\r\n\r\n"}) {
    Collect c;
    HTTP1ResponseParser p(c);
    p.feed(r);
    EXPECT_TRUE(p.failed()) << r;
    EXPECT_TRUE(c.heads.empty()) << r;
  }
}

// ---------------------------------------------------------------------------------------
// Event handlers that throw: the exception comes out of feed() (or finish_eof()) once
// llhttp has returned, never through its C frames, and the parser is failed from then on.

namespace {

enum class Throw { kHead, kBody, kComplete };

struct Thrower : HTTP1ResponseParser::Events {
  Throw where;
  int calls = 0;
  explicit Thrower(Throw w) : where(w) {}
  void on_head(HTTPResponseHead&&) override {
    ++calls;
    if (where == Throw::kHead) throw std::runtime_error("head handler failed");
  }
  void on_body(std::string_view) override {
    ++calls;
    if (where == Throw::kBody) throw std::runtime_error("body handler failed");
  }
  void on_complete() override {
    ++calls;
    if (where == Throw::kComplete) throw std::runtime_error("complete handler failed");
  }
};

// Feeds `response` in pieces of `piece` bytes until the parser throws; returns the message.
std::string feed_until_throw(HTTP1ResponseParser& p, std::string_view response, std::size_t piece) {
  while (!response.empty()) {
    std::string_view now = response.substr(0, piece);
    std::size_t used = 0;
    try {
      used = p.feed(now);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    if (p.failed() || used == 0) return "no exception";
    response.remove_prefix(used);
  }
  try {
    p.finish_eof();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no exception";
}

}  // namespace

TEST(HTTP1ResponseParser, HandlerExceptionsComeOutOfFeedAfterLlhttpReturned) {
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  const std::pair<Throw, const char*> cases[] = {{Throw::kHead, "head handler failed"},
                                                 {Throw::kBody, "body handler failed"},
                                                 {Throw::kComplete, "complete handler failed"}};
  for (const auto& [where, message] : cases) {
    for (std::size_t piece : {response.size(), std::size_t{1}}) {
      Thrower events(where);
      HTTP1ResponseParser p(events);
      EXPECT_EQ(feed_until_throw(p, response, piece), message) << "piece " << piece;
      EXPECT_TRUE(p.failed());
      EXPECT_FALSE(p.complete());
      EXPECT_EQ(p.error(), "a response event handler threw an exception");
      // A failed parser takes nothing more, and calls no handler again.
      int calls = events.calls;
      EXPECT_EQ(p.feed("HTTP/1.1 200 OK\r\n\r\n"), 0u);
      EXPECT_NO_THROW(p.finish_eof());
      EXPECT_EQ(events.calls, calls);
      // reset() starts over.
      p.reset();
      EXPECT_FALSE(p.failed());
    }
  }
}

TEST(HTTP1ResponseParser, HandlerExceptionAtEofComesOutOfFinishEof) {
  // A close-delimited body completes in finish_eof(), inside llhttp_finish.
  Thrower events(Throw::kComplete);
  HTTP1ResponseParser p(events);
  std::string_view response = "HTTP/1.1 200 OK\r\n\r\nuntil close";
  EXPECT_EQ(p.feed(response), response.size());
  EXPECT_FALSE(p.failed());
  EXPECT_THROW(p.finish_eof(), std::runtime_error);
  EXPECT_TRUE(p.failed());
}
