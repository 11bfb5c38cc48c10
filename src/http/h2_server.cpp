#include "http/h2_server.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "http/h2_out.h"

namespace gh::http {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Fields that describe an HTTP/1.1 connection and have no meaning in HTTP/2 (RFC 9113 8.2.2).
bool connection_specific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" || name == "te" ||
         name == "http2-settings";
}

void lower_in_place(std::string& s) {
  for (auto& ch : s)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
}

}  // namespace

struct H2Server::Access {
  static H2Server& self(void* p) { return *static_cast<H2Server*>(p); }

  // HEADERS on a stream id below the last request's that is not open (closed, or skipped and
  // so implicitly closed): RFC 9113 5.1.1 makes it a connection error; nghttp2 would ignore it.
  static int begin_frame(nghttp2_session* session, const nghttp2_frame_hd* hd, void* p) {
    auto& s = self(p);
    if (hd->type != NGHTTP2_HEADERS || !s.failure_.empty()) return 0;
    if ((hd->stream_id & 1) && hd->stream_id <= s.last_request_id_ &&
        s.out_.find(hd->stream_id) == s.out_.end() &&
        s.pending_.find(hd->stream_id) == s.pending_.end()) {
      ++s.counters_.protocol_errors;
      s.failure_ = "HEADERS on stream " + std::to_string(hd->stream_id) +
                   ", not open and below the last stream opened";
      nghttp2_session_terminate_session(session, NGHTTP2_PROTOCOL_ERROR);
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if ((hd->stream_id & 1) && hd->stream_id > s.last_request_id_)
      s.last_request_id_ = hd->stream_id;
    return 0;
  }

  static int begin_headers(nghttp2_session*, const nghttp2_frame* f, void* p) {
    auto& s = self(p);
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto& r = s.pending_[f->hd.stream_id];
    r.id = f->hd.stream_id;
    return 0;
  }

  static int header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                    const uint8_t* value, size_t valuelen, uint8_t, void* p) {
    auto& s = self(p);
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto it = s.pending_.find(f->hd.stream_id);
    if (it == s.pending_.end()) return 0;
    H2Request& r = it->second;
    if (r.too_large) return 0;  // counted once; the rest is decoded and dropped
    auto& bytes = r.field_bytes;
    bytes += static_cast<uint32_t>(std::min<size_t>(namelen + valuelen + 32, UINT32_MAX / 4));
    if (bytes > s.limits_.max_header_list_bytes || r.headers.size() >= s.limits_.max_headers) {
      r.too_large = true;
      r.headers.clear();
      r.headers.shrink_to_fit();
      return 0;
    }
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (!n.empty() && n[0] == ':') {
      if (n == ":method")
        r.method = v;
      else if (n == ":scheme")
        r.scheme = v;
      else if (n == ":authority")
        r.authority = v;
      else if (n == ":path")
        r.path = v;
      return 0;
    }
    r.headers.emplace_back(n, v);
    return 0;
  }

