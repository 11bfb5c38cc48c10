// Header rules for a proxy: which fields are hop-by-hop and never forwarded.
#pragma once

#include <string_view>
#include <vector>

#include "http/message.h"

namespace gh::http {

// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
// Proxy-Authenticate, Proxy-Authorization (RFC 9110 7.6.1 plus the usual extras).
bool is_hop_by_hop(std::string_view name);

// The field names listed in Connection headers (which are hop-by-hop too).
std::vector<std::string_view> connection_listed(const std::vector<Header>& headers);

// True when `name` must not be forwarded: hop-by-hop, named in Connection, or framing that the
// proxy regenerates (Content-Length).
bool drop_when_forwarding(std::string_view name, const std::vector<std::string_view>& listed);

}  // namespace gh::http
