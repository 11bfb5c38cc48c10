#include "http/headers.h"

#include "core/util.h"

namespace gh::http {

bool is_hop_by_hop(std::string_view name) {
  // By length first: most forwarded names match none and cost one comparison.
  switch (name.size()) {
    case 2:
      return iequals(name, "te");
    case 7:
      return iequals(name, "trailer") || iequals(name, "upgrade");
    case 10:
      return iequals(name, "connection") || iequals(name, "keep-alive");
    case 16:
      return iequals(name, "proxy-connection");
    case 17:
      return iequals(name, "transfer-encoding");
    case 18:
      return iequals(name, "proxy-authenticate");
    case 19:
      return iequals(name, "proxy-authorization");
    default:
      return false;
  }
}

std::vector<std::string_view> connection_listed(const std::vector<Header>& headers) {
  std::vector<std::string_view> out;
  for (const auto& h : headers) {
    if (h.name.size() != 10 || !iequals(h.name, "connection")) continue;
    std::string_view list = h.value;
    while (true) {
      size_t comma = list.find(',');
      auto t = trim(list.substr(0, comma));
      if (!t.empty()) out.push_back(t);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
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
