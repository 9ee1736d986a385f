#include "tronada/gateway/fastcgi_record.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace tronada::fastcgi;

namespace {

struct Collected : ResponseHandler {
  std::string out, err;
  int ends = 0;
  std::uint32_t app_status = 0;
  ProtocolStatus status = ProtocolStatus::request_complete;
  NameValuePairs values;
  void on_stdout(std::string_view d) override { out += d; }
  void on_stderr(std::string_view d) override { err += d; }
  void on_end_request(std::uint32_t a, ProtocolStatus s) override {
    ++ends;
    app_status = a;
    status = s;
  }
  void on_values(const NameValuePairs& v) override { values = v; }
};

std::vector<Record> split_all(const std::string& bytes, std::size_t step,
                              std::vector<std::string>* contents) {
  std::vector<Record> records;
  RecordParser p([&](const Record& r) {
    records.push_back(r);
    contents->emplace_back(r.content);
  });
  for (std::size_t i = 0; i < bytes.size(); i += step)
    p.feed(std::string_view(bytes).substr(i, step));
  EXPECT_TRUE(p.at_boundary());
  return records;
}

NameValueViews views_of(const NameValuePairs& pairs) {
  NameValueViews views;
  for (const auto& [name, value] : pairs) views.emplace_back(name, value);
  return views;
}

// The PARAMS stream `bytes` holds as records of request 9: its records (the last one
// empty) and the content of all of them together.
std::vector<Record> params_records(const std::string& bytes, std::string* stream) {
  std::vector<std::string> contents;
  auto records = split_all(bytes, 7, &contents);
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].type, 4);
    EXPECT_EQ(records[i].request_id, 9);
    *stream += contents[i];
  }
  EXPECT_TRUE(contents.back().empty());
  return records;
}

std::string response_bytes(std::uint16_t id) {
  std::string b;
  append_stream(b, RecordType::stdout_, id, "Content-Type: text/plain\r\n\r\nhello");
  append_stream(b, RecordType::stderr_, id, "warning");
  append_stream(b, RecordType::stdout_, id, std::string(70000, 'x'));
  append_stream(b, RecordType::stdout_, id, "");
  append_stream(b, RecordType::stderr_, id, "");
  append_end_request(b, id, 7, ProtocolStatus::request_complete);
  return b;
}

}  // namespace

TEST(FastCGIRecord, HeaderLayoutAndPadding) {
  std::string b;
  append_record(b, RecordType::stdin_, 0x1234, "abc");
  ASSERT_EQ(b.size(), 16u);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[1], 5);
  EXPECT_EQ(static_cast<unsigned char>(b[2]), 0x12);
  EXPECT_EQ(static_cast<unsigned char>(b[3]), 0x34);
  EXPECT_EQ(b[4], 0);
  EXPECT_EQ(b[5], 3);
  EXPECT_EQ(b[6], 5);  // padding to 8
  EXPECT_EQ(b.substr(8, 3), "abc");
}

TEST(FastCGIRecord, EmptyRecordIsStreamEnd) {
  std::string b;
  append_stream(b, RecordType::stdin_, 1, "");
  EXPECT_EQ(b, std::string("\x01\x05\x00\x01\x00\x00\x00\x00", 8));
}

TEST(FastCGIRecord, BeginRequestKeepConn) {
  std::string b;
  append_begin_request(b, 1, Role::responder, true);
  EXPECT_EQ(b, std::string("\x01\x01\x00\x01\x00\x08\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00", 16));
}

TEST(FastCGIRecord, LargeContentSplitsAt65535) {
  std::string b;
  append_record(b, RecordType::stdin_, 1, std::string(200000, 'z'));
  std::vector<std::string> contents;
  auto records = split_all(b, b.size(), &contents);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(contents[0].size(), 65535u);
  EXPECT_EQ(contents[3].size(), 200000u - 3 * 65535u);
}

TEST(FastCGIRecord, NameValueShortAndLongLengths) {
  NameValuePairs pairs = {{"SCRIPT_NAME", "/index.php"},
                          {std::string(200, 'N'), std::string(100000, 'v')},
                          {"EMPTY", ""},
                          {"", "x"}};
  std::string body;
  for (auto& [n, v] : pairs) append_name_value(body, n, v);
  // 11 and 10 take one byte each; 200 and 100000 four.
  EXPECT_EQ(static_cast<unsigned char>(body[0]), 11);
  std::size_t second = 2 + 11 + 10;
  EXPECT_EQ(static_cast<unsigned char>(body[second]), 0x80);
  EXPECT_EQ(static_cast<unsigned char>(body[second + 3]), 200);
  EXPECT_EQ(parse_name_values(body), pairs);
}

