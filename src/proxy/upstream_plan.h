// How a connection to an API's upstream is made, resolved when the API definitions are loaded:
// the TLS context (policy and client certificate), the pinned public keys, the common-name rule,
// the forward proxy, and the pool tag that names all of it (so a pooled connection is only
// reused for requests that would have made the same connection).
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "tls/client_tls.h"

namespace gh::proxy {

struct ForwardProxy {
  std::string host;  // without brackets for IPv6
  uint16_t port = 0;
  std::string authority;      // host:port as written
  std::string authorization;  // Proxy-Authorization value ("Basic ...") or ""
};

struct UpstreamPlan {
  SSL_CTX* tls_ctx = nullptr;               // null for http:// targets
  std::shared_ptr<const tls::PinSet> pins;  // null: no pinning for this upstream
  bool force_common_name = false;           // ssl_force_common_name_check
  std::optional<ForwardProxy> proxy;        // transport.proxy_url
  std::string client_cert_id;               // the upstream mTLS certificate, for logs
  std::string pool_tag;
};

}  // namespace gh::proxy
