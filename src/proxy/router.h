// Router: host + path -> ApiSpec. Built once per snapshot; lookups only read.
//
// With custom domains enabled, APIs whose `domain` equals the request's host are tried first,
// then APIs without a domain. Within a group the longest listen path wins. A listen path
// matches on segment boundaries only: "/echo" matches "/echo" and "/echo/x", not "/echoes".
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "apidef/api_spec.h"

namespace gh::proxy {

class Router {
 public:
  Router() = default;
  // `apis` must hold active APIs only; problems (duplicates) are appended to `problems`.
  Router(std::vector<std::shared_ptr<const apidef::ApiSpec>> apis, bool custom_domains,
         std::vector<std::string>* problems);

  // `host` is the Host header (any case, port allowed); `path` a normalised path.
  const apidef::ApiSpec* match(std::string_view host, std::string_view path) const;
  size_t size() const { return generic_.size() + with_domain_.size(); }

 private:
  static const apidef::ApiSpec* longest(const std::vector<const apidef::ApiSpec*>& list,
                                        std::string_view path);
  std::vector<std::shared_ptr<const apidef::ApiSpec>> owned_;
  std::vector<const apidef::ApiSpec*> generic_;      // sorted by listen path length, longest first
  std::vector<const apidef::ApiSpec*> with_domain_;  // the same, for APIs with a domain
  bool custom_domains_ = false;
};

// True when `path` falls under `listen_path` (normalised form, "" = root).
bool listen_path_matches(std::string_view listen_path, std::string_view path);

// Removes dot segments ("." and "..", also percent-encoded) as RFC 3986 5.2.4 does, so that no
// request can climb above a listen path or a target's base path. Returns false for paths that
// are not origin-form.
bool normalise_path(std::string_view in, std::string& out);

// The upstream request target for `spec`: listen path stripped when asked, joined to the
// target's base path, query of the target and of the request kept.
std::string upstream_target(const apidef::ApiSpec& spec, std::string_view path,
                            std::string_view query, bool has_query);
// The same, appended to `out` (which the proxy reuses across requests).
void append_upstream_target(std::string& out, const apidef::ApiSpec& spec, std::string_view path,
                            std::string_view query, bool has_query);

// Host without port, lower-cased.
std::string host_only(std::string_view host);

}  // namespace gh::proxy
