#include "http/http1_parser.h"

#include <gtest/gtest.h>

using namespace gh::http;

namespace {
ParseResult parse(std::string_view s, RequestHead& out, ParseLimits l = {}) {
  return parse_request_head(s, l, out);
}
int status_of(std::string_view s) {
  RequestHead h;
  auto r = parse(s, h);
  if (r.status == ParseStatus::kError) return r.http_status;
  if (r.status == ParseStatus::kIncomplete) return -1;
  return 0;
}
}  // namespace

TEST(Http1Parser, ParsesSimpleGet) {
  RequestHead h;
  std::string req = "GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-A:  v  \r\n\r\nrest";
  auto r = parse(req, h);
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r.consumed, req.size() - 4);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.path, "/a/b");
  EXPECT_EQ(h.query, "x=1");
  EXPECT_TRUE(h.has_query);
  EXPECT_EQ(h.host, "example.com");
  EXPECT_EQ(h.get("x-a"), "v");
  EXPECT_TRUE(h.keep_alive);
  EXPECT_EQ(h.body, BodyKind::kNone);
}

TEST(Http1Parser, IncompleteUntilBlankLine) {
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\n"), -1);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r"), -1);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\n\r"), -1);
}

TEST(Http1Parser, Framing) {
  RequestHead h;
  ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", h).status,
            ParseStatus::kDone);
  EXPECT_EQ(h.body, BodyKind::kLength);
  EXPECT_EQ(h.content_length, 12u);
  ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", h).status,
            ParseStatus::kDone);
  EXPECT_EQ(h.body, BodyKind::kChunked);
}

TEST(Http1Parser, RefusesSmugglingShapes) {
  const char* cases[] = {
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
      "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX\t: b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
      "GET / HTTP/1.1\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\n\r\n",
      "GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
      "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nBad[Name]: x\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.0\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
      "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
      "GET / http/1.1\r\nHost: a\r\n\r\n",
      "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /#frag HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\n: x\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: \r\n\r\n",
      "GET relative HTTP/1.1\r\nHost: a\r\n\r\n",
  };
  for (const char* c : cases) {
    EXPECT_EQ(status_of(c), 400) << c;
  }
  // NUL needs an explicit length.
  std::string nul = std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a") + '\0' + "b\r\n\r\n";
  EXPECT_EQ(status_of(nul), 400);
}

TEST(Http1Parser, Limits) {
  ParseLimits l;
  l.max_request_line = 100;
  l.max_header_bytes = 200;
  l.max_headers = 3;
  RequestHead h;
  std::string longline = "GET /" + std::string(200, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(parse(longline, h, l).http_status, 414);
  EXPECT_EQ(parse("GET /" + std::string(200, 'a'), h, l).http_status, 414);  // before its end
  std::string bigheader = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(300, 'b') + "\r\n\r\n";
  EXPECT_EQ(parse(bigheader, h, l).http_status, 431);
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(300, 'b'), h, l).http_status,
            431);
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", h, l).http_status,
            431);
}

TEST(Http1Parser, ConnectionSemantics) {
  RequestHead h;
  parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n", h);
  EXPECT_FALSE(h.keep_alive);
  parse("GET / HTTP/1.0\r\nHost: a\r\n\r\n", h);
  EXPECT_FALSE(h.keep_alive);
  parse("GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", h);
  EXPECT_TRUE(h.keep_alive);
  parse("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", h);
  EXPECT_TRUE(h.expect_continue);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nExpect: tea\r\n\r\n"), 417);
  EXPECT_EQ(status_of("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"), 405);
}

TEST(Http1Parser, AbsoluteFormMatchingHost) {
  RequestHead h;
  ASSERT_EQ(parse("GET http://A:80/x?y HTTP/1.1\r\nHost: a:80\r\n\r\n", h).status,
            ParseStatus::kDone);
  EXPECT_EQ(h.path, "/x");
  EXPECT_EQ(h.query, "y");
  ASSERT_EQ(parse("GET https://a HTTP/1.1\r\nHost: a\r\n\r\n", h).status, ParseStatus::kDone);
  EXPECT_EQ(h.path, "/");
}

