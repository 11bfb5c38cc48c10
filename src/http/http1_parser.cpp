#include "http/http1_parser.h"

#include <array>
#include <bit>
#include <cstdint>

#include "core/util.h"

namespace gh::http {

namespace {

constexpr std::array<bool, 256> make_tchar() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr auto kTchar = make_tchar();

// field-value characters: HTAB, SP, VCHAR, obs-text.
constexpr bool is_value_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }
constexpr std::array<bool, 256> make_value_char() {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = is_value_char(static_cast<unsigned char>(c));
  return t;
}
constexpr auto kValueChar = make_value_char();

// The fields the parser itself looks at, told apart by length first (most names match none).
constexpr unsigned kHost = 1, kContentLength = 2, kTransferEncoding = 4, kConnection = 8,
                   kExpect = 16;
unsigned field_bit(std::string_view name) {
  switch (name.size()) {
    case 4:
      return iequals(name, "host") ? kHost : 0u;
    case 6:
      return iequals(name, "expect") ? kExpect : 0u;
    case 10:
      return iequals(name, "connection") ? kConnection : 0u;
    case 14:
      return iequals(name, "content-length") ? kContentLength : 0u;
    case 17:
      return iequals(name, "transfer-encoding") ? kTransferEncoding : 0u;
    default:
      return 0;
  }
}

ParseResult error(int status, const char* reason) {
  ParseResult r;
  r.status = ParseStatus::kError;
  r.http_status = status;
  r.reason = reason;
  return r;
}

std::string_view header_get(const std::vector<Header>& hs, std::string_view name) {
  for (const auto& h : hs) {
    if (iequals(h.name, name)) return h.value;
  }
  return {};
}

// A high bit in each byte of `v` below 0x20 or equal to 0x7f: the bytes a field value may not
// hold, HTAB aside (obs-text, 0x80 and up, is allowed and never flagged). Borrows only run
// upwards, so the lowest flag always marks the first such byte (load8_le puts the first byte
// lowest).
inline uint64_t special_bytes(uint64_t v) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  const uint64_t del = v ^ (kOnes * 0x7f);
  return (((v - kOnes * 0x20) & ~v) | ((del - kOnes) & ~del)) & kHigh;
}

// The first byte at or after `i` that is below 0x20 or 0x7f; `s.size()` when there is none.
inline size_t find_special(std::string_view s, size_t i) {
  for (; i + 8 <= s.size(); i += 8) {
    if (uint64_t m = special_bytes(load8_le(s.data() + i)))
      return i + static_cast<size_t>(std::countr_zero(m)) / 8;
  }
  for (; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) break;
  }
  return i;
}

// One ordinary header line at `pos` (name, colon, value, CRLF, nothing to refuse): its name, its
// value without surrounding whitespace and the offset just past its LF; false for anything else
// (the last line, an incomplete line, a line to refuse), which the byte-wise parser then takes.
// Names are checked byte by byte (they are short), values eight bytes at a time.
bool plain_field_line(std::string_view buf, size_t pos, Header& out, size_t& next) {
  size_t i = pos;
  while (i < buf.size() && kTchar[static_cast<unsigned char>(buf[i])]) ++i;
  if (i == pos || i >= buf.size() || buf[i] != ':') return false;
  const std::string_view name = buf.substr(pos, i - pos);
  size_t v = i + 1;
  while (v < buf.size() && (buf[v] == ' ' || buf[v] == '\t')) ++v;
  size_t k = v;
  while (true) {
    k = find_special(buf, k);
    if (k + 1 >= buf.size()) return false;  // no CRLF yet
    if (buf[k] == '\t') {
      ++k;
      continue;
    }
    if (buf[k] != '\r' || buf[k + 1] != '\n') return false;
    break;
  }
  size_t e = k;
  while (e > v && (buf[e - 1] == ' ' || buf[e - 1] == '\t')) --e;
  out = Header{name, buf.substr(v, e - v)};
  next = k + 2;
  return true;
}

