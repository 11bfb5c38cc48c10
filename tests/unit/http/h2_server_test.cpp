// The HTTP/2 session against nghttp2's own client session: requests, bodies with flow control
// given back only when consumed, responses, refusals and the defences' limits.
#include "http/h2_server.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace gh::http {
namespace {

struct Recorder : H2Handler {
  H2Server* server = nullptr;
  std::vector<H2Request> requests;
  std::map<int32_t, std::string> bodies;
  std::vector<int32_t> ended, closed;
  bool accept = true;
  bool consume = true;

  bool on_request(H2Request&& r) override {
    requests.push_back(std::move(r));
    return accept;
  }
  void on_data(int32_t id, const uint8_t* d, size_t n) override {
    bodies[id].append(reinterpret_cast<const char*>(d), n);
    if (consume) server->consume(id, n);
  }
  void on_end(int32_t id) override { ended.push_back(id); }
  void on_close(int32_t id, uint32_t) override { closed.push_back(id); }
  void on_drained(int32_t) override {}
};

// A client on nghttp2: what it sends goes to the server, what the server sends comes back.
struct Client {
  nghttp2_session* session = nullptr;
  std::map<int32_t, int> status;
  std::map<int32_t, std::string> body;
  std::map<int32_t, uint32_t> reset;
  uint32_t goaway = UINT32_MAX;
  size_t window_updates = 0;