TEST(FastCGIRecord, ParamsStreamRoundTripAcrossRecords) {
  NameValuePairs pairs;
  for (int i = 0; i < 50; ++i)
    pairs.emplace_back("HTTP_X_" + std::to_string(i), std::string(3000, 'a' + i % 26));
  std::string b;
  append_params(b, 9, views_of(pairs));
  std::string stream;
  auto records = params_records(b, &stream);
  EXPECT_GT(records.size(), 3u);
  EXPECT_EQ(parse_name_values(stream), pairs);
}

TEST(FastCGIRecord, ParamsThatFitOneRecordTakeOneAndTheEmptyOne) {
  // Up to 65535 bytes of pairs go in one record (written in place); one byte more needs
  // a second. A pair here is 1 + 4 length bytes (values of 128 bytes or more), a 1-byte
  // name and a value.
  for (std::size_t total : {std::size_t{200}, kMaxContentLength, kMaxContentLength + 1}) {
    NameValuePairs pairs = {{"A", std::string(total - 6, 'v')}};
    std::string b;
    append_params(b, 9, views_of(pairs));
    std::string stream;
    auto records = params_records(b, &stream);
    EXPECT_EQ(records.size(), total <= kMaxContentLength ? 2u : 3u) << total;
    EXPECT_EQ(stream.size(), total);
    EXPECT_EQ(b.size() % 8, 0u);  // every record padded to eight bytes
    EXPECT_EQ(parse_name_values(stream), pairs);
  }
}

TEST(FastCGIRecord, GetValuesAndResult) {
  std::string b;
  append_get_values(b, {"FCGI_MAX_CONNS", "FCGI_MPXS_CONNS"});
  std::vector<std::string> contents;
  auto records = split_all(b, 3, &contents);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].type, 9);
  EXPECT_EQ(records[0].request_id, 0);
  auto asked = parse_name_values(contents[0]);
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0].first, "FCGI_MAX_CONNS");

  std::string r;
  append_get_values_result(r, {{"FCGI_MAX_CONNS", "2"}});
  append_stream(r, RecordType::stdout_, 1, "x");
  append_end_request(r, 1, 0, ProtocolStatus::request_complete);
  Collected c;
  ResponseParser p(1, c);
  p.feed(r);
  ASSERT_EQ(c.values.size(), 1u);
  EXPECT_EQ(c.values[0].second, "2");
  EXPECT_TRUE(p.complete());
}

TEST(FastCGIRecord, UnknownTypeEncoding) {
  std::string b;
  append_unknown_type(b, 42);
  EXPECT_EQ(b.size(), 16u);
  EXPECT_EQ(b[1], 11);
  EXPECT_EQ(b[8], 42);
}

TEST(FastCGIResponseParser, WholeBytewiseAndSplit) {
  std::string bytes = response_bytes(3);
  for (std::size_t step :
       {bytes.size(), std::size_t(1), std::size_t(5), std::size_t(8), std::size_t(4093)}) {
    Collected c;
    ResponseParser p(3, c);
    EXPECT_FALSE(p.started());
    for (std::size_t i = 0; i < bytes.size(); i += step) {
      p.feed(std::string_view(bytes).substr(i, step));
    }
    EXPECT_TRUE(p.complete()) << step;
    EXPECT_TRUE(p.started());
    EXPECT_EQ(c.out, "Content-Type: text/plain\r\n\r\nhello" + std::string(70000, 'x'));
    EXPECT_EQ(c.err, "warning");
    EXPECT_EQ(c.ends, 1);
    EXPECT_EQ(c.app_status, 7u);
    EXPECT_NO_THROW(p.feed_eof());
  }
}

TEST(FastCGIResponseParser, ProtocolStatusReported) {
  std::string b;
  append_end_request(b, 1, 0, ProtocolStatus::overloaded);
  Collected c;
  ResponseParser p(1, c);
  p.feed(b);
  EXPECT_EQ(c.status, ProtocolStatus::overloaded);
}

