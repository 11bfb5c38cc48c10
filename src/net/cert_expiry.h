// Certificates that expire soon: those the configuration names (server certificates, the
// security.certificates lists) and every certificate in the store. Reported at start and on
// reload (a warning each) and by `gatehouse cert expiring`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/gateway_config.h"
#include "store/store.h"

namespace gh::net {

struct ExpiringCert {
  std::string source;   // "store:<id>" or "file:<path>" (with the config field)
  std::string subject;  // RFC 2253
  int64_t not_after = 0;
};

// Certificates whose notAfter is before now + `within_seconds` (already expired included),
// soonest first. Blocks the calling thread (it drives the store itself); call it off the
// request path.
std::vector<ExpiringCert> find_expiring(const config::GatewayConfig& cfg, store::Store& store,
                                        int64_t within_seconds);

}  // namespace gh::net
