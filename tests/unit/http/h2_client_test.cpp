// The upstream side of HTTP/2 (H2Client) against the gateway's own server session (H2Server),
// bytes pumped between them in memory: requests with bodies, responses with trailers, flow
// control given back only when the owner consumed the data, oversized response heads reset,
// GOAWAY stopping new requests.
#include "http/h2_client.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "http/h2_server.h"

namespace gh::http {
namespace {

struct Upstream : H2Handler {
  H2Server* server = nullptr;
  std::vector<H2Request> requests;
  std::map<int32_t, std::string> bodies;
  std::vector<int32_t> ended;
  bool on_request(H2Request&& r) override {
    requests.push_back(std::move(r));
    return true;
  }
  void on_data(int32_t id, const uint8_t* d, size_t n) override {
    bodies[id].append(reinterpret_cast<const char*>(d), n);
    server->consume(id, n);
  }
  void on_end(int32_t id) override { ended.push_back(id); }
  void on_close(int32_t, uint32_t) override {}
  void on_drained(int32_t) override {}
};

struct Gateway : H2ClientHandler {
  H2Client* client = nullptr;
  bool consume = true;
  std::map<int32_t, int> status;
  std::map<int32_t, Fields> heads, trailers;
  std::map<int32_t, std::string> body;
  std::map<int32_t, uint32_t> closed;
  void on_response(int32_t id, int s, Fields&& f) override {
    status[id] = s;
    heads[id] = std::move(f);
  }
  void on_data(int32_t id, const uint8_t* d, size_t n) override {
    body[id].append(reinterpret_cast<const char*>(d), n);
    if (consume) client->consume(id, n);
  }
  void on_trailers(int32_t id, Fields&& f) override { trailers[id] = std::move(f); }
  void on_close(int32_t id, uint32_t code) override { closed[id] = code; }
  void on_drained(int32_t) override {}
};

struct Pair {
  Upstream up;
  Gateway gw;
  H2Server server;
  H2Client client;
  explicit Pair(H2Limits sl = {}, H2ClientLimits cl = {}) : server(up, sl), client(gw, cl) {
    up.server = &server;
    gw.client = &client;
  }
  void pump() {
    for (int i = 0; i < 100; ++i) {
      std::string a, b;
      client.take_output(a);
      if (!a.empty()) server.receive(reinterpret_cast<const uint8_t*>(a.data()), a.size());
      server.take_output(b);
      if (!b.empty()) client.receive(reinterpret_cast<const uint8_t*>(b.data()), b.size());
      if (a.empty() && b.empty()) return;
    }
  }
};

Fields get(const std::string& path) {
  return {{":method", "GET"}, {":scheme", "https"}, {":authority", "up"}, {":path", path}};
}

TEST(H2Client, RequestWithBodyAndResponseWithTrailers) {
  Pair p;
  Fields f = {{":method", "POST"},
              {":scheme", "https"},
              {":authority", "up:8443"},
              {":path", "/a?b=1"},
              {"x-one", "1"}};
  int32_t id = p.client.submit(f, true);
  ASSERT_GT(id, 0);
  std::string body(200000, 'q');  // more than the upstream's initial window
  p.client.send_data(id, body);
  p.client.end_data(id);
  p.pump();
  ASSERT_EQ(p.up.requests.size(), 1u);
  const auto& r = p.up.requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.authority, "up:8443");
  EXPECT_EQ(r.path, "/a?b=1");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "x-one");
  EXPECT_EQ(p.up.bodies[id], body);
  ASSERT_EQ(p.up.ended, std::vector<int32_t>{id});

  ASSERT_TRUE(p.server.respond(id, 200, {{"Content-Type", "text/plain"}}, true));
  p.server.send_data(id, "hello ");
  p.server.send_data(id, "world");
  p.server.end_data(id, {{"X-Checksum", "abc"}, {"Connection", "close"}});
  p.pump();
  EXPECT_EQ(p.gw.status[id], 200);
  ASSERT_EQ(p.gw.heads[id].size(), 1u);
  EXPECT_EQ(p.gw.heads[id][0], (std::pair<std::string, std::string>{"content-type", "text/plain"}));
  EXPECT_EQ(p.gw.body[id], "hello world");
  // Trailers arrive (names lowercased, connection fields dropped), and the stream ends clean.
  ASSERT_EQ(p.gw.trailers[id].size(), 1u);
  EXPECT_EQ(p.gw.trailers[id][0], (std::pair<std::string, std::string>{"x-checksum", "abc"}));
  ASSERT_TRUE(p.gw.closed.count(id));
  EXPECT_EQ(p.gw.closed[id], 0u);
  EXPECT_EQ(p.client.open_streams(), 0u);
}