struct MalformedCase {
  const char* name;
  std::string bytes;
  bool eof = false;  // the error shows only at EOF
};

TEST(FastCGIResponseParser, MalformedTable) {
  auto rec = [](std::uint8_t version, std::uint8_t type, std::uint16_t id, std::string content,
                std::uint8_t padding = 0) {
    std::string b;
    b += static_cast<char>(version);
    b += static_cast<char>(type);
    b += static_cast<char>(id >> 8);
    b += static_cast<char>(id & 0xff);
    b += static_cast<char>(content.size() >> 8);
    b += static_cast<char>(content.size() & 0xff);
    b += static_cast<char>(padding);
    b += '\0';
    return b + content + std::string(padding, '\0');
  };
  std::string end_ok;
  append_end_request(end_ok, 1, 0, ProtocolStatus::request_complete);
  std::string out_end;
  append_stream(out_end, RecordType::stdout_, 1, "");
  std::vector<MalformedCase> cases = {
      {"version 0", rec(0, 6, 1, "hi")},
      {"version 2", rec(2, 6, 1, "hi")},
      {"version 255 in the first byte alone", std::string(1, '\xff')},
      {"wrong request id", rec(1, 6, 2, "hi")},
      {"end_request for another id", rec(1, 3, 7, std::string(8, '\0'))},
      {"end_request too short", rec(1, 3, 1, std::string(5, '\0'))},
      {"end_request too long", rec(1, 3, 1, std::string(9, '\0'))},
      {"begin_request from a responder", rec(1, 1, 1, std::string(8, '\0'))},
      {"params from a responder", rec(1, 4, 1, "")},
      {"stdin from a responder", rec(1, 5, 1, "x")},
      {"data from a responder", rec(1, 8, 1, "x")},
      {"unknown record type 99", rec(1, 99, 1, "x")},
      {"unknown_type answer", rec(1, 11, 0, std::string(8, '\0'))},
      {"stdout on request id 0", rec(1, 6, 0, "x")},
      {"record after end_request", end_ok + rec(1, 6, 1, "late")},
      {"second end_request", end_ok + end_ok},
      {"stdout after its end", out_end + rec(1, 6, 1, "more")},
      {"get_values_result with a length past its end", rec(1, 10, 0,
                                                           std::string("\x05\x01"
                                                                       "ab",
                                                                       4))},
      {"get_values_result with a truncated 4-byte length",
       rec(1, 10, 0, std::string("\x80\x00", 2))},
      {"truncated header at EOF", rec(1, 6, 1, "abc").substr(0, 5), true},
      {"truncated content at EOF", rec(1, 6, 1, "abcdef").substr(0, 11), true},
      {"truncated padding at EOF", rec(1, 6, 1, "abc", 5).substr(0, 14), true},
      {"EOF without end_request", rec(1, 6, 1, "abc"), true},
      {"EOF on an empty connection", "", true},
      {"oversized declared name length", rec(1, 10, 0, std::string("\xff\xff\xff\xff\x00", 5))},
  };
  for (const auto& tc : cases) {
    for (std::size_t step : {std::size_t(0), std::size_t(1), std::size_t(3)}) {
      Collected c;
      ResponseParser p(1, c);
      bool threw = false;
      try {
        if (step == 0) {
          p.feed(tc.bytes);
        } else {
          for (std::size_t i = 0; i < tc.bytes.size(); i += step) {
            p.feed(std::string_view(tc.bytes).substr(i, step));
          }
        }
        if (tc.eof) p.feed_eof();
      } catch (const ProtocolError&) {
        threw = true;
      }
      EXPECT_TRUE(threw) << tc.name << " (step " << step << ")";
    }
  }
}

TEST(FastCGIRecordParser, BufferIsBoundedByOneRecord) {
  std::string b;
  append_record(b, RecordType::stdout_, 1, std::string(65535, 'q'));
  std::size_t max_buffered = 0;
  RecordParser p([](const Record&) {});
  for (std::size_t i = 0; i < b.size() * 3; i += 1000) {
    std::string three = b + b + b;
    p.feed(std::string_view(three).substr(i, 1000));
    max_buffered = std::max(max_buffered, p.buffered());
  }
  EXPECT_LE(max_buffered, kHeaderSize + 65535 + 255);
}
