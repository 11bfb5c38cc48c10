#include "http/chunked.h"

#include <gtest/gtest.h>

using gh::http::ChunkedDecoder;

namespace {
// Feeds `in` in pieces of `piece` bytes; returns decoded data, or "ERR" on failure.
std::string decode(std::string_view in, size_t piece = 1000) {
  ChunkedDecoder d;
  std::string out, buf;
  size_t pos = 0;
  while (!d.done() && !d.failed()) {
    auto s = d.step(buf);
    out.append(s.data);
    buf.erase(0, s.consumed);
    if (d.failed() || d.done()) break;
    if (s.consumed == 0 && s.data.empty()) {
      if (pos >= in.size()) return "INCOMPLETE";
      buf.append(in.substr(pos, piece));
      pos += piece;
    }
  }
  return d.failed() ? "ERR" : out;
}
}  // namespace

TEST(Chunked, DecodesWholeAndByteByByte) {
  std::string body = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
  EXPECT_EQ(decode(body), "hello world");
  EXPECT_EQ(decode(body, 1), "hello world");
  EXPECT_EQ(decode("A\r\n0123456789\r\n0\r\n\r\n"), "0123456789");
}

TEST(Chunked, RefusesBadInput) {
  EXPECT_EQ(decode("x\r\n"), "ERR");
  EXPECT_EQ(decode("0x5\r\nhello\r\n0\r\n\r\n"), "ERR");
  EXPECT_EQ(decode(" 5\r\nhello\r\n0\r\n\r\n"), "ERR");
  EXPECT_EQ(decode("5\nhello\r\n0\r\n\r\n"), "ERR");
  EXPECT_EQ(decode("5\r\nhelloXX0\r\n\r\n"), "ERR");
  EXPECT_EQ(decode("10000000000000000\r\n"), "ERR");  // 17 digits
  EXPECT_EQ(decode("ffffffffffffffff\r\n"), "ERR");   // > INT64_MAX
  EXPECT_EQ(decode("\r\n"), "ERR");
  EXPECT_EQ(decode("5;a\nb\r\n"), "ERR");
  EXPECT_EQ(decode("0\r\nX: y\n\r\n"), "ERR");
  EXPECT_EQ(decode("0\r\n folded\r\n\r\n"), "ERR");
}

TEST(Chunked, AppendHeader) {
  std::string s;
  gh::http::append_chunk_header(s, 255);
  EXPECT_EQ(s, "ff\r\n");
  s.clear();
  gh::http::append_chunk_header(s, 0);
  EXPECT_EQ(s, "0\r\n");
}

TEST(Chunked, KeepsCheckedTrailerLines) {
  gh::http::ChunkedDecoder d;
  std::string in = "3\r\nabc\r\n0\r\nX-Sum: 12\r\nGrpc-Status:0\r\n\r\n";
  std::string_view rest = in;
  while (!d.done() && !d.failed()) {
    auto s = d.step(rest);
    rest.remove_prefix(s.consumed);
    if (s.consumed == 0) break;
  }
  ASSERT_TRUE(d.done());
  EXPECT_EQ(d.trailers(), "X-Sum: 12\r\nGrpc-Status:0\r\n");
  // Lines that are not fields end the body as malformed.
  EXPECT_EQ(decode("0\r\nno colon here\r\n\r\n"), "ERR");
  EXPECT_EQ(decode("0\r\n: empty name\r\n\r\n"), "ERR");
  EXPECT_EQ(decode("0\r\nbad name: x\r\n\r\n"), "ERR");
  EXPECT_EQ(decode("0\r\n\r\n"), "");
}
