// What the HTTP/2 server and client sessions share: a stream's outgoing body buffer fed to
// nghttp2 through a deferred data source, and the session plumbing around it.
#pragma once

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

namespace gh::http::h2out {

struct Buffer {
  std::string buf;  // body bytes not yet taken for sending
  size_t off = 0;
  bool ended = false;     // no more bytes will be added
  bool deferred = false;  // nghttp2 waits for bytes (resume on more)

  size_t pending() const { return buf.size() - off; }
};

// nghttp2's data source read: copies what is buffered, EOF once ended and drained; returns the
// bytes copied, or NGHTTP2_ERR_DEFERRED when there are none yet.
inline ssize_t read(Buffer& o, uint8_t* out, size_t length, uint32_t* flags) {
  size_t n = std::min(length, o.pending());
  if (n > 0) {
    std::memcpy(out, o.buf.data() + o.off, n);
    o.off += n;
    if (o.off == o.buf.size()) {
      o.buf.clear();
      o.off = 0;
    }
  }
  if (o.buf.empty() && o.ended) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  } else if (n == 0) {
    o.deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(n);
}

inline void resume(nghttp2_session* s, int32_t id, Buffer& o) {
  if (o.deferred) {
    o.deferred = false;
    nghttp2_session_resume_data(s, id);
  }
}

inline void append(nghttp2_session* s, int32_t id, Buffer& o, std::string_view data) {
  if (data.empty()) return;
  o.buf.append(data);
  resume(s, id, o);
}

inline void end(nghttp2_session* s, int32_t id, Buffer& o) {
  o.ended = true;
  resume(s, id, o);
}

inline void take_output(nghttp2_session* s, std::string& out) {
  while (true) {
    const uint8_t* d = nullptr;
    ssize_t n = nghttp2_session_mem_send(s, &d);
    if (n <= 0) break;
    out.append(reinterpret_cast<const char*>(d), static_cast<size_t>(n));
  }
}

// The peer may send `n` more bytes on stream `id` (and the connection); a closed stream's
// bytes still count for the connection.
inline void consume(nghttp2_session* s, int32_t id, size_t n) {
  if (n == 0) return;
  if (nghttp2_session_consume(s, id, n) != 0) nghttp2_session_consume_connection(s, n);
}

}  // namespace gh::http::h2out
