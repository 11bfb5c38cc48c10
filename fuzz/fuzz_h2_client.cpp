// libFuzzer target for the HTTP/2 client side towards upstreams (http::H2Client on nghttp2):
// three requests are submitted (one with a body), then the fuzzer's bytes are fed in pieces as
// the upstream's frames, the output taken between them and response data consumed as the
// gateway consumes it. Checks invariants of what the handler is told: heads, data, trailers
// and ends only for submitted streams and in order, bounded header lists, no interim status
// reported as final, an ended connection always says why.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "http/h2_client.h"

namespace {

enum class St { kWaiting, kHead, kClosed };

class Handler : public gh::http::H2ClientHandler {
 public:
  gh::http::H2Client* client = nullptr;
  std::map<int32_t, St> streams;

  void on_response(int32_t id, int status, gh::http::Fields&& f) override {
    auto it = streams.find(id);
    if (it == streams.end() || it->second != St::kWaiting) std::abort();
    if (status < 200 || status > 999) std::abort();  // interim heads are never final
    if (f.size() > 20) std::abort();                 // the limit below
    it->second = St::kHead;
  }
  void on_data(int32_t id, const uint8_t*, size_t n) override {
    auto it = streams.find(id);
    if (it == streams.end() || it->second != St::kHead) std::abort();
    client->consume(id, n);
  }
  void on_trailers(int32_t id, gh::http::Fields&& f) override {
    auto it = streams.find(id);
    if (it == streams.end() || it->second != St::kHead || f.size() > 20) std::abort();
  }
  void on_close(int32_t id, uint32_t code) override {
    auto it = streams.find(id);
    if (it == streams.end() || it->second == St::kClosed) std::abort();
    if (code == 0 && it->second != St::kHead) std::abort();  // a clean end had a head
    it->second = St::kClosed;
  }
  void on_drained(int32_t id) override {
    if (!streams.count(id)) std::abort();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Handler h;
  gh::http::H2ClientLimits lim;
  lim.max_header_list_bytes = 2048;
  lim.max_headers = 20;
  gh::http::H2Client client(h, lim);
  h.client = &client;
  for (int i = 0; i < 3; ++i) {
    gh::http::Fields f = {{":method", i == 1 ? "POST" : "GET"},
                          {":scheme", "https"},
                          {":authority", "upstream"},
                          {":path", "/" + std::to_string(i)}};
    int32_t id = client.submit(f, i == 1);
    if (id <= 0) std::abort();
    h.streams[id] = St::kWaiting;
    if (i == 1) {
      client.send_data(id, std::string(70000, 'b'));  // more than the initial window
      client.end_data(id);
    }
  }
  std::string out;
  client.take_output(out);
  bool ok = true;
  size_t off = 0, step = 1;
  while (ok && off < size) {
    size_t n = std::min(size - off, step);
    ok = client.receive(data + off, n);
    off += n;
    step = step * 3 % 1021 + 1;
    out.clear();
    client.take_output(out);
    if (out.size() > (1u << 24)) std::abort();
  }
  if (!ok && client.failure().empty()) std::abort();
  return 0;
}
