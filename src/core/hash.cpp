#include "core/hash.h"

#include <cstring>

#include "core/util.h"

namespace gh {

namespace {
inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}
template <typename T>
T load_le(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // x86-64 and aarch64 Linux are little-endian
  return v;
}
void append_hex_be(std::string& out, uint64_t v, int bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[16];
  for (int i = 0; i < 2 * bytes; ++i) buf[i] = kHex[(v >> (4 * (2 * bytes - 1 - i))) & 15];
  out.append(buf, static_cast<size_t>(2 * bytes));
}
}  // namespace

uint32_t murmur3_32(std::string_view data, uint32_t seed) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  const size_t nblocks = n / 4;
  constexpr uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
  uint32_t h1 = seed;
  for (size_t i = 0; i < nblocks; ++i) {
    uint32_t k1 = load_le<uint32_t>(p + 4 * i);
    k1 *= c1;
    k1 = rotl32(k1, 15);
    k1 *= c2;
    h1 ^= k1;
    h1 = rotl32(h1, 13);
    h1 = h1 * 5 + 0xe6546b64;
  }
  const unsigned char* tail = p + 4 * nblocks;
  uint32_t k1 = 0;
  switch (n & 3) {
    case 3:
      k1 ^= static_cast<uint32_t>(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      k1 ^= static_cast<uint32_t>(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      k1 ^= tail[0];
      k1 *= c1;
      k1 = rotl32(k1, 15);
      k1 *= c2;
      h1 ^= k1;
  }
  h1 ^= static_cast<uint32_t>(n);
  h1 ^= h1 >> 16;
  h1 *= 0x85ebca6b;
  h1 ^= h1 >> 13;
  h1 *= 0xc2b2ae35;
  h1 ^= h1 >> 16;
  return h1;
}

Hash128 murmur3_x64_128(std::string_view data, uint32_t seed) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  const size_t nblocks = n / 16;
  uint64_t h1 = seed, h2 = seed;
  constexpr uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
  for (size_t i = 0; i < nblocks; ++i) {
    uint64_t k1 = load_le<uint64_t>(p + 16 * i);
    uint64_t k2 = load_le<uint64_t>(p + 16 * i + 8);
    k1 *= c1;
    k1 = rotl64(k1, 31);
    k1 *= c2;
    h1 ^= k1;
    h1 = rotl64(h1, 27);
    h1 += h2;
    h1 = h1 * 5 + 0x52dce729;
    k2 *= c2;
    k2 = rotl64(k2, 33);
    k2 *= c1;
    h2 ^= k2;
    h2 = rotl64(h2, 31);
    h2 += h1;
    h2 = h2 * 5 + 0x38495ab5;
  }
  const unsigned char* tail = p + 16 * nblocks;
  uint64_t k1 = 0, k2 = 0;
  switch (n & 15) {
    case 15:
      k2 ^= static_cast<uint64_t>(tail[14]) << 48;
      [[fallthrough]];
    case 14:
      k2 ^= static_cast<uint64_t>(tail[13]) << 40;
      [[fallthrough]];
    case 13:
      k2 ^= static_cast<uint64_t>(tail[12]) << 32;
      [[fallthrough]];
    case 12:
      k2 ^= static_cast<uint64_t>(tail[11]) << 24;
      [[fallthrough]];
    case 11:
      k2 ^= static_cast<uint64_t>(tail[10]) << 16;
      [[fallthrough]];
    case 10:
      k2 ^= static_cast<uint64_t>(tail[9]) << 8;
      [[fallthrough]];
    case 9:
      k2 ^= static_cast<uint64_t>(tail[8]);
      k2 *= c2;
      k2 = rotl64(k2, 33);
      k2 *= c1;
      h2 ^= k2;
      [[fallthrough]];
    case 8:
      k1 ^= static_cast<uint64_t>(tail[7]) << 56;
      [[fallthrough]];
    case 7:
      k1 ^= static_cast<uint64_t>(tail[6]) << 48;
      [[fallthrough]];
    case 6:
      k1 ^= static_cast<uint64_t>(tail[5]) << 40;
      [[fallthrough]];
    case 5:
      k1 ^= static_cast<uint64_t>(tail[4]) << 32;
      [[fallthrough]];
    case 4:
      k1 ^= static_cast<uint64_t>(tail[3]) << 24;
      [[fallthrough]];
    case 3:
      k1 ^= static_cast<uint64_t>(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      k1 ^= static_cast<uint64_t>(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      k1 ^= static_cast<uint64_t>(tail[0]);
      k1 *= c1;
      k1 = rotl64(k1, 31);
      k1 *= c2;
      h1 ^= k1;
  }
  h1 ^= n;
  h2 ^= n;
  h1 += h2;
  h2 += h1;
  h1 = fmix64(h1);
  h2 = fmix64(h2);
  h1 += h2;
  h2 += h1;
  return Hash128{h1, h2};
}

std::optional<KeyHash> parse_key_hash(std::string_view name) {
  if (name == "murmur64" || name.empty()) return KeyHash::kMurmur64;
  if (name == "murmur128") return KeyHash::kMurmur128;
  if (name == "sha256") return KeyHash::kSha256;
  if (name == "murmur32") return KeyHash::kMurmur32;
  return std::nullopt;
}

const char* key_hash_name(KeyHash h) {
  switch (h) {
    case KeyHash::kMurmur32:
      return "murmur32";
    case KeyHash::kMurmur64:
      return "murmur64";
    case KeyHash::kMurmur128:
      return "murmur128";
    case KeyHash::kSha256:
      return "sha256";
  }
  return "murmur64";
}

void hash_key(std::string_view key, KeyHash h, std::string& out) {
  out.clear();
  switch (h) {
    case KeyHash::kMurmur32:
      append_hex_be(out, murmur3_32(key), 4);
      return;
    case KeyHash::kMurmur64:
      append_hex_be(out, murmur3_x64_128(key).h1, 8);
      return;
    case KeyHash::kMurmur128: {
      auto r = murmur3_x64_128(key);
      append_hex_be(out, r.h1, 8);
      append_hex_be(out, r.h2, 8);
      return;
    }
    case KeyHash::kSha256:
      out = sha256_hex(key);
      return;
  }
}

std::string hash_key(std::string_view key, KeyHash h) {
  std::string out;
  hash_key(key, h, out);
  return out;
}

}  // namespace gh
