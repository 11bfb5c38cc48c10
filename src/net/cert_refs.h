// Certificate references as Tyk's config and API definitions write them: a certificate store id,
// a PEM file path, or inline PEM. Resolved when a snapshot is built (never per request).
#pragma once

#include <string>
#include <vector>

#include "config/gateway_config.h"
#include "store/store.h"
#include "tls/cert_store.h"

namespace gh::net {

// The bundles `refs` name, in order; a reference that names nothing readable is reported in
// `problems` (with `what`, e.g. the API id and field) and skipped. Blocks the calling thread
// while it reads the store.
std::vector<tls::PemBundle> resolve_cert_refs(const std::vector<std::string>& refs,
                                              const config::GatewayConfig& cfg, store::Store& store,
                                              const std::string& what,
                                              std::vector<std::string>* problems);

}  // namespace gh::net
