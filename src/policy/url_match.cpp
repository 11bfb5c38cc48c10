#include "policy/url_match.h"

#include <boost/regex.hpp>
#include <cctype>

#include "core/util.h"
#include "proxy/router.h"

namespace gh::policy {

struct UrlRule::Impl {
  boost::regex re;
};

bool canonical_path(std::string_view raw, std::string& out) {
  out.clear();
  // One percent-decoding; a '%' that is not an escape stays as it is.
  std::string dec;
  dec.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%' && i + 2 < raw.size() && hex_value(raw[i + 1]) >= 0 &&
        hex_value(raw[i + 2]) >= 0) {
      c = static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2]));
      i += 2;
    }
    dec += c;
  }
  for (size_t i = 0; i < dec.size(); ++i) {
    auto u = static_cast<unsigned char>(dec[i]);
    if (u < 0x20 || u == 0x7f) return false;
    // Still an escape after one decoding: something downstream may decode it again.
    if (dec[i] == '%' && i + 2 < dec.size() && hex_value(dec[i + 1]) >= 0 &&
        hex_value(dec[i + 2]) >= 0)
      return false;
    if (dec[i] == '\\') dec[i] = '/';
  }
  if (dec.empty() || dec[0] != '/') dec.insert(dec.begin(), '/');
  // Drop `;parameters` from every segment and merge repeated slashes; the router's normaliser
  // then removes the dot segments.
  std::string flat;
  flat.reserve(dec.size());
  bool in_params = false;
  for (char c : dec) {
    if (c == '/') {
      in_params = false;
      if (!flat.empty() && flat.back() == '/') continue;
    } else if (c == ';') {
      in_params = true;
    }
    if (!in_params) flat += c;
  }
  return proxy::normalise_path(flat, out);
}

std::string tyk_path_regex(std::string_view url) {
  std::string out;
  out.reserve(url.size() + 16);
  for (size_t i = 0; i < url.size(); ++i) {
    if (url[i] == '{') {
      size_t close = url.find('}', i);
      // A `{` that opens a regex quantifier such as {2,3} is kept.
      bool name = close != std::string_view::npos && close > i + 1;
      for (size_t k = i + 1; name && k < close; ++k) {
        char c = url[k];
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) name = false;
      }
      if (name && !std::isdigit(static_cast<unsigned char>(url[i + 1]))) {
        out += "([^/]+)";
        i = close;
        continue;
      }
    }
    if (url[i] == '*' && i > 0 && url[i - 1] == '/' && i + 1 == url.size()) {
      out += ".*";
      continue;
    }
    out += url[i];
  }
  return out;
}

Result<UrlRule> UrlRule::compile(std::string_view url, std::vector<std::string> methods,
                                 bool anchor_end) {
  UrlRule r;
  r.url_ = std::string(url);
  r.methods_ = std::move(methods);
  std::string pattern = tyk_path_regex(url);
  if (!pattern.empty() && pattern[0] == '^') pattern.erase(0, 1);
  if (anchor_end && (pattern.empty() || pattern.back() != '$')) pattern += '$';
  try {
    auto impl = std::make_shared<Impl>();
    impl->re = boost::regex(pattern, boost::regex::perl);
    r.re_ = std::move(impl);
  } catch (const std::exception& e) {
    return Error{"allowed_urls: invalid regular expression \"" + std::string(url) +
                 "\": " + e.what()};
  }
  return r;
}

bool UrlRule::matches(std::string_view canonical, std::string_view method) const {
  bool method_ok = false;
  for (const auto& m : methods_) {
    if (m == method) {
      method_ok = true;
      break;
    }
  }
  if (!method_ok) return false;
  try {
    // Anchored at the start: the match must begin at the first character of the path.
    return boost::regex_search(canonical.begin(), canonical.end(), re_->re,
                               boost::match_continuous);
  } catch (const std::exception&) {
    return false;  // too complex to decide: refuse
  }
}

}  // namespace gh::policy