// Parses header lines starting at `pos` in `buf` until the empty line. On success sets *end to
// the offset just past the empty line. `bytewise` leaves out plain_field_line (the tests compare
// the two ways).
ParseResult parse_fields(std::string_view buf, size_t pos, const ParseLimits& limits,
                         std::vector<Header>& headers, size_t* end, bool bytewise = false) {
  const size_t start = pos;
  while (true) {
    Header h;
    size_t next = 0;
    if (!bytewise && plain_field_line(buf, pos, h, next)) {
      // The same limits, in the same order, as the byte-wise path below.
      if (next - start > limits.max_header_bytes)
        return error(431, "request header fields too large");
      if (headers.size() >= limits.max_headers) return error(431, "too many header fields");
      headers.push_back(h);
      pos = next;
      continue;
    }
    size_t lf = buf.find('\n', pos);
    if (lf == std::string_view::npos) {
      if (buf.size() - start > limits.max_header_bytes)
        return error(431, "request header fields too large");
      // Check what we have so far for bytes that can never become valid, so that a client
      // cannot park garbage in our buffer.
      for (size_t i = pos; i < buf.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(buf[i]);
        if (c == 0) return error(400, "NUL byte in header section");
        if (c == '\r' && i + 1 < buf.size()) return error(400, "bare CR in header section");
      }
      return {};
    }
    if (lf + 1 - start > limits.max_header_bytes)
      return error(431, "request header fields too large");
    if (lf == pos || buf[lf - 1] != '\r') return error(400, "bare LF in header section");
    std::string_view line = buf.substr(pos, lf - 1 - pos);
    pos = lf + 1;
    if (line.empty()) {
      *end = pos;
      return ParseResult{ParseStatus::kDone, pos, 0, ""};
    }
    unsigned char first = static_cast<unsigned char>(line[0]);
    if (first == ' ' || first == '\t') return error(400, "obsolete line folding");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return error(400, "header line without colon");
    if (colon == 0) return error(400, "empty header name");
    std::string_view name = line.substr(0, colon);
    for (unsigned char c : name) {
      if (kTchar[c]) continue;
      if (c == ' ' || c == '\t') return error(400, "whitespace before colon in header");
      return error(400, "invalid character in header name");
    }
    std::string_view value = line.substr(colon + 1);
    for (unsigned char c : value) {
      if (kValueChar[c]) continue;
      if (c == 0) return error(400, "NUL byte in header value");
      if (c == '\r') return error(400, "bare CR in header value");
      return error(400, "invalid character in header value");
    }
    if (headers.size() >= limits.max_headers) return error(431, "too many header fields");
    headers.push_back(Header{name, trim(value)});
  }
}

bool valid_host(std::string_view h) {
  if (h.empty()) return false;
  for (unsigned char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("-._~!$&'()*+,;=:[]%").find(static_cast<char>(c)) !=
                  std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// Content-Length: exactly one header, plain decimal, no list.
ParseResult parse_content_length(const std::vector<Header>& hs, bool* present, uint64_t* value) {
  *present = false;
  for (const auto& h : hs) {
    if (!iequals(h.name, "content-length")) continue;
    if (*present) return error(400, "duplicate Content-Length");
    *present = true;
    auto v = parse_u64(h.value);
    if (!v) return error(400, "invalid Content-Length");
    *value = *v;
  }
  return ParseResult{ParseStatus::kDone, 0, 0, ""};
}

// Transfer-Encoding: the combined list must be exactly "chunked".
ParseResult parse_transfer_encoding(const std::vector<Header>& hs, bool* present) {
  *present = false;
  int codings = 0;
  for (const auto& h : hs) {
    if (!iequals(h.name, "transfer-encoding")) continue;
    *present = true;
    for (auto part : split(h.value, ',')) {
      auto t = trim(part);
      if (t.empty()) return error(400, "empty transfer coding");
      if (!iequals(t, "chunked")) return error(400, "unsupported transfer coding");
      ++codings;
    }
  }
  if (*present && codings != 1) return error(400, "chunked must be the only transfer coding");
  return ParseResult{ParseStatus::kDone, 0, 0, ""};
}

bool has_token(std::string_view list, std::string_view token) {
  while (true) {
    size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) return false;
    list.remove_prefix(comma + 1);
  }
}

// Resets a head for a new parse but keeps the memory of its buffers.
template <typename Head>
void reset_keeping_buffers(Head& out) {
  std::string raw = std::move(out.raw);
  std::vector<Header> headers = std::move(out.headers);
  out = Head{};
  out.raw = std::move(raw);
  out.headers = std::move(headers);
}

}  // namespace

bool is_tchar(unsigned char c) { return kTchar[c]; }

ParseResult detail::parse_header_fields(std::string_view buf, const ParseLimits& limits,
                                        std::vector<Header>& headers, size_t* end, bool bytewise) {
  return parse_fields(buf, 0, limits, headers, end, bytewise);
}

std::string_view RequestHead::get(std::string_view name) const { return header_get(headers, name); }
bool RequestHead::has(std::string_view name) const {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return true;
  }
  return false;
}
std::string_view ResponseHead::get(std::string_view name) const {
  return header_get(headers, name);
}

