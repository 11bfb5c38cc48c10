// API definitions and routing: arbitrary bytes as a Tyk Classic or OAS document (loader, every
// field's type checks) and as a request path (the router's dot-segment normaliser, the match,
// the upstream target built from it), with invariants: loading never throws; a normalised path
// is absolute and has no dot segment; a matched API's listen path covers the path; the upstream
// target is origin-form (starts with '/') and holds no dot segment either.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "apidef/api_loader.h"
#include "proxy/router.h"

namespace json = boost::json;

#define CHECK(c)                                          \
  do {                                                    \
    if (!(c)) {                                           \
      std::fprintf(stderr, "invariant failed: %s\n", #c); \
      __builtin_trap();                                   \
    }                                                     \
  } while (0)

static bool has_dot_segment(std::string_view p) {
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i + 1);
    auto seg = p.substr(i + 1, j == std::string_view::npos ? std::string_view::npos : j - i - 1);
    if (seg == "." || seg == "..") return true;
    if (j == std::string_view::npos) break;
    i = j;
  }
  return false;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // Split: API document | request path | host
  auto p = in.find('\x01');
  auto doc_text = in.substr(0, p);
  std::string_view rest = p == std::string_view::npos ? std::string_view() : in.substr(p + 1);
  auto q = rest.find('\x01');
  auto path = rest.substr(0, q);
  // The HTTP parser hands the router the path without its query.
  if (auto qm = path.find('?'); qm != std::string_view::npos) path = path.substr(0, qm);
  auto host = q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);

  std::string norm;
  bool ok_path = gh::proxy::normalise_path(path, norm);
  if (ok_path) {
    CHECK(!norm.empty() && norm[0] == '/');
    CHECK(!has_dot_segment(norm));
  }

  boost::system::error_code ec;
  auto doc = json::parse(doc_text, ec);
  if (ec) return 0;
  auto spec = gh::apidef::load_any(doc);
  if (!spec || !ok_path) return 0;
  auto shared = std::make_shared<const gh::apidef::ApiSpec>(std::move(spec.value()));
  std::vector<std::string> problems;
  gh::proxy::Router router({shared}, true, &problems);
  const auto* hit = router.match(host, norm);
  if (!hit) return 0;
  CHECK(gh::proxy::listen_path_matches(hit->listen_path, norm));
  std::string target;
  gh::proxy::append_upstream_target(target, *hit, norm, "", false);
  CHECK(!target.empty() && target[0] == '/');
  // Only a dot segment the request brought in counts (a base path is the operator's).
  std::string_view target_path(target);
  target_path = target_path.substr(0, target_path.find('?'));  // its query is the target URL's
  CHECK(has_dot_segment(hit->target.path) || !has_dot_segment(target_path));
  return 0;
}
