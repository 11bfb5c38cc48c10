// Parsed HTTP/1 message heads. The head owns its bytes; every view points into `raw`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gh::http {

struct Header {
  std::string_view name;
  std::string_view value;
};

enum class BodyKind { kNone, kLength, kChunked, kUntilClose };

struct RequestHead {
  std::string raw;
  std::string_view method;
  std::string_view target;  // as sent
  std::string_view path;    // origin-form path (no query)
  std::string_view query;   // without '?', empty when none
  bool has_query = false;
  int version_minor = 1;  // HTTP/1.0 or HTTP/1.1
  std::vector<Header> headers;
  std::string_view host;  // Host header value
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;
  bool expect_continue = false;

  // First header of that name (case-insensitive), or empty.
  std::string_view get(std::string_view name) const;
  bool has(std::string_view name) const;
};

struct ResponseHead {
  std::string raw;
  int status = 0;
  std::string_view reason;
  int version_minor = 1;
  std::vector<Header> headers;
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;

  std::string_view get(std::string_view name) const;
};

}  // namespace gh::http