TEST(H2Client, ResponseDataBeyondTheWindowWaitsUntilConsumed) {
  H2ClientLimits cl;
  cl.initial_window = 65535;
  cl.connection_window = 1 << 20;
  Pair p({}, cl);
  p.gw.consume = false;
  int32_t id = p.client.submit(get("/big"), false);
  p.pump();
  ASSERT_TRUE(p.server.respond(id, 200, {}, true));
  p.server.send_data(id, std::string(300000, 'z'));
  p.server.end_data(id);
  p.pump();
  // Nothing beyond the stream's window while the owner holds what it got.
  EXPECT_EQ(p.gw.body[id].size(), 65535u);
  EXPECT_FALSE(p.gw.closed.count(id));
  p.client.consume(id, p.gw.body[id].size());
  p.gw.consume = true;
  p.pump();
  EXPECT_EQ(p.gw.body[id].size(), 300000u);
  EXPECT_EQ(p.gw.closed[id], 0u);
}

TEST(H2Client, AStreamWhoseDataIsNotConsumedDoesNotStallTheOthers) {
  // The connection's window is given back on arrival, each stream's only when consumed.
  H2ClientLimits cl;
  cl.initial_window = 65535;
  cl.connection_window = 65535;
  Pair p({}, cl);
  p.gw.consume = false;
  int32_t slow = p.client.submit(get("/slow"), false);
  int32_t fast = p.client.submit(get("/fast"), false);
  p.pump();
  ASSERT_TRUE(p.server.respond(slow, 200, {}, true));
  ASSERT_TRUE(p.server.respond(fast, 200, {}, true));
  p.server.send_data(slow, std::string(65535, 's'));
  p.pump();
  // The slow stream's owner holds its data (its window is used up) ...
  p.server.send_data(fast, std::string(200000, 'f'));
  p.server.end_data(fast);
  size_t used = 0;
  for (int i = 0; i < 50 && p.gw.body[fast].size() < 200000; ++i) {
    p.pump();
    // ... while the fast one's owner reads on.
    p.client.consume(fast, p.gw.body[fast].size() - used);
    used = p.gw.body[fast].size();
  }
  EXPECT_EQ(p.gw.body[slow].size(), 65535u);
  EXPECT_EQ(p.gw.body[fast].size(), 200000u);
  EXPECT_EQ(p.gw.closed[fast], 0u);
}

TEST(H2Client, OversizedResponseHeadResetsTheStream) {
  H2ClientLimits cl;
  cl.max_header_list_bytes = 4096;
  Pair p({}, cl);
  int32_t id = p.client.submit(get("/"), false);
  int32_t id2 = p.client.submit(get("/ok"), false);
  p.pump();
  ASSERT_TRUE(p.server.respond(id, 200, {{"x-big", std::string(8000, 'a')}}, false));
  ASSERT_TRUE(p.server.respond(id2, 204, {}, false));
  p.pump();
  EXPECT_FALSE(p.gw.status.count(id));
  ASSERT_TRUE(p.gw.closed.count(id));
  EXPECT_NE(p.gw.closed[id], 0u);
  // The other stream on the connection is unaffected.
  EXPECT_EQ(p.gw.status[id2], 204);
  EXPECT_EQ(p.gw.closed[id2], 0u);
}

TEST(H2Client, GoawayStopsNewRequestsAndPeerLimitCounts) {
  H2Limits sl;
  sl.max_concurrent_streams = 2;
  Pair p(sl, {});
  p.pump();  // SETTINGS exchanged
  EXPECT_TRUE(p.client.accepting());
  p.client.submit(get("/1"), false);
  p.client.submit(get("/2"), false);
  EXPECT_FALSE(p.client.accepting());  // the upstream's SETTINGS_MAX_CONCURRENT_STREAMS
  p.pump();
  p.server.shutdown();
  p.pump();
  EXPECT_FALSE(p.client.accepting());
}

TEST(H2Client, ResetByTheUpstreamIsReported) {
  Pair p;
  int32_t id = p.client.submit(get("/"), false);
  p.pump();
  p.server.reset(id, 0x2);
  p.pump();
  ASSERT_TRUE(p.gw.closed.count(id));
  EXPECT_EQ(p.gw.closed[id], 0x2u);
}

}  // namespace
}  // namespace gh::http
