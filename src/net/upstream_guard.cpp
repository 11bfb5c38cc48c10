#include "net/upstream_guard.h"

#include <array>

namespace gh::net {

namespace ip = boost::asio::ip;

namespace {

bool in4(const ip::address_v4& a, const char* cidr) {
  auto n = ip::make_network_v4(cidr);
  return (a.to_uint() & n.netmask().to_uint()) == n.network().to_uint();
}

bool in6(const ip::address_v6& a, const ip::network_v6& n) {
  auto bytes = a.to_bytes();
  auto net = n.network().to_bytes();
  int bits = n.prefix_length();
  for (int i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
    if ((bytes[i] & mask) != (net[i] & mask)) return false;
  }
  return true;
}

bool internal4(const ip::address_v4& a) {
  static const std::array<const char*, 13> kRanges = {
      "0.0.0.0/8",        // "this network"
      "10.0.0.0/8",       // private
      "100.64.0.0/10",    // carrier-grade NAT
      "127.0.0.0/8",      // loopback
      "169.254.0.0/16",   // link-local, cloud metadata (169.254.169.254)
      "172.16.0.0/12",    // private
      "192.0.0.0/24",     // IETF protocol assignments
      "192.0.2.0/24",     // documentation
      "192.168.0.0/16",   // private
      "198.18.0.0/15",    // benchmarking
      "198.51.100.0/24",  // documentation
      "224.0.0.0/4",      // multicast
      "240.0.0.0/4",      // reserved, broadcast
  };
  for (const char* r : kRanges) {
    if (in4(a, r)) return true;
  }
  return in4(a, "203.0.113.0/24");  // documentation
}

}  // namespace

bool UpstreamGuard::internal(const ip::address& addr) {
  if (addr.is_v4()) return internal4(addr.to_v4());
  auto a = addr.to_v6();
  if (a.is_v4_mapped()) return internal4(ip::make_address_v4(ip::v4_mapped, a));
  static const std::array<const char*, 7> kRanges = {
      "::/128",         // unspecified
      "::1/128",        // loopback
      "fc00::/7",       // unique local (AWS metadata fd00:ec2::254 among them)
      "fe80::/10",      // link-local
      "ff00::/8",       // multicast
      "64:ff9b::/96",   // NAT64: an IPv4 address in disguise (checked below)
      "2001:db8::/32",  // documentation
  };
  for (const char* r : kRanges) {
    auto n = ip::make_network_v6(r);
    if (!in6(a, n)) continue;
    if (std::string(r) == "64:ff9b::/96") {
      auto b = a.to_bytes();
      return internal4(ip::address_v4(ip::address_v4::bytes_type{b[12], b[13], b[14], b[15]}));
    }
    return true;
  }
  return false;
}

UpstreamGuard::UpstreamGuard(const config::GatewayConfig& cfg)
    : enabled_(cfg.gatehouse.upstream_guard_deny_internal) {
  const auto& list = cfg.gatehouse.upstream_guard_allow;
  for (size_t i = 0; i < list.size(); ++i) {
    boost::system::error_code ec;
    const auto& e = list[i];
    if (e.find(':') != std::string::npos) {
      auto n = ip::make_network_v6(e.find('/') == std::string::npos ? e + "/128" : e, ec);
      if (!ec) allow6_.push_back(n);
    } else {
      auto n = ip::make_network_v4(e.find('/') == std::string::npos ? e + "/32" : e, ec);
      if (!ec) allow4_.push_back(n);
    }
    if (ec)
      throw config::ConfigError(cfg.file + ": field \"gatehouse.upstream_guard.allow[" +
                                std::to_string(i) + "]\": \"" + e +
                                "\" is not an address or CIDR range");
  }
}

bool UpstreamGuard::allowed(const ip::address& addr) const {
  if (!enabled_ || !internal(addr)) return true;
  ip::address a = addr;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = ip::make_address_v4(ip::v4_mapped, a.to_v6());
  if (a.is_v4()) {
    for (const auto& n : allow4_) {
      if ((a.to_v4().to_uint() & n.netmask().to_uint()) == n.network().to_uint()) return true;
    }
    return false;
  }
  for (const auto& n : allow6_) {
    if (in6(a.to_v6(), n)) return true;
  }
  return false;
}

}  // namespace gh::net
