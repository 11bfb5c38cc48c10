// Session: Tyk's SessionState, kept as the JSON object it was given (so unknown fields survive
// a round trip) plus the fields the request path reads, parsed once.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace gh::auth {

struct Session {
  boost::json::object raw;
  std::string org_id;
  int64_t expires = 0;  // unix seconds; 0 or -1 = never
  bool is_inactive = false;
  std::vector<std::string> api_ids;  // keys of access_rights
  std::string certificate;           // certificate auth: the store id of the key's certificate
  // Token-certificate binding: store ids (org + SHA-256) of the certificates this key may be
  // presented with on a static-mTLS API (the key's own and those of its policies).
  std::vector<std::string> mtls_bindings;

  bool expired(int64_t now) const { return expires > 0 && expires < now; }
  bool grants(std::string_view api_id, bool allow_master_keys) const;
};

// Validates the types of the fields Gatehouse reads; "malformed: ..." on a wrong type.
Result<Session> parse_session(const boost::json::value& v);

}  // namespace gh::auth
