#include "tronada/http/http1_response_writer.h"

#include <gtest/gtest.h>

#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace tronada {
namespace {

// Every head gets a Date; the tests set one so the bytes are fixed.
HTTPHeaders fields(std::vector<std::pair<std::string, std::string>> list) {
  HTTPHeaders h;
  h.add("Date", "Mon, 07 Dec 2026 12:00:00 GMT");
  for (auto& [name, value] : list) h.add(name, value);
  return h;
}

constexpr const char* kDate = "Date: Mon, 07 Dec 2026 12:00:00 GMT\r\n";

struct Written {
  std::string bytes;
  bool keep_alive;
};

Written head(HTTP1ResponseWriter& w, int status, const HTTPHeaders& h, bool keep_alive = true,
             bool body_unread = false) {
  Written r{"", keep_alive};
  w.write_head(r.bytes, status, h, std::nullopt, "", r.keep_alive, body_unread);
  return r;
}

TEST(HTTP1ResponseWriter, ContentLengthBodyIsSentAsIs) {
  HTTP1ResponseWriter w;
  w.start(false, false);
  Written r = head(w, 200, fields({{"Content-Length", "5"}}));
  EXPECT_EQ(r.bytes, std::string("HTTP/1.1 200 OK\r\n") + kDate + "Content-Length: 5\r\n\r\n");
  EXPECT_TRUE(r.keep_alive);
  std::string out;
  EXPECT_EQ(w.begin_body_piece(out, 5), 5u);
  EXPECT_EQ(out, "");
  EXPECT_EQ(w.body_piece_end(), "");
  EXPECT_TRUE(w.finish(out));
  EXPECT_EQ(out, "");
}

TEST(HTTP1ResponseWriter, BodyWithoutLengthIsChunkedOnHTTP11) {
  HTTP1ResponseWriter w;
  w.start(false, false);
  Written r = head(w, 200, fields({}));
  EXPECT_EQ(r.bytes,
            std::string("HTTP/1.1 200 OK\r\n") + kDate + "Transfer-Encoding: chunked\r\n\r\n");
  std::string out;
  EXPECT_EQ(w.begin_body_piece(out, 26), 26u);
  out.append(26, 'x');
  out.append(w.body_piece_end());
  EXPECT_TRUE(w.finish(out));
  EXPECT_EQ(out, "1a\r\n" + std::string(26, 'x') + "\r\n0\r\n\r\n");
}

TEST(HTTP1ResponseWriter, HandlersChunkedIsReplacedByOurs) {
  HTTP1ResponseWriter w;
  w.start(false, false);
  Written r = head(w, 200, fields({{"Transfer-Encoding", "chunked"}}));
  EXPECT_EQ(r.bytes,
            std::string("HTTP/1.1 200 OK\r\n") + kDate + "Transfer-Encoding: chunked\r\n\r\n");
}

TEST(HTTP1ResponseWriter, HTTP10WithoutLengthClosesAndSaysSo) {
  HTTP1ResponseWriter w;
  w.start(true, false);
  Written r = head(w, 200, fields({}));
  EXPECT_EQ(r.bytes, std::string("HTTP/1.0 200 OK\r\n") + kDate + "Connection: close\r\n\r\n");
  EXPECT_FALSE(r.keep_alive);
  std::string out;
  EXPECT_EQ(w.begin_body_piece(out, 3), 3u);
  EXPECT_EQ(out, "");
}

TEST(HTTP1ResponseWriter, HTTP10KeepAliveIsAnnounced) {
  HTTP1ResponseWriter w;
  w.start(true, false);
  Written r = head(w, 200, fields({{"Content-Length", "0"}}));
  EXPECT_EQ(r.bytes, std::string("HTTP/1.0 200 OK\r\n") + kDate +
                         "Content-Length: 0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_TRUE(r.keep_alive);
}

TEST(HTTP1ResponseWriter, OtherTransferCodingEndsWithTheClose) {
  HTTP1ResponseWriter w;
  w.start(false, false);
  Written r = head(w, 200, fields({{"Transfer-Encoding", "gzip"}}));
  EXPECT_FALSE(r.keep_alive);
  EXPECT_EQ(r.bytes, std::string("HTTP/1.1 200 OK\r\n") + kDate +
                         "Transfer-Encoding: gzip\r\nConnection: close\r\n\r\n");
}

TEST(HTTP1ResponseWriter, HandlersConnectionCloseIsKeptAndHonoured) {
  HTTP1ResponseWriter w;
  w.start(false, false);
  Written r = head(w, 200, fields({{"Connection", "close"}, {"Content-Length", "0"}}));
  EXPECT_FALSE(r.keep_alive);
  EXPECT_EQ(r.bytes, std::string("HTTP/1.1 200 OK\r\n") + kDate +
                         "Connection: close\r\nContent-Length: 0\r\n\r\n");
}

TEST(HTTP1ResponseWriter, HandlersKeepAliveYieldsToOurClose) {
  HTTP1ResponseWriter w;
  w.start(false, false);
  Written r = head(w, 200, fields({{"Connection", "keep-alive"}, {"Content-Length", "0"}}),
                   /*keep_alive=*/true, /*body_unread=*/true);
  EXPECT_FALSE(r.keep_alive);
  EXPECT_EQ(r.bytes, std::string("HTTP/1.1 200 OK\r\n") + kDate +
                         "Content-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST(HTTP1ResponseWriter, HeadAnd204And304HaveNoBody) {
  for (auto [status, head_request] :
       {std::pair{200, true}, std::pair{204, false}, std::pair{304, false}}) {
    HTTP1ResponseWriter w;
    w.start(false, head_request);
    head(w, status, fields({{"Content-Length", "10"}}));
    EXPECT_TRUE(w.no_body()) << status;
    std::string out;
    EXPECT_TRUE(w.finish(out)) << "a HEAD's length is not owed";
    EXPECT_EQ(out, "");
  }
}

TEST(HTTP1ResponseWriter, ContentLengthIsHeldTo) {
  HTTP1ResponseWriter w;
  w.start(false, false);
  head(w, 200, fields({{"Content-Length", "4"}}));
  std::string out;
  EXPECT_EQ(w.begin_body_piece(out, 3), 3u);
  EXPECT_EQ(w.begin_body_piece(out, 3), 1u) << "cut at the Content-Length";
  EXPECT_EQ(w.begin_body_piece(out, 3), 0u);
  EXPECT_TRUE(w.finish(out));

  HTTP1ResponseWriter shorter;
  shorter.start(false, false);
  head(shorter, 200, fields({{"Content-Length", "4"}}));
  EXPECT_EQ(shorter.begin_body_piece(out, 2), 2u);
  EXPECT_FALSE(shorter.finish(out)) << "two bytes short";
}

TEST(HTTP1ResponseWriter, ServerAndReasonPhrase) {
  HTTP1ResponseWriter w;
  w.start(false, false);
  std::string out;
  bool keep_alive = true;
  w.write_head(out, 299, fields({{"Content-Length", "0"}}), "Fine Indeed", "tronada", keep_alive,
               false);
  EXPECT_EQ(out, std::string("HTTP/1.1 299 Fine Indeed\r\n") + kDate +
                     "Content-Length: 0\r\nServer: tronada\r\n\r\n");
}

TEST(HTTP1ResponseWriter, AddsDateWhenMissing) {
  HTTP1ResponseWriter w;
  w.start(false, false);
  std::string out;
  bool keep_alive = true;
  HTTPHeaders h;
  h.add("Content-Length", "0");
  w.write_head(out, 200, h, std::nullopt, "", keep_alive, false);
  EXPECT_NE(out.find("\r\nDate: "), std::string::npos);
  EXPECT_NE(out.find(" GMT\r\n"), std::string::npos);
}

TEST(HTTP1ResponseWriter, HeaderRefFields) {
  HTTP1ResponseWriter w;
  w.start(false, false);
  std::vector<HeaderRef> refs = {{"Date", "Mon, 07 Dec 2026 12:00:00 GMT"},
                                 {"Content-Length", "2"}};
  std::string out;
  bool keep_alive = true;
  w.write_head(out, 200, std::span<const HeaderRef>(refs), std::nullopt, "", keep_alive, false);
  EXPECT_EQ(out, std::string("HTTP/1.1 200 OK\r\n") + kDate + "Content-Length: 2\r\n\r\n");
}

TEST(HTTP1ResponseWriter, BadHeadsWriteNothing) {
  auto refused = [](int status, const HTTPHeaders& h, std::optional<std::string_view> reason) {
    HTTP1ResponseWriter w;
    w.start(false, false);
    std::string out;
    bool keep_alive = true;
    EXPECT_THROW(w.write_head(out, status, h, reason, "", keep_alive, false),
                 std::invalid_argument);
    EXPECT_EQ(out, "");
    EXPECT_TRUE(keep_alive);
    EXPECT_FALSE(w.head_written());
  };
  refused(101, fields({}), std::nullopt);
  refused(1000, fields({}), std::nullopt);
  refused(200, fields({}), "bad\r\nreason");
  refused(200, fields({{"Content-Length", "1"}, {"Content-Length", "1"}}), std::nullopt);
  refused(200, fields({{"Content-Length", "1"}, {"Transfer-Encoding", "chunked"}}), std::nullopt);
  refused(200, fields({{"Content-Length", "1x"}}), std::nullopt);
  refused(200, fields({{"X-Bad", "a\r\nb"}}), std::nullopt);
}

TEST(HTTP1ResponseWriter, SwitchingProtocols) {
  HTTP1ResponseWriter w;
  w.start(false, false);
  std::string out;
  w.write_switching_head(out, fields({{"Upgrade", "websocket"}, {"Connection", "Upgrade"}}));
  EXPECT_EQ(out, std::string("HTTP/1.1 101 Switching Protocols\r\n") + kDate +
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  EXPECT_TRUE(w.switching());
  EXPECT_TRUE(w.no_body());
}

TEST(HTTP1ResponseWriter, ErrorResponseAndContinue) {
  std::string out;
  HTTP1ResponseWriter::write_continue(out);
  EXPECT_EQ(out, "HTTP/1.1 100 Continue\r\n\r\n");
  out.clear();
  HTTP1ResponseWriter::write_error(out, 413, "body too large", "tronada");
  EXPECT_EQ(out.rfind("HTTP/1.1 413 Content Too Large\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 15\r\n"
                      "Connection: close\r\nDate: ",
                      0),
            0u);
  EXPECT_NE(out.find(" GMT\r\nServer: tronada\r\n\r\nbody too large\n"), std::string::npos);
}

TEST(HTTP1ResponseWriter, StartForgetsTheLastResponse) {
  HTTP1ResponseWriter w;
  w.start(false, false);
  head(w, 200, fields({}));
  w.start(false, false);
  EXPECT_FALSE(w.head_written());
  head(w, 200, fields({{"Content-Length", "1"}}));
  std::string out;
  EXPECT_EQ(w.begin_body_piece(out, 1), 1u);
  EXPECT_EQ(out, "") << "not chunked any more";
}

}  // namespace
}  // namespace tronada
