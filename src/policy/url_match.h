// Method and path allow lists (`allowed_urls` of keys and policies).
//
// Tyk matches each `url` regex, unanchored, against the request path as sent, so a path spelt
// differently (`//admin`, `/public/../admin`, `%2e%2e`, `%2F`) can slip past a rule. Gatehouse
// matches against one canonical spelling instead: percent-decoded once, backslashes as slashes,
// `;parameters` dropped from each segment, duplicate slashes merged, dot segments removed. A path
// that is still percent-encoded after one decoding (double encoding) or that decodes to a
// control character has no safe canonical form and is refused outright. Rules are anchored at
// the start of the path (`/users` admits `/users/1` but not `/admin/users`).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gh::policy {

// The canonical form of a request path (without query) for allow-list matching; false when the
// path has none (double encoding, NUL or other control characters after decoding).
bool canonical_path(std::string_view raw, std::string& out);

class UrlRule {
 public:
  // `url` in Tyk's syntax: a regex, `{name}` = one segment, `/*` = anything below.
  static Result<UrlRule> compile(std::string_view url, std::vector<std::string> methods,
                                 bool anchor_end);
  bool matches(std::string_view canonical, std::string_view method) const;
  const std::string& url() const { return url_; }

 private:
  struct Impl;
  std::string url_;
  std::vector<std::string> methods_;
  std::shared_ptr<const Impl> re_;
};

// Translates Tyk's path syntax into a regex: `{name}` -> `([^/]+)`, a trailing `/*` -> `/.*`.
std::string tyk_path_regex(std::string_view url);

}  // namespace gh::policy
