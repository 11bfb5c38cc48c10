// Strict, sans-I/O HTTP/1.1 head parser (RFC 9110/9112). Fed the bytes received so far, it
// answers "need more", "done after N bytes", or an error with the status to send. It never
// reads or writes a socket, so it is unit-tested and fuzzed on its own.
//
// Refused outright (the connection is then closed): bare LF or CR, NUL and other controls,
// obs-fold, whitespace before a colon, bad token characters, any version but HTTP/1.0 and
// HTTP/1.1, missing or repeated Host, Content-Length that is repeated, signed, non-decimal or
// overflowing, Content-Length together with Transfer-Encoding, a transfer coding other than a
// lone "chunked", Transfer-Encoding on HTTP/1.0, absolute-form whose authority differs from
// Host, and fragments in the target.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace gh::http {

struct ParseLimits {
  size_t max_request_line = 8192;
  size_t max_header_bytes = 32768;
  size_t max_headers = 100;
};

enum class ParseStatus { kIncomplete, kDone, kError };

struct ParseResult {
  ParseStatus status = ParseStatus::kIncomplete;
  size_t consumed = 0;      // bytes of the head (kDone)
  int http_status = 0;      // kError: 400, 414, 417, 431, 501, 505
  const char* reason = "";  // kError: short description for the error body and the log
};

ParseResult parse_request_head(std::string_view buf, const ParseLimits& limits, RequestHead& out);

// Upstream responses: equally strict about framing; `request_method` decides bodiless HEAD.
ParseResult parse_response_head(std::string_view buf, const ParseLimits& limits,
                                std::string_view request_method, ResponseHead& out);

bool is_tchar(unsigned char c);

namespace detail {
// The header-field lines of `buf` up to and including the empty line (for the tests): the
// parser's own path, or with `bytewise` its byte-at-a-time path alone; both must agree.
ParseResult parse_header_fields(std::string_view buf, const ParseLimits& limits,
                                std::vector<Header>& headers, size_t* end, bool bytewise);
}  // namespace detail

}  // namespace gh::http
