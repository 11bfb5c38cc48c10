#include "auth/token_source.h"

#include "core/util.h"

namespace gh::auth {

namespace {
std::string percent_decode_q(std::string_view s) { return percent_decode(s, true); }
}  // namespace

namespace {}  // namespace

TokenPlace find_token(const http::RequestHead& req, const apidef::TokenSource& src,
                      std::string_view& token, std::string& decoded) {
  if (src.use_header) {
    auto v = trim(req.get(src.header_name));
    if (v.size() > 7 && iequals(v.substr(0, 7), "bearer ")) v = trim(v.substr(7));
    if (!v.empty()) {
      token = v;
      return TokenPlace::kHeader;
    }
  }
  if (src.use_param && req.has_query) {
    std::string_view name = src.param_name.empty() ? std::string_view(src.header_name)
                                                   : std::string_view(src.param_name);
    for (auto part : split(req.query, '&')) {
      auto eq = part.find('=');
      if (percent_decode_q(part.substr(0, eq)) != name || eq == std::string_view::npos) continue;
      auto v = percent_decode_q(part.substr(eq + 1));
      if (!v.empty()) {
        decoded = std::move(v);
        token = decoded;
        return TokenPlace::kQuery;
      }
    }
  }
  if (src.use_cookie) {
    std::string_view name = src.cookie_name.empty() ? std::string_view(src.header_name)
                                                    : std::string_view(src.cookie_name);
    for (const auto& h : req.headers) {
      if (!iequals(h.name, "cookie")) continue;
      for (auto part : split(h.value, ';')) {
        auto p = trim(part);
        auto eq = p.find('=');
        if (eq == std::string_view::npos || p.substr(0, eq) != name) continue;
        auto v = p.substr(eq + 1);
        if (!v.empty()) {
          token = v;
          return TokenPlace::kCookie;
        }
      }
    }
  }
  return TokenPlace::kNone;
}

FoundToken find_token(const http::RequestHead& req, const apidef::TokenSource& src) {
  FoundToken f;
  std::string_view token;
  std::string decoded;
  f.place = find_token(req, src, token, decoded);
  if (f.place == TokenPlace::kQuery)
    f.token = std::move(decoded);
  else
    f.token.assign(token);
  return f;
}

std::string strip_query_param(std::string_view query, std::string_view name) {
  std::string out;
  for (auto part : split(query, '&')) {
    auto eq = part.find('=');
    if (percent_decode_q(part.substr(0, eq)) == name) continue;
    if (part.empty()) continue;
    if (!out.empty()) out += '&';
    out.append(part);
  }
  return out;
}

std::string strip_cookie(std::string_view cookie_header, std::string_view name) {
  std::string out;
  for (auto part : split(cookie_header, ';')) {
    auto p = trim(part);
    if (p.empty()) continue;
    auto eq = p.find('=');
    if (p.substr(0, eq) == name) continue;
    if (!out.empty()) out += "; ";
    out.append(p);
  }
  return out;
}

}  // namespace gh::auth
