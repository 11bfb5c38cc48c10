// Key ids and tokens as Tyk makes them, and the storage hash of a token.
//
// With a hash function configured (Gatehouse's default: murmur64) a new key's token is
// base64std({"org":"<org>","id":"<id>","h":"<algo>"}); without one it is <org><id>. The store
// only ever sees hash(token) (with hash_keys, the default), never the token or the id in it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/hash.h"

namespace gh::auth {

std::string base64_encode(std::string_view in);
std::optional<std::string> base64_decode(std::string_view in);

// `id` empty = 32 random hex characters.
std::string generate_token(std::string_view org_id, std::string_view id,
                           std::string_view hash_function);

struct TokenInfo {
  bool json = false;  // a base64 JSON token
  std::string org, id, algo;
};
TokenInfo parse_token(std::string_view token);

struct KeyHashing {
  bool enabled = true;                    // hash_keys
  KeyHash function = KeyHash::kMurmur64;  // hash_key_function
  std::vector<KeyHash> fallbacks;         // hash_key_function_fallback (reading migrated keys)
};

// The storage id of a token: its hash (under the algorithm named in a JSON token, else the
// configured one), or the token itself when hashing is off.
std::string storage_id(std::string_view token, const KeyHashing& h);
// storage_id into `out` (its capacity reused): the first of lookup_ids, all the request path
// needs when the key is cached.
void first_lookup_id(std::string_view token, const KeyHashing& h, std::string& out);
// Every storage id a presented token may be stored under, most likely first: as given, then
// (for a raw custom id) the token made from it with `org_id`, then the fallback functions.
std::vector<std::string> lookup_ids(std::string_view token, std::string_view org_id,
                                    std::string_view hash_function, const KeyHashing& h);

}  // namespace gh::auth
