// Access log: one JSON line per request. Lines are batched per worker and flushed by the worker
// (on a timer and when the batch grows), so the request path does no system call for logging.
// Fields never include header values, query strings or bodies, which may carry credentials.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gh::obs {

struct AccessRecord {
  int worker = 0;
  std::string_view client_ip;
  std::string_view method;
  std::string_view host;
  std::string_view path;
  std::string_view api_id;
  int status = 0;
  uint64_t bytes_out = 0;
  uint64_t duration_us = 0;
  uint64_t upstream_us = 0;
  bool tls = false;
  std::string_view error;  // gateway error text when the gateway answered itself
};

class AccessLog {
 public:
  explicit AccessLog(bool enabled) : enabled_(enabled) {}
  void record(const AccessRecord& r);
  void flush();
  bool pending() const { return !buf_.empty(); }

 private:
  bool enabled_;
  std::string buf_;
};

}  // namespace gh::obs
