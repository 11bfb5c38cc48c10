#include "auth/token.h"

#include <openssl/evp.h>

#include <array>
#include <boost/json.hpp>
#include <cstdint>
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

namespace {
// Standard base64 digits; '=' reads as zero bits, as EVP_DecodeBlock reads it (base64_decode
// then drops the padding bytes); -1: not accepted.
constexpr std::array<int8_t, 256> kBase64Digits = [] {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 26; ++i) {
    t['A' + i] = static_cast<int8_t>(i);
    t['a' + i] = static_cast<int8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<int8_t>(52 + i);
  t['+'] = 62;
  t['/'] = 63;
  t['='] = 0;
  return t;
}();

// base64_decode into `out`, which has room for 3 * in.size() / 4 bytes; the decoded size, or
// nullopt when base64_decode refuses `in`. One pass, no allocation: tokens are decoded on every
// request.
std::optional<size_t> base64_decode_into(std::string_view in, char* out) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  char* o = out;
  for (size_t i = 0; i < in.size(); i += 4) {
    int a = kBase64Digits[p[i]], b = kBase64Digits[p[i + 1]], c = kBase64Digits[p[i + 2]],
        d = kBase64Digits[p[i + 3]];
    if ((a | b | c | d) < 0) return std::nullopt;
    uint32_t v = (static_cast<uint32_t>(a) << 18) | (static_cast<uint32_t>(b) << 12) |
                 (static_cast<uint32_t>(c) << 6) | static_cast<uint32_t>(d);
    *o++ = static_cast<char>(v >> 16);
    *o++ = static_cast<char>(v >> 8);
    *o++ = static_cast<char>(v);
  }
  size_t pad = 0;
  if (in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  return static_cast<size_t>(o - out) - pad;
}
}  // namespace

std::optional<std::string> base64_decode(std::string_view in) {
  std::string out(3 * in.size() / 4, '\0');
  auto n = base64_decode_into(in, out.data());
  if (!n) return std::nullopt;
  out.resize(*n);
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
std::optional<std::string_view> flat_string_field(std::string_view json, std::string_view key) {
  // The first `"key":`, found by its key (rarer in a token than the quote that opens it).
  size_t pos = 0;
  while (true) {
    pos = json.find(key, pos);
    if (pos == std::string_view::npos) return std::nullopt;
    if (pos > 0 && json[pos - 1] == '"' && json.substr(pos + key.size(), 2) == "\":") break;
    ++pos;
  }
  pos += key.size() + 2;
  while (pos < json.size() && json[pos] == ' ') ++pos;
  if (pos >= json.size() || json[pos] != '"') return std::nullopt;
  size_t end = json.find('"', pos + 1);
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view v = json.substr(pos + 1, end - pos - 1);
  if (v.find('\\') != std::string_view::npos) return std::nullopt;
  return v;
}

// Decodes a token that may be a JSON one and hands the decoded object to `f` (which must not
// keep it); false when it is not a JSON token's shape. Tokens of a usual size are decoded on the
// stack.
template <typename F>
bool with_json_token(std::string_view token, F&& f) {
  if (token.size() < 8 || token.substr(0, 2) != "ey") return false;
  constexpr size_t kStack = 768;
  char stack[kStack];
  std::string heap;
  char* buf = stack;
  if (3 * token.size() / 4 > kStack) {
    heap.resize(3 * token.size() / 4);
    buf = heap.data();
  }
  auto n = base64_decode_into(token, buf);
  if (!n || *n < 2 || buf[0] != '{' || buf[*n - 1] != '}') return false;
  return f(std::string_view(buf, *n));
}

// The algorithm a token is hashed with: the one a JSON token names, else the configured one.
KeyHash algo_for(std::string_view token, const KeyHashing& h) {
  KeyHash algo = h.function;
  with_json_token(token, [&](std::string_view raw) {
    auto name = flat_string_field(raw, "h");
    if (!name) return false;
    if (!name->empty()) {
      if (auto a = parse_key_hash(*name)) algo = *a;
    }
    return true;
  });
  return algo;
}

bool is_json_token(std::string_view token) {
  return with_json_token(
      token, [](std::string_view raw) { return flat_string_field(raw, "h").has_value(); });
}
}  // namespace

TokenInfo parse_token(std::string_view token) {
  TokenInfo t;
  with_json_token(token, [&](std::string_view raw) {
    auto algo = flat_string_field(raw, "h");
    if (!algo) return false;
    t.algo.assign(*algo);
    if (auto org = flat_string_field(raw, "org")) t.org.assign(*org);
    if (auto id = flat_string_field(raw, "id")) t.id.assign(*id);
    t.json = true;
    return true;
  });
  return t;
}

std::string storage_id(std::string_view token, const KeyHashing& h) {
  std::string out;
  first_lookup_id(token, h, out);
  return out;
}

void first_lookup_id(std::string_view token, const KeyHashing& h, std::string& out) {
  if (!h.enabled) {
    out.assign(token);
    return;
  }
  hash_key(token, algo_for(token, h), out);
}

std::vector<std::string> lookup_ids(std::string_view token, std::string_view org_id,
                                    std::string_view hash_function, const KeyHashing& h) {
  std::vector<std::string> out;
  out.push_back(storage_id(token, h));
  if (!hash_function.empty() && !is_json_token(token)) {
    // A custom key presented by its raw id: stored under the token made from it.
    out.push_back(storage_id(generate_token(org_id, token, hash_function), h));
  }
  if (h.enabled) {
    for (auto f : h.fallbacks) out.push_back(hash_key(token, f));
  }
  return out;
}

}  // namespace gh::auth
