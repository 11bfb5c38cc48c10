// Where a request carries its auth token (header, then query parameter, then cookie, as Tyk
// looks), and how to strip it before proxying (strip_auth_data).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "apidef/api_spec.h"
#include "http/message.h"

namespace gh::auth {

enum class TokenPlace { kNone, kHeader, kQuery, kCookie };

struct FoundToken {
  std::string token;
  TokenPlace place = TokenPlace::kNone;
};

// The first non-empty token in the configured places. A "Bearer " prefix (any case) is
// optional in the header.
FoundToken find_token(const http::RequestHead& req, const apidef::TokenSource& src);
// The same without a copy: `token` views the request (header, cookie) or `decoded` (a
// percent-decoded query parameter), and lives as long as both.
TokenPlace find_token(const http::RequestHead& req, const apidef::TokenSource& src,
                      std::string_view& token, std::string& decoded);

// The query string without the parameter `name` (all occurrences).
std::string strip_query_param(std::string_view query, std::string_view name);
// A Cookie header value without the cookie `name`; empty when nothing is left.
std::string strip_cookie(std::string_view cookie_header, std::string_view name);

}  // namespace gh::auth
