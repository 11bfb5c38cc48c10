// The control API (Tyk's /tyk/... REST API, /hello and /ready), sans I/O: it takes a parsed
// request with its whole body and returns the response plus what the caller must do about a
// reload. File writes go to app_path; changes are served after a reload, as in Tyk.
#pragma once

#include <boost/json/fwd.hpp>
#include <functional>
#include <string>
#include <string_view>

#include "config/gateway_config.h"
#include "http/response.h"
#include "proxy/snapshot.h"

namespace gh::admin {

struct AdminRequest {
  std::string_view method;
  std::string_view path;
  std::string_view query;
  std::string_view authorization;  // X-Tyk-Authorization
  bool has_authorization = false;
  std::string_view body;
};

enum class ReloadMode { kNone, kQueue, kBlock };

struct AdminResult {
  http::Response response;
  ReloadMode reload = ReloadMode::kNone;
};

struct GatewayState {
  std::function<bool()> shutting_down;
  std::function<bool()> loaded;    // a snapshot has been built at least once
  std::function<bool()> store_ok;  // the store answers
  std::string store_type;
};

class ControlApi {
 public:
  ControlApi(const config::GatewayConfig& cfg, const proxy::SnapshotHolder& snapshots,
             GatewayState state);

  // True when `path` belongs to the control API (/tyk/..., /hello, /ready).
  bool owns(std::string_view path) const;
  // The X-Tyk-Authorization check (constant time), and Tyk's answer when it fails.
  bool authorized(const AdminRequest& req) const;
  static AdminResult forbidden(const AdminRequest& req);
  AdminResult handle(const AdminRequest& req) const;

 private:
  AdminResult health(const AdminRequest& req, bool ready) const;
  AdminResult apis(const AdminRequest& req, std::string_view rest, bool oas) const;
  AdminResult add_api(const AdminRequest& req, bool oas) const;
  AdminResult update_api(const AdminRequest& req, std::string_view id, bool oas, bool patch) const;
  AdminResult delete_api(std::string_view id) const;
  AdminResult import_oas(const AdminRequest& req) const;

  const config::GatewayConfig& cfg_;
  const proxy::SnapshotHolder& snapshots_;
  GatewayState state_;
};

// Replies shared by the control API's parts: {"status":"error","message":..}, a JSON value, and
// {"key":..,"status":"ok","action":..}.
AdminResult error_reply(int status, std::string_view message);
AdminResult json_value_reply(int status, const boost::json::value& v);
AdminResult action_reply(std::string_view key, std::string_view action);

// A control API path fit for a log line: key ids (credentials) replaced.
std::string redact_path(std::string_view normalised_path);

// Value of `name` in a query string (no percent-decoding of names; values are decoded).
std::string query_param(std::string_view query, std::string_view name, bool* present = nullptr);

}  // namespace gh::admin
