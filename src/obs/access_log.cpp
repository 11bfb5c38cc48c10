#include "obs/access_log.h"

#include "core/log.h"

namespace gh::obs {

void AccessLog::record(const AccessRecord& r) {
  if (!enabled_) return;
  buf_ += "{\"time\":\"";
  buf_ += log::now_rfc3339();
  buf_ += "\",\"level\":\"info\",\"msg\":\"access\",\"worker\":";
  buf_ += std::to_string(r.worker);
  buf_ += ",\"client\":\"";
  log::json_escape(buf_, r.client_ip);
  buf_ += "\",\"method\":\"";
  log::json_escape(buf_, r.method);
  buf_ += "\",\"host\":\"";
  log::json_escape(buf_, r.host);
  buf_ += "\",\"path\":\"";
  log::json_escape(buf_, r.path);
  buf_ += "\",\"api_id\":\"";
  log::json_escape(buf_, r.api_id);
  buf_ += "\",\"status\":";
  buf_ += std::to_string(r.status);
  buf_ += ",\"bytes\":";
  buf_ += std::to_string(r.bytes_out);
  buf_ += ",\"duration_us\":";
  buf_ += std::to_string(r.duration_us);
  buf_ += ",\"upstream_us\":";
  buf_ += std::to_string(r.upstream_us);
  buf_ += ",\"tls\":";
  buf_ += r.tls ? "true" : "false";
  if (!r.error.empty()) {
    buf_ += ",\"error\":\"";
    log::json_escape(buf_, r.error);
    buf_ += '"';
  }
  buf_ += "}\n";
  if (buf_.size() > 32768) flush();
}

void AccessLog::flush() {
  if (buf_.empty()) return;
  log::write_raw(buf_);
  buf_.clear();
}

}  // namespace gh::obs
