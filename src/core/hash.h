// Key hashing as Tyk lays keys out in storage: murmur64 (h1 of MurmurHash3 x64_128, seed 0,
// big-endian hex), murmur128 (h1 then h2), sha256, and murmur32 (MurmurHash3 x86_32), which is
// only for reading keys migrated from Tyk: it is too short to be a safe default.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gh {

uint32_t murmur3_32(std::string_view data, uint32_t seed = 0);
struct Hash128 {
  uint64_t h1, h2;
};
Hash128 murmur3_x64_128(std::string_view data, uint32_t seed = 0);

enum class KeyHash { kMurmur32, kMurmur64, kMurmur128, kSha256 };

std::optional<KeyHash> parse_key_hash(std::string_view name);
const char* key_hash_name(KeyHash h);
// Lower-case hex digest of `key` under `h` (8, 16, 32 or 64 characters).
std::string hash_key(std::string_view key, KeyHash h);
// The same into `out`, whose capacity is reused (the request path hashes every token).
void hash_key(std::string_view key, KeyHash h, std::string& out);

}  // namespace gh
