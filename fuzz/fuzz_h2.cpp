// libFuzzer target for the HTTP/2 server side (frames, HPACK, flow control, the defences):
// the client preface, then the fuzzer's bytes, fed in pieces to an H2Server whose handler
// answers every request at once (some with a body) and consumes every body byte, as the
// gateway does. Checks invariants of what the handler is told, not just crashes.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "http/h2_server.h"

namespace {

class Handler : public gh::http::H2Handler {
 public:
  gh::http::H2Server* server = nullptr;
  std::set<int32_t> open;

  bool on_request(gh::http::H2Request&& r) override {
    // A stream id is reported once, odd (client-initiated), and never while still open.
    if (r.id <= 0 || (r.id & 1) == 0 || open.count(r.id)) std::abort();
    if (!r.too_large && r.headers.size() > 100) std::abort();
    open.insert(r.id);
    const bool body = (r.id % 4) == 1;
    server->respond(r.id, r.too_large ? 431 : 200, {{"content-type", "text/plain"}}, body);
    if (body) {
      server->send_data(r.id, std::string(static_cast<size_t>(r.id % 5000), 'x'));
      server->end_data(r.id);
    }
    return (r.id % 7) != 0;  // some refused, as when too many exchanges run
  }
  void on_data(int32_t id, const uint8_t*, size_t n) override {
    if (!open.count(id)) std::abort();  // body data only for a stream the owner accepted
    server->consume(id, n);
  }
  void on_end(int32_t) override {}
  void on_close(int32_t id, uint32_t) override { open.erase(id); }
  void on_drained(int32_t id) override {
    if (!open.count(id)) std::abort();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Handler h;
  gh::http::H2Limits lim;
  lim.max_header_list_bytes = 4096;
  lim.control_frame_burst = 50;
  lim.reset_burst = 20;
  gh::http::H2Server server(h, lim);
  h.server = &server;
  static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  std::string out;
  bool ok = server.receive(reinterpret_cast<const uint8_t*>(kPreface), sizeof kPreface - 1);
  // In pieces of varying size, with the output taken between them (as the gateway does).
  size_t off = 0;
  size_t step = 1;
  while (ok && off < size) {
    size_t n = std::min(size - off, step);
    ok = server.receive(data + off, n);
    off += n;
    step = step * 3 % 1021 + 1;
    server.take_output(out);
    if (out.size() > (1u << 24)) std::abort();  // output bounded by what came in
    out.clear();
  }
  if (!ok && server.failure().empty()) std::abort();  // an ended connection says why
  server.take_output(out);
  return 0;
}
