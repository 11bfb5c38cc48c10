// SSRF guard rails (gatehouse.upstream_guard): with deny_internal on, the gateway does not
// connect to loopback, private, link-local (cloud metadata included), carrier-grade NAT,
// multicast, reserved or unspecified addresses, checked after DNS resolution (so a public name
// that resolves inward is refused too), except those in the `allow` CIDR list.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <vector>

#include "config/gateway_config.h"

namespace gh::net {

class UpstreamGuard {
 public:
  // Throws config::ConfigError naming the field when an allow entry is not a CIDR.
  explicit UpstreamGuard(const config::GatewayConfig& cfg);
  bool enabled() const { return enabled_; }
  bool allowed(const boost::asio::ip::address& a) const;
  static bool internal(const boost::asio::ip::address& a);

 private:
  bool enabled_ = false;
  std::vector<boost::asio::ip::network_v4> allow4_;
  std::vector<boost::asio::ip::network_v6> allow6_;
};

}  // namespace gh::net
