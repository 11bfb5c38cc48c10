// The server side of one HTTP/2 connection (RFC 9113) on nghttp2, without any I/O: bytes from
// the client go in through receive(), bytes for the client come out of take_output(). Requests,
// body data and stream ends are reported to an H2Handler; responses are submitted by stream id.
//
// Defences (each limit configurable, each refusal counted in H2Counters):
// - at most `max_concurrent_streams` streams (SETTINGS), and the owner may refuse a new stream
//   while it still works on as many (rapid reset: reset streams whose work goes on still count);
// - RST_STREAM rate limit (nghttp2's token bucket), CONTINUATION frames per header block,
//   queued SETTINGS/PING acknowledgements (a peer that does not read them);
// - a per-connection budget of control frames (PING, SETTINGS, PRIORITY, WINDOW_UPDATE, empty
//   DATA frames): a flood ends the connection with ENHANCE_YOUR_CALM;
// - decoded header lists above `max_header_list_bytes` or `max_headers` are answered 431;
// - request bodies are acknowledged (WINDOW_UPDATE) only when the owner has consumed them, so
//   a client cannot make the gateway hold more than the receive windows; response data is
//   buffered per stream up to what the owner puts in before waiting.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http/h2_out.h"

struct nghttp2_session;

namespace gh::http {

struct H2Limits {
  uint32_t max_concurrent_streams = 100;
  uint32_t initial_window = 65535;         // per-stream receive window (request bodies)
  uint32_t connection_window = 1u << 20;   // connection receive window
  uint32_t max_header_list_bytes = 32768;  // decoded: name + value + 32 per field
  uint32_t max_headers = 100;
  uint32_t max_continuations = 8;       // CONTINUATION frames per header block
  uint64_t reset_burst = 1000;          // RST_STREAM frames received: bucket size
  uint64_t reset_rate = 33;             // and refill per second
  uint32_t max_outbound_ack = 1000;     // SETTINGS/PING acknowledgements waiting to be sent
  uint32_t control_frame_burst = 1000;  // control frames received: bucket size
  uint32_t control_frame_rate = 100;    // and refill per second
};

struct H2Counters {
  uint64_t streams = 0;            // requests received
  uint64_t refused_streams = 0;    // refused by the owner (too much work in progress)
  uint64_t oversized_headers = 0;  // header lists answered 431
  uint64_t floods = 0;             // connections ended for a flood (GOAWAY ENHANCE_YOUR_CALM)
  uint64_t protocol_errors = 0;    // connections ended for another protocol error
};

struct H2Request {
  int32_t id = 0;
  std::string method, scheme, authority, path;
  std::vector<std::pair<std::string, std::string>> headers;  // regular fields, in order
  bool end_stream = false;                                   // no body follows
  bool too_large = false;    // header list over the limits: answer 431
  uint32_t field_bytes = 0;  // decoded so far (name + value + 32 per field)
};

class H2Handler {
 public:
  virtual ~H2Handler() = default;
  // A complete request head. Returning false refuses the stream (REFUSED_STREAM).
  virtual bool on_request(H2Request&& r) = 0;
  virtual void on_data(int32_t id, const uint8_t* data, size_t n) = 0;
  virtual void on_end(int32_t id) = 0;  // the client's END_STREAM
  // The stream is closed (after the response, or reset by either side: `error_code` != 0).
  virtual void on_close(int32_t id, uint32_t error_code) = 0;
  // Response bytes of stream `id` were taken from its buffer for sending.
  virtual void on_drained(int32_t id) = 0;
};

class H2Server {
 public:
  H2Server(H2Handler& handler, const H2Limits& limits);
  ~H2Server();
  H2Server(const H2Server&) = delete;
  H2Server& operator=(const H2Server&) = delete;

  // Feeds bytes read from the client. False when the connection must end (a protocol error or
  // a flood): take_output() then holds the GOAWAY, and failure() says why.
  bool receive(const uint8_t* data, size_t n);
  // Appends what is ready to be sent to `out`.
  void take_output(std::string& out);
  // Whether the session still reads or has something to write (false: close the connection).
  bool want_read() const;
  bool want_write() const;

  // The response head; `has_body` false ends the stream with it. Header names are lowercased.
  bool respond(int32_t id, int status, std::vector<std::pair<std::string, std::string>> headers,
               bool has_body);
  // Body data of a response submitted with has_body, then its end.
  void send_data(int32_t id, std::string_view data);
  // `trailers` (names lowercased here) follow the data in a HEADERS frame that ends the stream.
  void end_data(int32_t id, std::vector<std::pair<std::string, std::string>> trailers = {});
  // Response bytes of stream `id` not yet taken for sending.
  size_t buffered(int32_t id) const;
  // Tells the client that `n` bytes of its body on stream `id` were used (WINDOW_UPDATE).
  void consume(int32_t id, size_t n);
  void reset(int32_t id, uint32_t error_code);
  // Graceful end: no new streams, the ones in progress finish.
  void shutdown();

  const std::string& failure() const { return failure_; }
  const H2Counters& counters() const { return counters_; }

  // nghttp2 callbacks (C linkage trampolines live in the .cpp).
  struct Access;

 private:
  struct Out : h2out::Buffer {
    std::vector<std::pair<std::string, std::string>> trailers;
  };
  // A token bucket of frames received: `burst` at most, `rate` more per second.
  struct Bucket {
    double burst, rate, tokens;
    int64_t refilled_ms = 0;
    bool take(int64_t now_ms);
  };
  bool spend_control_frame(const char* kind);
  bool spend_reset();
  bool flood(std::string why);  // ends the connection (ENHANCE_YOUR_CALM); false

  H2Handler& handler_;
  H2Limits limits_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, H2Request> pending_;  // heads being received
  std::unordered_map<int32_t, Out> out_;
  Bucket control_, resets_;
  int32_t last_request_id_ = 0;
  std::string failure_;
  H2Counters counters_;
};

}  // namespace gh::http