  static int frame_recv(nghttp2_session* session, const nghttp2_frame* f, void* p) {
    auto& s = self(p);
    if (!s.failure_.empty()) return 0;
    const int32_t id = f->hd.stream_id;
    const bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (f->hd.type) {
      case NGHTTP2_HEADERS: {
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST) {
          auto it = s.pending_.find(id);
          if (it == s.pending_.end()) return 0;
          H2Request r = std::move(it->second);
          s.pending_.erase(it);
          r.end_stream = end;
          ++s.counters_.streams;
          if (r.too_large) ++s.counters_.oversized_headers;
          s.out_[id];  // open: its body data goes to the owner, its response may follow
          if (!s.handler_.on_request(std::move(r))) {
            s.out_.erase(id);
            ++s.counters_.refused_streams;
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
          }
        } else if (end) {
          s.handler_.on_end(id);  // trailers end the body (their fields are not forwarded)
        }
        return 0;
      }
      case NGHTTP2_DATA:
        // Padding is flow-controlled too, and never reaches the owner: released at once.
        if (f->data.padlen > 0)
          nghttp2_session_consume(session, id, static_cast<size_t>(f->data.padlen));
        if (end) {
          s.handler_.on_end(id);
        } else if (f->hd.length == 0 && !s.spend_control_frame("empty DATA frames")) {
          return 0;
        }
        return 0;
      case NGHTTP2_RST_STREAM:
        s.spend_reset();
        return 0;
      case NGHTTP2_PING:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK)) s.spend_control_frame("PING frames");
        return 0;
      case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK)) s.spend_control_frame("SETTINGS frames");
        return 0;
      case NGHTTP2_PRIORITY:
        s.spend_control_frame("PRIORITY frames");
        return 0;
      case NGHTTP2_WINDOW_UPDATE:
        s.spend_control_frame("WINDOW_UPDATE frames");
        return 0;
      default:
        return 0;
    }
  }

  static int data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                        size_t len, void* p) {
    auto& s = self(p);
    if (s.out_.find(id) == s.out_.end()) {
      // Nobody reads it (refused or finished stream): give the window back.
      nghttp2_session_consume(session, id, len);
      return 0;
    }
    s.handler_.on_data(id, data, len);
    return 0;
  }

  static int stream_close(nghttp2_session*, int32_t id, uint32_t code, void* p) {
    auto& s = self(p);
    s.pending_.erase(id);
    bool known = s.out_.erase(id) > 0;
    if (known) s.handler_.on_close(id, code);
    return 0;
  }

  static int frame_send(nghttp2_session*, const nghttp2_frame* f, void* p) {
    auto& s = self(p);
    if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR &&
        s.failure_.empty()) {
      if (f->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM) {
        ++s.counters_.floods;
        s.failure_ = "flood (ENHANCE_YOUR_CALM)";
      } else {
        ++s.counters_.protocol_errors;
        s.failure_ =
            std::string("protocol error (") + nghttp2_http2_strerror(f->goaway.error_code) + ")";
      }
    }
    return 0;
  }

  static ssize_t read_body(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                           uint32_t* flags, nghttp2_data_source*, void* p) {
    auto& s = self(p);
    auto it = s.out_.find(id);
    if (it == s.out_.end()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    Out& o = it->second;
    ssize_t n = h2out::read(o, buf, length, flags);
    if (n == NGHTTP2_ERR_DEFERRED) return n;
    if ((*flags & NGHTTP2_DATA_FLAG_EOF) && !o.trailers.empty()) {
      std::vector<nghttp2_nv> nv;
      nv.reserve(o.trailers.size());
      for (auto& [k, v] : o.trailers)
        nv.push_back({reinterpret_cast<uint8_t*>(k.data()), reinterpret_cast<uint8_t*>(v.data()),
                      k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
      // The trailers' HEADERS frame ends the stream instead (nghttp2 copies the fields).
      if (nghttp2_submit_trailer(session, id, nv.data(), nv.size()) == 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      o.trailers.clear();
    }
    if (n > 0) s.handler_.on_drained(id);
    return static_cast<ssize_t>(n);
  }
};

H2Server::H2Server(H2Handler& handler, const H2Limits& limits)
    : handler_(handler),
      limits_(limits),
      control_{static_cast<double>(limits.control_frame_burst),
               static_cast<double>(limits.control_frame_rate),
               static_cast<double>(limits.control_frame_burst)},
      resets_{static_cast<double>(limits.reset_burst), static_cast<double>(limits.reset_rate),
              static_cast<double>(limits.reset_burst)} {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_frame_callback(cb, &Access::begin_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &Access::begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, &Access::header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Access::frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Access::data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Access::stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, &Access::frame_send);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_outbound_ack(opt, limits.max_outbound_ack);
  // nghttp2's own bucket stays as a backstop above ours (which answers ENHANCE_YOUR_CALM).
  nghttp2_option_set_stream_reset_rate_limit(opt, limits.reset_burst * 2, limits.reset_rate * 2);
  nghttp2_option_set_max_continuations(opt, limits.max_continuations);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_session_server_new2(&session_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);

  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits.initial_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits.max_header_list_bytes},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
  if (limits.connection_window > 65535)
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<int32_t>(limits.connection_window));
}

H2Server::~H2Server() { nghttp2_session_del(session_); }

bool H2Server::Bucket::take(int64_t now) {
  if (refilled_ms == 0) refilled_ms = now;
  tokens = std::min(burst, tokens + static_cast<double>(now - refilled_ms) * rate / 1000.0);
  refilled_ms = now;
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

bool H2Server::flood(std::string why) {
  if (failure_.empty()) {
    ++counters_.floods;
    failure_ = std::move(why);
    nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
  }
  return false;
}

bool H2Server::spend_control_frame(const char* kind) {
  return control_.take(now_ms()) || flood(std::string("flood of ") + kind);
}

bool H2Server::spend_reset() {
  return resets_.take(now_ms()) || flood("flood of RST_STREAM frames (rapid reset)");
}

bool H2Server::receive(const uint8_t* data, size_t n) {
  if (!failure_.empty()) return false;
  ssize_t r = nghttp2_session_mem_recv(session_, data, n);
  if (r < 0) {
    if (failure_.empty()) {
      if (r == NGHTTP2_ERR_FLOODED) {
        ++counters_.floods;
        failure_ = "flood of frames the client does not read the answers to";
      } else {
        ++counters_.protocol_errors;
        failure_ = std::string("protocol error: ") + nghttp2_strerror(static_cast<int>(r));
      }
    }
    if (r != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
      nghttp2_session_terminate_session(
          session_, r == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
    return false;
  }
  return failure_.empty();
}

void H2Server::take_output(std::string& out) { h2out::take_output(session_, out); }

bool H2Server::want_read() const { return nghttp2_session_want_read(session_) != 0; }
bool H2Server::want_write() const { return nghttp2_session_want_write(session_) != 0; }

bool H2Server::respond(int32_t id, int status,
                       std::vector<std::pair<std::string, std::string>> headers, bool has_body) {
  auto it = out_.find(id);
  if (it == out_.end()) return false;  // closed meanwhile
  std::vector<nghttp2_nv> nv;
  nv.reserve(headers.size() + 1);
  std::string code = std::to_string(status);  // three digits: no allocation
  static const char kStatus[] = ":status";
  nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(kStatus)),
                reinterpret_cast<uint8_t*>(code.data()), sizeof kStatus - 1, code.size(),
                NGHTTP2_NV_FLAG_NONE});
  for (auto& [k, v] : headers) {
    lower_in_place(k);  // HTTP/2 field names are lower case (RFC 9113 8.2.1)
    if (connection_specific(k)) continue;
    nv.push_back({reinterpret_cast<uint8_t*>(k.data()), reinterpret_cast<uint8_t*>(v.data()),
                  k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider prov{};
  prov.read_callback = &Access::read_body;
  if (!has_body) it->second.ended = true;
  // nghttp2 copies the fields.
  return nghttp2_submit_response(session_, id, nv.data(), nv.size(), has_body ? &prov : nullptr) ==
         0;
}

void H2Server::send_data(int32_t id, std::string_view data) {
  auto it = out_.find(id);
  if (it != out_.end()) h2out::append(session_, id, it->second, data);
}

void H2Server::end_data(int32_t id, std::vector<std::pair<std::string, std::string>> trailers) {
  auto it = out_.find(id);
  if (it == out_.end()) return;
  for (auto& [k, v] : trailers) {
    lower_in_place(k);
    if (!connection_specific(k)) it->second.trailers.emplace_back(std::move(k), std::move(v));
  }
  h2out::end(session_, id, it->second);
}

size_t H2Server::buffered(int32_t id) const {
  auto it = out_.find(id);
  return it == out_.end() ? 0 : it->second.pending();
}

void H2Server::consume(int32_t id, size_t n) { h2out::consume(session_, id, n); }

void H2Server::reset(int32_t id, uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
}

void H2Server::shutdown() {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
}

}  // namespace gh::http
