#include "auth/token.h"

#include <openssl/evp.h>

#include <boost/json.hpp>
#include <string>

#include "core/util.h"

namespace gh::auth {

std::string base64_encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  for (char c : in) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=';
    if (!ok) return std::nullopt;
  }
  std::string out(3 * in.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  if (in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string generate_token(std::string_view org_id, std::string_view id,
                           std::string_view hash_function) {
  std::string key_id = id.empty() ? random_hex(16) : std::string(id);
  if (hash_function.empty()) return std::string(org_id) + key_id;
  boost::json::object o;
  o["org"] = org_id;
  o["id"] = key_id;
  o["h"] = hash_function;
  return base64_encode(boost::json::serialize(o));
}

namespace {
// The value of a top-level string field in the flat JSON object Tyk's tokens hold. Tokens are
// parsed on every request, so this avoids building a JSON document; anything unexpected (escapes,
// nesting) makes it give up, and the token is then treated as not being a JSON token.
bool flat_string_field(std::string_view json, std::string_view key, std::string* out) {
  std::string pat = "\"";
  pat.append(key);
  pat += "\":";
  size_t pos = json.find(pat);
  if (pos == std::string_view::npos) return false;
  pos += pat.size();
  while (pos < json.size() && json[pos] == ' ') ++pos;
  if (pos >= json.size() || json[pos] != '"') return false;
  size_t end = json.find('"', pos + 1);
  if (end == std::string_view::npos) return false;
  std::string_view v = json.substr(pos + 1, end - pos - 1);
  if (v.find('\\') != std::string_view::npos) return false;
  out->assign(v);
  return true;
}

KeyHash algo_for(const TokenInfo& info, const KeyHashing& h) {
  if (info.json && !info.algo.empty()) {
    if (auto a = parse_key_hash(info.algo)) return *a;
  }
  return h.function;
}
}  // namespace

TokenInfo parse_token(std::string_view token) {
  TokenInfo t;
  if (token.size() < 8 || token.substr(0, 2) != "ey") return t;
  auto raw = base64_decode(token);
  if (!raw || raw->size() < 2 || raw->front() != '{' || raw->back() != '}') return t;
  if (!flat_string_field(*raw, "h", &t.algo)) return t;
  flat_string_field(*raw, "org", &t.org);
  flat_string_field(*raw, "id", &t.id);
  t.json = true;
  return t;
}

std::string storage_id(std::string_view token, const KeyHashing& h) {
  if (!h.enabled) return std::string(token);
  return hash_key(token, algo_for(parse_token(token), h));
}

std::vector<std::string> lookup_ids(std::string_view token, std::string_view org_id,
                                    std::string_view hash_function, const KeyHashing& h) {
  std::vector<std::string> out;
  auto info = parse_token(token);
  out.push_back(h.enabled ? hash_key(token, algo_for(info, h)) : std::string(token));
  if (!info.json && !hash_function.empty()) {
    // A custom key presented by its raw id: stored under the token made from it.
    out.push_back(storage_id(generate_token(org_id, token, hash_function), h));
  }
  if (h.enabled) {
    for (auto f : h.fallbacks) out.push_back(hash_key(token, f));
  }
  return out;
}

}  // namespace gh::auth
