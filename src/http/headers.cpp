#include "http/headers.h"

#include "core/util.h"

namespace gh::http {

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::string_view kNames[] = {"connection",
                                                "keep-alive",
                                                "proxy-connection",
                                                "te",
                                                "trailer",
                                                "transfer-encoding",
                                                "upgrade",
                                                "proxy-authenticate",
                                                "proxy-authorization"};
  for (auto n : kNames) {
    if (iequals(name, n)) return true;
  }
  return false;
}

std::vector<std::string_view> connection_listed(const std::vector<Header>& headers) {
  std::vector<std::string_view> out;
  for (const auto& h : headers) {
    if (!iequals(h.name, "connection")) continue;
    for (auto part : split(h.value, ',')) {
      auto t = trim(part);
      if (!t.empty()) out.push_back(t);
    }
  }
  return out;
}

bool drop_when_forwarding(std::string_view name, const std::vector<std::string_view>& listed) {
  if (is_hop_by_hop(name) || iequals(name, "content-length")) return true;
  for (auto l : listed) {
    if (iequals(name, l)) return true;
  }
  return false;
}

}  // namespace gh::http
