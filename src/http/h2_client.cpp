#include "http/h2_client.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

#include "http/h2_out.h"

namespace gh::http {

struct H2Client::Access {
  static H2Client& self(void* p) { return *static_cast<H2Client*>(p); }

  static int begin_headers(nghttp2_session*, const nghttp2_frame* f, void* p) {
    auto& s = self(p);
    if (f->hd.type != NGHTTP2_HEADERS) return 0;
    auto it = s.out_.find(f->hd.stream_id);
    if (it == s.out_.end()) return 0;
    // A new header block: the final head after interim ones, or the trailers.
    it->second.fields.clear();
    it->second.field_bytes = 0;
    it->second.status = 0;
    return 0;
  }

  static int header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                    const uint8_t* value, size_t valuelen, uint8_t, void* p) {
    auto& s = self(p);
    if (f->hd.type != NGHTTP2_HEADERS) return 0;
    auto it = s.out_.find(f->hd.stream_id);
    if (it == s.out_.end()) return 0;
    Stream& st = it->second;
    if (st.too_large) return 0;
    st.field_bytes +=
        static_cast<uint32_t>(std::min<size_t>(namelen + valuelen + 32, UINT32_MAX / 4));
    if (st.field_bytes > s.limits_.max_header_list_bytes ||
        st.fields.size() >= s.limits_.max_headers) {
      st.too_large = true;
      st.fields.clear();
      return 0;
    }
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (!n.empty() && n[0] == ':') {
      if (n == ":status") {
        int code = 0;
        for (char ch : v) code = code * 10 + (ch - '0');  // nghttp2 checked: three digits
        st.status = code;
      }
      return 0;
    }
    st.fields.emplace_back(n, v);
    return 0;
  }

  static int frame_recv(nghttp2_session* session, const nghttp2_frame* f, void* p) {
    auto& s = self(p);
    const int32_t id = f->hd.stream_id;
    switch (f->hd.type) {
      case NGHTTP2_HEADERS: {
        auto it = s.out_.find(id);
        if (it == s.out_.end()) return 0;
        Stream& st = it->second;
        if (st.too_large) {
          nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
          return 0;
        }
        if (!st.final_head) {
          if (st.status < 100) {
            // nghttp2 checks three digits only ("000" passes): not a status.
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_PROTOCOL_ERROR);
            return 0;
          }
          if (st.status < 200) return 0;  // interim: the final head follows
          st.final_head = true;
          s.handler_.on_response(id, st.status, std::move(st.fields));
        } else {
          s.handler_.on_trailers(id, std::move(st.fields));
        }
        st.fields.clear();
        return 0;
      }
      case NGHTTP2_DATA:
        if (f->data.padlen > 0)
          nghttp2_session_consume(session, id, static_cast<size_t>(f->data.padlen));
        return 0;
      case NGHTTP2_GOAWAY:
        s.goaway_ = true;
        return 0;
      default:
        return 0;
    }
  }

  static int data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                        size_t len, void* p) {
    auto& s = self(p);
    if (s.out_.find(id) == s.out_.end()) {
      nghttp2_session_consume(session, id, len);
      return 0;
    }
    // The connection's window comes back at once (a slow exchange must not stall the others);
    // the stream's only when its owner has used the data (consume).
    nghttp2_session_consume_connection(session, len);
    s.handler_.on_data(id, data, len);
    return 0;
  }

  static int stream_close(nghttp2_session*, int32_t id, uint32_t code, void* p) {
    auto& s = self(p);
    auto it = s.out_.find(id);
    if (it == s.out_.end()) return 0;
    if (code == 0 && !it->second.final_head) code = NGHTTP2_PROTOCOL_ERROR;
    s.out_.erase(it);
    s.handler_.on_close(id, code);
    return 0;
  }

  static ssize_t read_body(nghttp2_session*, int32_t id, uint8_t* buf, size_t length,
                           uint32_t* flags, nghttp2_data_source*, void* p) {
    auto& s = self(p);
    auto it = s.out_.find(id);
    if (it == s.out_.end()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    ssize_t n = h2out::read(it->second, buf, length, flags);
    if (n > 0) s.handler_.on_drained(id);
    return static_cast<ssize_t>(n);
  }
};

H2Client::H2Client(H2ClientHandler& handler, const H2ClientLimits& limits)
    : handler_(handler), limits_(limits) {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &Access::begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, &Access::header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Access::frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Access::data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Access::stream_close);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_continuations(opt, limits.max_continuations);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_session_client_new2(&session_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);

  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits.initial_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits.max_header_list_bytes},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
  if (limits.connection_window > 65535)
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<int32_t>(limits.connection_window));
}

H2Client::~H2Client() { nghttp2_session_del(session_); }

bool H2Client::receive(const uint8_t* data, size_t n) {
  if (!failure_.empty()) return false;
  ssize_t r = nghttp2_session_mem_recv(session_, data, n);
  if (r < 0) {
    failure_ = std::string("protocol error: ") + nghttp2_strerror(static_cast<int>(r));
    nghttp2_session_terminate_session(
        session_, r == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
    return false;
  }
  return true;
}

void H2Client::take_output(std::string& out) { h2out::take_output(session_, out); }

bool H2Client::want_read() const { return nghttp2_session_want_read(session_) != 0; }
bool H2Client::want_write() const { return nghttp2_session_want_write(session_) != 0; }

bool H2Client::accepting() const {
  if (goaway_ || !failure_.empty() || nghttp2_session_check_request_allowed(session_) == 0)
    return false;
  uint32_t max =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return out_.size() < std::min<uint32_t>(max, 1000);
}

int32_t H2Client::submit(const Fields& fields, bool has_body) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(fields.size());
  for (const auto& [k, v] : fields)
    nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(k.data())),
                  reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), k.size(), v.size(),
                  NGHTTP2_NV_FLAG_NONE});
  nghttp2_data_provider prov{};
  prov.read_callback = &Access::read_body;
  // nghttp2 copies the fields.
  int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(),
                                      has_body ? &prov : nullptr, nullptr);
  if (id < 0) return id;
  out_[id].ended = !has_body;
  return id;
}

void H2Client::send_data(int32_t id, std::string_view data) {
  auto it = out_.find(id);
  if (it != out_.end()) h2out::append(session_, id, it->second, data);
}

void H2Client::end_data(int32_t id) {
  auto it = out_.find(id);
  if (it != out_.end()) h2out::end(session_, id, it->second);
}

size_t H2Client::buffered(int32_t id) const {
  auto it = out_.find(id);
  return it == out_.end() ? 0 : it->second.pending();
}

void H2Client::consume(int32_t id, size_t n) {
  if (n > 0) nghttp2_session_consume_stream(session_, id, n);  // (a closed stream: nothing to do)
}

void H2Client::reset(int32_t id, uint32_t error_code) {
  if (out_.find(id) == out_.end()) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
}

void H2Client::shutdown() {
  goaway_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, nullptr, 0);
}

}  // namespace gh::http