ParseResult parse_request_head(std::string_view buf, const ParseLimits& limits, RequestHead& out) {
  // RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request-line.
  size_t pos = 0;
  while (pos + 1 < buf.size() && buf[pos] == '\r' && buf[pos + 1] == '\n' && pos < 4) pos += 2;

  size_t lf = buf.find('\n', pos);
  if (lf == std::string_view::npos) {
    if (buf.size() - pos > limits.max_request_line) return error(414, "request line too long");
    for (size_t i = pos; i < buf.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(buf[i]);
      if (c == 0) return error(400, "NUL byte in request line");
      if (c == '\r' && i + 1 < buf.size()) return error(400, "bare CR in request line");
    }
    return {};
  }
  if (lf - pos > limits.max_request_line + 1) return error(414, "request line too long");
  if (lf == pos || buf[lf - 1] != '\r') return error(400, "bare LF in request line");
  std::string_view line = buf.substr(pos, lf - 1 - pos);
  for (unsigned char c : line) {
    if (c < 0x20 || c == 0x7f) return error(400, "control character in request line");
  }
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return error(400, "malformed request line");
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return error(400, "malformed request line");
  if (line.find(' ', sp2 + 1) != std::string_view::npos)
    return error(400, "malformed request line");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  for (unsigned char c : method) {
    if (!kTchar[c]) return error(400, "invalid character in method");
  }
  for (unsigned char c : target) {
    if (c <= 0x20 || c >= 0x7f) return error(400, "invalid character in request target");
  }
  int minor;
  if (version == "HTTP/1.1") {
    minor = 1;
  } else if (version == "HTTP/1.0") {
    minor = 0;
  } else {
    return error(400, "unsupported HTTP version");
  }

  // The fields land in out.headers (views into buf until re-pointed below), reusing its memory.
  out.headers.clear();
  size_t end = 0;
  ParseResult fr = parse_fields(buf, lf + 1, limits, out.headers, &end);
  if (fr.status != ParseStatus::kDone) return fr;

  // The head is complete: copy it so that views survive the caller's buffer, then re-point.
  reset_keeping_buffers(out);
  out.raw.assign(buf.data(), end);
  const char* base = buf.data();
  auto rebase = [&](std::string_view v) {
    return std::string_view(out.raw.data() + (v.data() - base), v.size());
  };
  out.method = rebase(method);
  out.target = rebase(target);
  out.version_minor = minor;
  unsigned seen = 0;
  int hosts = 0;
  for (auto& h : out.headers) {
    h = Header{rebase(h.name), rebase(h.value)};
    unsigned bit = field_bit(h.name);
    seen |= bit;
    if (bit == kHost) {
      ++hosts;
      out.host = h.value;
    }
  }

  // Host.
  if (hosts == 0) return error(400, "missing Host header");
  if (hosts > 1) return error(400, "duplicate Host header");
  if (!valid_host(out.host)) return error(400, "invalid Host header");

  // Target forms.
  std::string_view t = out.target;
  if (t.find('#') != std::string_view::npos) return error(400, "fragment in request target");
  if (out.method == "CONNECT") return error(405, "CONNECT is not supported");
  if (!t.empty() && t[0] == '/') {
    // origin-form
  } else if (t == "*") {
    if (out.method != "OPTIONS") return error(400, "asterisk-form is only valid with OPTIONS");
  } else {
    std::string_view rest;
    if (t.size() > 7 && iequals(t.substr(0, 7), "http://")) {
      rest = t.substr(7);
    } else if (t.size() > 8 && iequals(t.substr(0, 8), "https://")) {
      rest = t.substr(8);
    } else {
      return error(400, "invalid request target");
    }
    size_t slash = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, slash);
    if (authority.find('@') != std::string_view::npos)
      return error(400, "userinfo in request target");
    if (!iequals(authority, out.host)) return error(400, "request target host differs from Host");
    t = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    if (t[0] == '?') {
      // "http://h?q" has an empty path: treat as "/" with the query.
      out.path = std::string_view("/");
      out.query = t.substr(1);
      out.has_query = true;
      t = {};
    }
  }
  if (!t.empty()) {
    size_t q = t.find('?');
    out.path = t.substr(0, q);
    if (q != std::string_view::npos) {
      out.query = t.substr(q + 1);
      out.has_query = true;
    }
  }

  // Framing.
  bool has_cl = false, has_te = false;
  uint64_t cl = 0;
  if (seen & kContentLength) {
    if (auto r = parse_content_length(out.headers, &has_cl, &cl); r.status == ParseStatus::kError)
      return r;
  }
  if (seen & kTransferEncoding) {
    if (auto r = parse_transfer_encoding(out.headers, &has_te); r.status == ParseStatus::kError)
      return r;
  }
  if (has_te && minor == 0) return error(400, "Transfer-Encoding in an HTTP/1.0 request");
  if (has_te && has_cl) return error(400, "both Content-Length and Transfer-Encoding");
  if (has_te) {
    out.body = BodyKind::kChunked;
  } else if (has_cl && cl > 0) {
    out.body = BodyKind::kLength;
    out.content_length = cl;
  }

  // Connection semantics.
  std::string_view conn;
  bool close = false, ka = false;
  for (const auto& h : out.headers) {
    if (!(seen & kConnection)) break;  // no such field: skip the scan
    if (iequals(h.name, "connection")) {
      conn = h.value;
      close = close || has_token(conn, "close");
      ka = ka || has_token(conn, "keep-alive");
    }
  }
  out.keep_alive = minor == 1 ? !close : (ka && !close);

  for (const auto& h : out.headers) {
    if (!(seen & kExpect)) break;  // no such field: skip the scan
    if (iequals(h.name, "expect")) {
      if (!iequals(h.value, "100-continue")) return error(417, "unsupported expectation");
      out.expect_continue = minor == 1;
    }
  }
  return ParseResult{ParseStatus::kDone, end, 0, ""};
}

