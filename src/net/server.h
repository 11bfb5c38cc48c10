// The gateway's I/O side: workers (one io_context and one SO_REUSEPORT listener each), client
// sessions, proxying, reload and graceful shutdown. Asio is instantiated only in server.cpp.
#pragma once

#include "config/gateway_config.h"

namespace gh::net {

// Serves until SIGTERM/SIGINT; returns the process exit code. Throws config::ConfigError when
// the configuration cannot be served (certificates, listeners).
int run(const config::GatewayConfig& cfg);

// `gatehouse cert expiring`: prints the certificates (configured files and the store) that
// expire within `days` days, soonest first; returns the exit code.
int print_expiring(const config::GatewayConfig& cfg, int days);

}  // namespace gh::net
