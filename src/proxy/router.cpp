#include "proxy/router.h"

#include <algorithm>
#include <set>

#include "core/util.h"

namespace gh::proxy {

using apidef::ApiSpec;

std::string host_only(std::string_view host) {
  if (!host.empty() && host[0] == '[') {
    auto end = host.find(']');
    return to_lower(host.substr(0, end == std::string_view::npos ? host.size() : end + 1));
  }
  auto colon = host.find(':');
  return to_lower(host.substr(0, colon));
}

bool listen_path_matches(std::string_view lp, std::string_view path) {
  if (lp.empty()) return true;
  if (path.size() < lp.size() || path.compare(0, lp.size(), lp) != 0) return false;
  return path.size() == lp.size() || path[lp.size()] == '/';
}

Router::Router(std::vector<std::shared_ptr<const ApiSpec>> apis, bool custom_domains,
               std::vector<std::string>* problems)
    : owned_(std::move(apis)), custom_domains_(custom_domains) {
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& a : owned_) {
    std::string domain = custom_domains_ ? a->domain : std::string();
    if (!seen.emplace(domain, a->listen_path).second) {
      if (problems)
        problems->push_back("API " + a->api_id + ": duplicate listen path \"" +
                            (a->listen_path.empty() ? "/" : a->listen_path) + "\", skipping it");
      continue;
    }
    (domain.empty() ? generic_ : with_domain_).push_back(a.get());
  }
  auto by_len = [](const ApiSpec* x, const ApiSpec* y) {
    return x->listen_path.size() > y->listen_path.size();
  };
  std::stable_sort(generic_.begin(), generic_.end(), by_len);
  std::stable_sort(with_domain_.begin(), with_domain_.end(), by_len);
}

const ApiSpec* Router::longest(const std::vector<const ApiSpec*>& list, std::string_view path) {
  for (const auto* a : list) {
    if (listen_path_matches(a->listen_path, path)) return a;
  }
  return nullptr;
}

const ApiSpec* Router::match(std::string_view host, std::string_view path) const {
  if (custom_domains_ && !with_domain_.empty()) {
    std::string h = host_only(host);
    for (const auto* a : with_domain_) {
      if (a->domain == h && listen_path_matches(a->listen_path, path)) return a;
    }
  }
  return longest(generic_, path);
}

namespace {
bool is_dot(std::string_view seg) { return seg == "." || iequals(seg, "%2e"); }
bool is_dotdot(std::string_view seg) {
  return seg == ".." || iequals(seg, "%2e%2e") || iequals(seg, ".%2e") || iequals(seg, "%2e.");
}
}  // namespace

bool normalise_path(std::string_view in, std::string& out) {
  out.clear();
  if (in.empty() || in[0] != '/') return false;
  // Dot segments need a '.' or a '%'; without either the path is already normal.
  if (in.find_first_of(".%") == std::string_view::npos) {
    out.assign(in);
    return true;
  }
  std::vector<std::string_view> segs;
  size_t i = 1;
  bool trailing = false;
  while (true) {
    size_t j = in.find('/', i);
    std::string_view seg =
        in.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
    bool last = j == std::string_view::npos;
    if (is_dot(seg)) {
      trailing = last;
    } else if (is_dotdot(seg)) {
      if (!segs.empty()) segs.pop_back();
      trailing = last;
    } else {
      segs.push_back(seg);
      trailing = false;
    }
    if (last) break;
    i = j + 1;
  }
  out.reserve(in.size());
  for (auto s : segs) {
    out += '/';
    out.append(s);
  }
  if (out.empty() || trailing) out += '/';
  return true;
}

void append_upstream_target(std::string& out, const ApiSpec& spec, std::string_view path,
                            std::string_view query, bool has_query) {
  std::string_view rest = path;
  if (spec.strip_listen_path && !spec.listen_path.empty())
    rest = path.substr(spec.listen_path.size());
  if (rest.empty() && spec.target.path.empty()) {
    out += '/';
  } else {
    out += spec.target.path;
    out.append(rest);
  }
  if (!spec.target.query.empty() || has_query) {
    out += '?';
    out += spec.target.query;
    if (!spec.target.query.empty() && has_query && !query.empty()) out += '&';
    out.append(query);
  }
}

std::string upstream_target(const ApiSpec& spec, std::string_view path, std::string_view query,
                            bool has_query) {
  std::string out;
  append_upstream_target(out, spec, path, query, has_query);
  return out;
}

}  // namespace gh::proxy