ParseResult parse_response_head(std::string_view buf, const ParseLimits& limits,
                                std::string_view request_method, ResponseHead& out) {
  size_t lf = buf.find('\n');
  if (lf == std::string_view::npos) {
    if (buf.size() > limits.max_request_line) return error(502, "status line too long");
    return {};
  }
  if (lf == 0 || buf[lf - 1] != '\r') return error(502, "bare LF in status line");
  std::string_view line = buf.substr(0, lf - 1);
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') ||
      line[8] != ' ')
    return error(502, "malformed status line");
  int minor = line[7] - '0';
  int status = 0;
  for (int i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return error(502, "malformed status code");
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) return error(502, "malformed status code");
  if (line.size() > 12 && line[12] != ' ') return error(502, "malformed status line");
  for (unsigned char c : line) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return error(502, "control character in status line");
  }
  out.headers.clear();
  size_t end = 0;
  ParseResult fr = parse_fields(buf, lf + 1, limits, out.headers, &end);
  if (fr.status == ParseStatus::kError) return error(502, "malformed upstream response headers");
  if (fr.status != ParseStatus::kDone) return fr;

  reset_keeping_buffers(out);
  out.raw.assign(buf.data(), end);
  const char* base = buf.data();
  auto rebase = [&](std::string_view v) {
    return std::string_view(out.raw.data() + (v.data() - base), v.size());
  };
  out.status = status;
  out.version_minor = minor;
  out.reason = line.size() > 13 ? rebase(line.substr(13)) : std::string_view();
  unsigned seen = 0;
  for (auto& h : out.headers) {
    h = Header{rebase(h.name), rebase(h.value)};
    seen |= field_bit(h.name);
  }

  bool close = false, ka = false;
  for (const auto& h : out.headers) {
    if (!(seen & kConnection)) break;  // no such field: skip the scan
    if (iequals(h.name, "connection")) {
      close = close || has_token(h.value, "close");
      ka = ka || has_token(h.value, "keep-alive");
    }
  }
  out.keep_alive = minor == 1 ? !close : (ka && !close);

  bool has_cl = false, has_te = false;
  uint64_t cl = 0;
  if ((seen & kContentLength) &&
      parse_content_length(out.headers, &has_cl, &cl).status == ParseStatus::kError)
    return error(502, "invalid Content-Length from upstream");
  bool chunked_last = false;
  for (const auto& h : out.headers) {
    if (!(seen & kTransferEncoding)) break;  // no such field: skip the scan
    if (!iequals(h.name, "transfer-encoding")) continue;
    has_te = true;
    auto parts = split(h.value, ',');
    chunked_last = iequals(trim(parts.back()), "chunked");
  }
  if (has_te && has_cl)
    return error(502, "upstream sent both Content-Length and Transfer-Encoding");
  if ((status >= 100 && status < 200) || status == 204 || status == 304 ||
      request_method == "HEAD") {
    out.body = BodyKind::kNone;
    out.content_length = cl;
  } else if (has_te) {
    out.body = chunked_last ? BodyKind::kChunked : BodyKind::kUntilClose;
    if (!chunked_last) out.keep_alive = false;
  } else if (has_cl) {
    out.body = cl > 0 ? BodyKind::kLength : BodyKind::kNone;
    out.content_length = cl;
  } else {
    out.body = BodyKind::kUntilClose;
    out.keep_alive = false;
  }
  return ParseResult{ParseStatus::kDone, end, 0, ""};
}

}  // namespace gh::http
