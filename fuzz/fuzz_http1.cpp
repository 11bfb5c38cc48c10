// libFuzzer target for the HTTP/1 request path: head parser, path normaliser and chunked body
// decoder, fed the same bytes a client could send. Checks invariants, not just crashes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/chunked.h"
#include "http/http1_parser.h"
#include "proxy/router.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  gh::http::ParseLimits limits;
  limits.max_request_line = 1024;
  limits.max_header_bytes = 4096;
  limits.max_headers = 32;
  gh::http::RequestHead head;
  auto r = gh::http::parse_request_head(in, limits, head);
  if (r.status == gh::http::ParseStatus::kDone) {
    if (r.consumed > size) std::abort();
    // Every view must point into the owned copy.
    for (const auto& h : head.headers) {
      if (h.name.data() < head.raw.data() ||
          h.name.data() + h.name.size() > head.raw.data() + head.raw.size())
        std::abort();
    }
    if (head.body == gh::http::BodyKind::kLength && head.content_length == 0) std::abort();
    std::string norm;
    if (gh::proxy::normalise_path(head.path.empty() ? "/" : head.path, norm)) {
      if (norm.empty() || norm[0] != '/') std::abort();
      if (norm.find("/../") != std::string::npos) std::abort();
    }
    if (head.body == gh::http::BodyKind::kChunked) {
      gh::http::ChunkedDecoder dec;
      std::string_view body = in.substr(r.consumed);
      size_t total = 0;
      while (!body.empty() && !dec.done() && !dec.failed()) {
        auto s = dec.step(body);
        if (s.consumed > body.size()) std::abort();
        total += s.data.size();
        body.remove_prefix(s.consumed);
        if (s.consumed == 0 && s.data.empty()) break;
      }
      if (total > size) std::abort();
    }
  } else if (r.status == gh::http::ParseStatus::kError) {
    if (r.http_status < 400 || r.http_status > 599) std::abort();
  }
  return 0;
}
