// Policies and allow lists: arbitrary bytes as a policy document and a key session (apply
// rules, access build) and as a request path (canonical form), with invariants: a canonical
// path is absolute, has no dot segment, no repeated slash, no backslash and no control
// character; applying policies never throws and its result can always be read back.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "policy/access.h"
#include "policy/policy.h"
#include "policy/url_match.h"

namespace json = boost::json;

static void check_canonical(std::string_view raw) {
  std::string out;
  if (!gh::policy::canonical_path(raw, out)) return;
  if (out.empty() || out[0] != '/') __builtin_trap();
  if (out.find("//") != std::string::npos) __builtin_trap();
  if (out.find('\\') != std::string::npos) __builtin_trap();
  for (unsigned char c : out)
    if (c < 0x20 || c == 0x7f) __builtin_trap();
  std::string_view v(out);
  size_t i = 0;
  while (i < v.size()) {
    size_t j = v.find('/', i + 1);
    auto seg = v.substr(i + 1, j == std::string_view::npos ? std::string_view::npos : j - i - 1);
    if (seg == "." || seg == "..") __builtin_trap();
    if (j == std::string_view::npos) break;
    i = j;
  }
  // Canonical is a fixed point.
  std::string again;
  if (gh::policy::canonical_path(out, again) && again != out && out.find('%') == std::string::npos)
    __builtin_trap();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  check_canonical(in);
  // Split: policy document | session document | path | method
  auto cut = [&](std::string_view& s) {
    auto p = s.find('\x01');
    auto head = s.substr(0, p);
    s = p == std::string_view::npos ? std::string_view() : s.substr(p + 1);
    return head;
  };
  std::string_view rest = in;
  auto pol_text = cut(rest);
  auto ses_text = cut(rest);
  auto path = cut(rest);
  auto method = rest;
  boost::system::error_code ec;
  auto pol_doc = json::parse(pol_text, ec);
  if (ec) return 0;
  gh::policy::PolicySet set;
  auto pol = gh::policy::parse_policy(pol_doc);
  if (pol) {
    std::string id = pol->id.empty() ? "p" : pol->id;
    set.by_id.emplace(id, std::make_shared<const gh::policy::Policy>(std::move(pol.value())));
  }
  auto ses_doc = json::parse(ses_text, ec);
  if (ec || !ses_doc.is_object()) return 0;
  auto applied = gh::policy::apply_policies(ses_doc.as_object(), set, "org");
  if (!applied) return 0;
  auto access = gh::policy::build_access(applied.value(), false);
  if (!access) return 0;
  std::string canon;
  if (!gh::policy::canonical_path(path, canon)) return 0;
  for (const auto& [api, a] : access->apis) {
    for (const auto& rule : a.allowed_urls) (void)rule.matches(canon, method);
  }
  return 0;
}
