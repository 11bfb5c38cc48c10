// The client side of one HTTP/2 connection to an upstream (RFC 9113) on nghttp2, without any
// I/O: bytes from the upstream go in through receive(), bytes for it come out of take_output().
// Requests are submitted as lists of fields; response heads, body data, trailers and stream
// ends are reported to an H2ClientHandler.
//
// Memory is bounded by flow control: a stream's response data is acknowledged (WINDOW_UPDATE)
// only when the owner has consumed it, so an upstream cannot make the gateway hold more than
// one stream window per open stream; the connection's window is given back as data arrives, so
// that one slow exchange stalls its own stream and never the others on the connection.
// Response header lists above the limits reset the stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http/h2_out.h"

struct nghttp2_session;

namespace gh::http {

using Fields = std::vector<std::pair<std::string, std::string>>;

struct H2ClientLimits {
  uint32_t initial_window = 256 * 1024;    // per-stream receive window (response bodies)
  uint32_t connection_window = 16 << 20;   // connection receive window
  uint32_t max_header_list_bytes = 32768;  // decoded: name + value + 32 per field
  uint32_t max_headers = 100;
  uint32_t max_continuations = 8;
};

class H2ClientHandler {
 public:
  virtual ~H2ClientHandler() = default;
  // The final response head (interim 1xx heads are not reported); names are lower case.
  virtual void on_response(int32_t id, int status, Fields&& fields) = 0;
  virtual void on_data(int32_t id, const uint8_t* data, size_t n) = 0;
  virtual void on_trailers(int32_t id, Fields&& fields) = 0;
  // The stream is closed: `error_code` 0 after a complete response, else reset (by either side,
  // or refused by the upstream: REFUSED_STREAM, or a GOAWAY that did not cover it).
  virtual void on_close(int32_t id, uint32_t error_code) = 0;
  // Request body bytes of stream `id` were taken from its buffer for sending.
  virtual void on_drained(int32_t id) = 0;
};

class H2Client {
 public:
  H2Client(H2ClientHandler& handler, const H2ClientLimits& limits);
  ~H2Client();
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;

  // Feeds bytes read from the upstream. False when the connection must end (failure() says why).
  bool receive(const uint8_t* data, size_t n);
  void take_output(std::string& out);
  bool want_read() const;
  bool want_write() const;

  // A request: pseudo-header fields first (":method", ":scheme", ":authority", ":path"), names
  // lower case. Returns the stream id, or a negative number when it cannot be sent.
  int32_t submit(const Fields& fields, bool has_body);
  // Body data of a request submitted with has_body, then its end.
  void send_data(int32_t id, std::string_view data);
  void end_data(int32_t id);
  size_t buffered(int32_t id) const;
  // Tells the upstream that `n` bytes of response data on stream `id` were used (the stream's
  // window; the connection's was given back on arrival).
  void consume(int32_t id, size_t n);
  void reset(int32_t id, uint32_t error_code);
  void shutdown();  // GOAWAY: no new streams

  // Whether a new request may go on this connection now (no GOAWAY, no failure, under the
  // upstream's SETTINGS_MAX_CONCURRENT_STREAMS).
  bool accepting() const;
  size_t open_streams() const { return out_.size(); }
  const std::string& failure() const { return failure_; }

  struct Access;

 private:
  struct Stream : h2out::Buffer {
    bool final_head = false;  // the final response head arrived
    bool too_large = false;
    uint32_t field_bytes = 0;
    int status = 0;
    Fields fields;
  };

  H2ClientHandler& handler_;
  H2ClientLimits limits_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, Stream> out_;
  bool goaway_ = false;
  std::string failure_;
};

}  // namespace gh::http
