// Resolves how each API's upstream connections are made (proxy::UpstreamPlan): the client
// certificate for upstream mutual TLS and the pinned public keys, chosen by host with Tyk's
// precedence from the gateway's maps and the API's own, the TLS policy, the forward proxy.
// Runs when a snapshot is built, never per request.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "apidef/api_spec.h"
#include "config/gateway_config.h"
#include "core/result.h"
#include "proxy/upstream_plan.h"
#include "store/store.h"
#include "tls/client_tls.h"

namespace gh::net {

// The value of the most specific pattern matching `host` (with `port` when not 0) over `maps`,
// later maps overriding earlier ones (Tyk's rule). Patterns, least specific first: "*",
// "*.parent", "*.parent:port" (with ports), "host", "host:port" (with ports). "" when none.
std::string pick_for_host(const std::vector<const std::map<std::string, std::string>*>& maps,
                          const std::string& host, uint16_t port, bool with_ports);

// transport.proxy_url: "http://[user:password@]host[:port]" (an https:// proxy is not served).
Result<proxy::ForwardProxy> parse_proxy_url(const std::string& url);

proxy::UpstreamPlan plan_upstream(const apidef::ApiSpec& spec, const config::GatewayConfig& cfg,
                                  store::Store& store, tls::ClientTls& client_tls,
                                  std::vector<std::string>* problems);

}  // namespace gh::net
