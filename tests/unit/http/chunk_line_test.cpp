#include "tronada/http/chunk_line.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace tronada::detail {
namespace {

// The classification of each byte of `line` (CRLF included) as a string: S size,
// E extension, C the CR, L the end; "!" and the reason at the first error.
std::string classify(std::string_view line) {
  ChunkLineScanner scanner;
  std::string out;
  for (char c : line) {
    switch (scanner.next(static_cast<unsigned char>(c))) {
      case ChunkLineScanner::Byte::kSize:
        out += 'S';
        break;
      case ChunkLineScanner::Byte::kExtension:
        out += 'E';
        break;
      case ChunkLineScanner::Byte::kCR:
        out += 'C';
        break;
      case ChunkLineScanner::Byte::kEnd:
        return out + 'L';
      case ChunkLineScanner::Byte::kError:
        return out + "!" + scanner.error();
    }
  }
  return out;
}

TEST(ChunkLineScannerTest, SizeThenCRLF) {
  EXPECT_EQ(classify("1a2B\r\n"), "SSSSCL");
  EXPECT_EQ(classify("0\r\n"), "SCL");
}

TEST(ChunkLineScannerTest, ExtensionsWithBadWhitespace) {
  EXPECT_EQ(classify("5 ; a = b\r\n"), "SEEEEEEEECL");
  EXPECT_EQ(classify("5;a=1;b=\"x;y\"\r\n"), "SEEEEEEEEEEEECL");
  EXPECT_EQ(classify("5;a\r\n"), "SEECL");
  EXPECT_EQ(classify("5;a=\"\\\"\"\r\n"), "SEEEEEEECL");
}

TEST(ChunkLineScannerTest, Malformed) {
  EXPECT_EQ(classify("\r\n"), "!invalid chunk size");
  EXPECT_EQ(classify("g\r\n"), "!invalid chunk size");
  EXPECT_EQ(classify("5 \r\n"), "SE!invalid chunk extension");
  EXPECT_EQ(classify("5;\r\n"), "SE!invalid chunk extension");
  EXPECT_EQ(classify("5;a=\r\n"), "SEEE!invalid chunk extension");
  EXPECT_EQ(classify("5;a=\"x\r\n"), "SEEEEE!unterminated quoted string in a chunk extension");
  EXPECT_EQ(classify("5;a=\"\x01\""), "SEEEE!invalid character in a quoted chunk extension value");
  EXPECT_EQ(classify("5;a@"), "SEE!invalid chunk extension name");
  EXPECT_EQ(classify("5;a=b@"), "SEEEE!invalid chunk extension value");
  EXPECT_EQ(classify("5\rx"), "SC!bare CR in a chunk-size line");
  EXPECT_EQ(classify("5;a\n"), "SEE!bare LF in a chunk-size line");
}

TEST(ChunkLineScannerTest, CountsTheLineBeforeItsCR) {
  ChunkLineScanner scanner;
  for (char c : std::string_view("12 ; a = b\r")) scanner.next(static_cast<unsigned char>(c));
  EXPECT_EQ(scanner.line_bytes(), 10u);
  scanner.reset();
  EXPECT_EQ(scanner.line_bytes(), 0u);
  EXPECT_EQ(scanner.next('x'), ChunkLineScanner::Byte::kError);
}

}  // namespace
}  // namespace tronada::detail