TEST(Http1Parser, LeadingEmptyLineTolerated) {
  EXPECT_EQ(status_of("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
}

TEST(Http1Parser, ResponseFraming) {
  ResponseHead r;
  ParseLimits l;
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", l, "GET", r).status,
            ParseStatus::kDone);
  EXPECT_EQ(r.body, BodyKind::kLength);
  ASSERT_EQ(
      parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", l, "HEAD", r).status,
      ParseStatus::kDone);
  EXPECT_EQ(r.body, BodyKind::kNone);
  parse_response_head("HTTP/1.1 204 No Content\r\n\r\n", l, "GET", r);
  EXPECT_EQ(r.body, BodyKind::kNone);
  parse_response_head("HTTP/1.1 200 OK\r\n\r\n", l, "GET", r);
  EXPECT_EQ(r.body, BodyKind::kUntilClose);
  EXPECT_FALSE(r.keep_alive);
  parse_response_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", l, "GET", r);
  EXPECT_EQ(r.body, BodyKind::kChunked);
  EXPECT_EQ(
      parse_response_head(
          "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", l, "GET", r)
          .http_status,
      502);
  EXPECT_EQ(parse_response_head("HTTP/1.1 2x0 OK\r\n\r\n", l, "GET", r).http_status, 502);
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\nX: y\r\n\r\n", l, "GET", r).http_status, 502);
}

// The header-field fast path (whole lines, values eight bytes at a time) against the byte-wise
// path on random header sections built from the bytes that matter (token characters, colon,
// whitespace, CR, LF, NUL, DEL, other controls, obs-text), cut at every length: the same
// status, reason, consumed bytes and fields, every time.
TEST(Http1Parser, HeaderFastPathAgreesWithTheBytewisePath) {
  const std::string_view alphabet[] = {"a",
                                       "Z",
                                       "-",
                                       "0",
                                       ":",
                                       ": ",
                                       " ",
                                       "\t",
                                       "\r",
                                       "\n",
                                       "\r\n",
                                       std::string_view("\0", 1),
                                       "\x7f",
                                       "\x01",
                                       "\x80",
                                       "\xff",
                                       "value with spaces",
                                       "X-Long-Name",
                                       ";",
                                       "\""};
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  auto next = [&] {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
  };
  auto check = [](std::string_view in, const ParseLimits& lim) {
    std::vector<Header> fast, slow;
    size_t fast_end = 0, slow_end = 0;
    auto f = detail::parse_header_fields(in, lim, fast, &fast_end, false);
    auto s = detail::parse_header_fields(in, lim, slow, &slow_end, true);
    ASSERT_EQ(static_cast<int>(f.status), static_cast<int>(s.status)) << testing::PrintToString(in);
    ASSERT_EQ(f.http_status, s.http_status) << testing::PrintToString(in);
    ASSERT_STREQ(f.reason, s.reason) << testing::PrintToString(in);
    ASSERT_EQ(f.consumed, s.consumed) << testing::PrintToString(in);
    if (f.status != ParseStatus::kDone) return;
    ASSERT_EQ(fast_end, slow_end);
    ASSERT_EQ(fast.size(), slow.size()) << testing::PrintToString(in);
    for (size_t i = 0; i < fast.size(); ++i) {
      ASSERT_EQ(fast[i].name, slow[i].name) << testing::PrintToString(in);
      ASSERT_EQ(fast[i].value, slow[i].value) << testing::PrintToString(in);
    }
  };
  ParseLimits tight;
  tight.max_header_bytes = 40;
  tight.max_headers = 3;
  int done = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string in;
    const int lines = static_cast<int>(next() % 5);
    for (int l = 0; l < lines; ++l) {
      // Mostly well-formed lines, with a random piece dropped in now and then.
      in += (next() % 4 == 0) ? std::string(alphabet[next() % std::size(alphabet)]) : "Name";
      in += (next() % 6 == 0) ? "" : ":";
      const int pieces = static_cast<int>(next() % 6);
      for (int p = 0; p < pieces; ++p) in += alphabet[next() % std::size(alphabet)];
      in += (next() % 8 == 0) ? "\n" : "\r\n";
    }
    if (next() % 3 != 0) in += "\r\n";
    for (size_t cut = 0; cut <= in.size(); ++cut) {
      check(std::string_view(in).substr(0, cut), ParseLimits{});
      check(std::string_view(in).substr(0, cut), tight);
      if (HasFatalFailure()) return;
    }
    std::vector<Header> hs;
    size_t end = 0;
    if (detail::parse_header_fields(in, ParseLimits{}, hs, &end, false).status ==
        ParseStatus::kDone)
      ++done;
  }
  // The inputs reach the end of a head often enough for the fields to be compared.
  EXPECT_GT(done, 2000);
}