  Client() {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
               const uint8_t* v, size_t vl, uint8_t, void* p) {
          auto* c = static_cast<Client*>(p);
          if (std::string_view(reinterpret_cast<const char*>(n), nl) == ":status")
            c->status[f->hd.stream_id] =
                std::stoi(std::string(reinterpret_cast<const char*>(v), vl));
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t n, void* p) {
          static_cast<Client*>(p)->body[id].append(reinterpret_cast<const char*>(d), n);
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, void* p) {
          auto* c = static_cast<Client*>(p);
          if (f->hd.type == NGHTTP2_RST_STREAM)
            c->reset[f->hd.stream_id] = f->rst_stream.error_code;
          if (f->hd.type == NGHTTP2_GOAWAY) c->goaway = f->goaway.error_code;
          if (f->hd.type == NGHTTP2_WINDOW_UPDATE) ++c->window_updates;
          return 0;
        });
    nghttp2_session_client_new(&session, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Client() { nghttp2_session_del(session); }

  int32_t get(const std::string& path, std::vector<std::pair<std::string, std::string>> extra = {},
              const std::string* body = nullptr) {
    std::vector<std::pair<std::string, std::string>> h = {{":method", body ? "POST" : "GET"},
                                                          {":scheme", "https"},
                                                          {":authority", "a.test"},
                                                          {":path", path}};
    for (auto& e : extra) h.push_back(e);
    std::vector<nghttp2_nv> nv;
    for (auto& [k, v] : h)
      nv.push_back({reinterpret_cast<uint8_t*>(k.data()), reinterpret_cast<uint8_t*>(v.data()),
                    k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    nghttp2_data_provider prov{};
    if (body) {
      pending = *body;
      prov.read_callback = [](nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags,
                              nghttp2_data_source*, void* user) -> ssize_t {
        auto* c = static_cast<Client*>(user);
        size_t n = std::min(len, c->pending.size());
        std::memcpy(buf, c->pending.data(), n);
        c->pending.erase(0, n);
        if (c->pending.empty()) *flags |= NGHTTP2_DATA_FLAG_EOF;
        return static_cast<ssize_t>(n);
      };
    }
    return nghttp2_submit_request(session, nullptr, nv.data(), nv.size(), body ? &prov : nullptr,
                                  nullptr);
  }
  std::string pending;
};

// Moves bytes both ways until neither side has anything to send.
bool exchange(Client& c, H2Server& s) {
  bool ok = true;
  for (int i = 0; i < 100; ++i) {
    const uint8_t* d = nullptr;
    std::string to_server;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(c.session, &d)) > 0)
      to_server.append(reinterpret_cast<const char*>(d), static_cast<size_t>(n));
    if (!to_server.empty())
      ok = s.receive(reinterpret_cast<const uint8_t*>(to_server.data()), to_server.size()) && ok;
    std::string to_client;
    s.take_output(to_client);
    if (!to_client.empty())
      nghttp2_session_mem_recv(c.session, reinterpret_cast<const uint8_t*>(to_client.data()),
                               to_client.size());
    if (to_server.empty() && to_client.empty()) break;
  }
  return ok;
}

const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

TEST(H2Server, RequestAndResponse) {
  Recorder r;
  H2Server s(r, H2Limits{});
  r.server = &s;
  Client c;
  int32_t id = c.get("/a?b=c", {{"cookie", "x=1"}, {"cookie", "y=2"}, {"x-h", "v"}});
  ASSERT_TRUE(exchange(c, s));
  ASSERT_EQ(r.requests.size(), 1u);
  const auto& q = r.requests[0];
  EXPECT_EQ(q.id, id);
  EXPECT_EQ(q.method, "GET");
  EXPECT_EQ(q.path, "/a?b=c");
  EXPECT_EQ(q.authority, "a.test");
  EXPECT_TRUE(q.end_stream);
  EXPECT_FALSE(q.too_large);
  ASSERT_EQ(q.headers.size(), 3u);
  EXPECT_EQ(q.headers[2].first, "x-h");
  // Upper-case and connection-specific fields are fixed on the way out.
  ASSERT_TRUE(s.respond(
      id, 201, {{"X-Up", "1"}, {"Connection", "close"}, {"Transfer-Encoding", "chunked"}}, true));
  s.send_data(id, "hello ");
  s.send_data(id, "world");
  s.end_data(id);
  ASSERT_TRUE(exchange(c, s));
  EXPECT_EQ(c.status[id], 201);
  EXPECT_EQ(c.body[id], "hello world");
  EXPECT_TRUE(c.reset.empty());
  EXPECT_EQ(c.goaway, UINT32_MAX);
  EXPECT_EQ(s.counters().streams, 1u);
}

TEST(H2Server, BodyWindowIsGivenBackOnlyWhenConsumed) {
  Recorder r;
  r.consume = false;
  H2Limits lim;
  lim.initial_window = 16384;
  H2Server s(r, lim);
  r.server = &s;
  Client c;
  exchange(c, s);  // SETTINGS first: the stream window is the server's from then on
  std::string body(100000, 'b');
  int32_t id = c.get("/up", {}, &body);
  exchange(c, s);
  // The client may send one window, no more, while nothing is consumed.
  EXPECT_EQ(r.bodies[id].size(), 16384u);
  s.consume(id, r.bodies[id].size());
  r.consume = true;
  exchange(c, s);
  EXPECT_EQ(r.bodies[id].size(), body.size());
  ASSERT_EQ(r.ended.size(), 1u);
}

TEST(H2Server, RefusedStreamsAndOversizedHeaders) {
  Recorder r;
  r.accept = false;
  H2Limits lim;
  lim.max_header_list_bytes = 1000;
  lim.max_headers = 5;
  H2Server s(r, lim);
  r.server = &s;
  Client c;
  int32_t a = c.get("/refused");
  exchange(c, s);
  EXPECT_EQ(c.reset[a], static_cast<uint32_t>(NGHTTP2_REFUSED_STREAM));
  EXPECT_EQ(s.counters().refused_streams, 1u);
  r.accept = true;
  int32_t b = c.get("/big", {{"x-big", std::string(2000, 'v')}});
  int32_t d =
      c.get("/many", {{"a", "1"}, {"b", "1"}, {"c", "1"}, {"d", "1"}, {"e", "1"}, {"f", "1"}});
  exchange(c, s);
  ASSERT_EQ(r.requests.size(), 3u);
  EXPECT_TRUE(r.requests[1].too_large);
  EXPECT_TRUE(r.requests[1].headers.empty());
  EXPECT_EQ(r.requests[1].id, b);
  EXPECT_TRUE(r.requests[2].too_large);
  EXPECT_EQ(r.requests[2].id, d);
  EXPECT_EQ(s.counters().oversized_headers, 2u);
}

TEST(H2Server, ControlFrameFloodEndsTheConnection) {
  Recorder r;
  H2Limits lim;
  lim.control_frame_burst = 10;
  lim.control_frame_rate = 1;
  H2Server s(r, lim);
  r.server = &s;
  Client c;
  exchange(c, s);
  bool ok = true;
  for (int i = 0; i < 50 && ok; ++i) {
    nghttp2_submit_ping(c.session, NGHTTP2_FLAG_NONE, nullptr);
    ok = exchange(c, s);
  }
  EXPECT_FALSE(ok);
  EXPECT_EQ(c.goaway, static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_EQ(s.counters().floods, 1u);
  EXPECT_NE(s.failure().find("PING"), std::string::npos);
}

TEST(H2Server, RapidResetEndsTheConnection) {
  Recorder r;
  H2Limits lim;
  lim.reset_burst = 5;
  lim.reset_rate = 1;
  H2Server s(r, lim);
  r.server = &s;
  Client c;
  bool ok = true;
  for (int i = 0; i < 20 && ok; ++i) {
    int32_t id = c.get("/x");
    ok = exchange(c, s);  // the HEADERS go out, then the reset
    nghttp2_submit_rst_stream(c.session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    ok = exchange(c, s);
  }
  EXPECT_FALSE(ok);
  EXPECT_EQ(c.goaway, static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_NE(s.failure().find("rapid reset"), std::string::npos);
}

TEST(H2Server, GarbageIsAProtocolError) {
  Recorder r;
  H2Server s(r, H2Limits{});
  r.server = &s;
  std::string bad = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_FALSE(s.receive(reinterpret_cast<const uint8_t*>(bad.data()), bad.size()));
  EXPECT_FALSE(s.failure().empty());
  Recorder r2;
  H2Server s2(r2, H2Limits{});
  r2.server = &s2;
  ASSERT_TRUE(s2.receive(reinterpret_cast<const uint8_t*>(kPreface), sizeof kPreface - 1));
  // A HEADERS frame on stream 2 (server-initiated ids are even): connection error.
  const uint8_t frame[] = {0, 0, 1, 0x1, 0x5, 0, 0, 0, 2, 0x82};
  const uint8_t settings[] = {0, 0, 0, 0x4, 0, 0, 0, 0, 0};
  s2.receive(settings, sizeof settings);
  s2.receive(frame, sizeof frame);
  std::string out;
  s2.take_output(out);  // the GOAWAY: counted when it is sent
  EXPECT_EQ(s2.counters().protocol_errors, 1u);
  EXPECT_FALSE(s2.want_read());
}

}  // namespace
}  // namespace gh::http
