// The API listener's server certificates, resolved from everywhere Tyk's config and API
// definitions name them: http_server_options.certificates (per domain, files),
// http_server_options.ssl_certificates (certificate store ids or PEM files) and, with
// enable_custom_domains, each API's `certificates` on its `domain` (store ids, files or inline
// PEM). Read again on every reload, so a certificate replaced in its file or in the store takes
// effect then.
#pragma once

#include <string>
#include <vector>

#include "config/gateway_config.h"
#include "proxy/snapshot.h"
#include "store/store.h"
#include "tls/server_tls.h"

namespace gh::net {

// `store` may be null (config validation): store ids are then not checked. Certificates of the
// config that cannot be read go to `config_problems` (a start fails on them; a reload keeps the
// certificates it had); those of API definitions go to `api_problems` and are left out.
std::vector<tls::ServerCert> server_certificates(const config::GatewayConfig& cfg,
                                                 store::Store* store, const proxy::Snapshot* snap,
                                                 std::vector<std::string>* config_problems,
                                                 std::vector<std::string>* api_problems);

}  // namespace gh::net
