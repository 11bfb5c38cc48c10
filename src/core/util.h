// Small helpers shared by every layer: string case rules, constant-time comparison, hashing,
// random identifiers, file I/O.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gh {

// Eight bytes at `p` as one little-endian word, whatever the machine's byte order (the first
// byte is the lowest), for code that scans text a word at a time.
inline uint64_t load8_le(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}
// ASCII case-insensitive comparison of `n` bytes at `a` and `b`.
bool iequals_n(const char* a, const char* b, size_t n);
// ASCII case-insensitive equality. Inline so that the common mismatch, a different length, costs
// no call (header names are compared many times per request).
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && iequals_n(a.data(), b.data(), a.size());
}
std::string to_lower(std::string_view s);
std::string_view trim(std::string_view s);
std::vector<std::string_view> split(std::string_view s, char sep);

// Compares two secrets in time independent of where they differ and of their lengths
// (both sides are reduced to SHA-256 digests first, then compared with CRYPTO_memcmp).
bool secret_equals(std::string_view a, std::string_view b);

std::string sha256_hex(std::string_view data);
std::string hex_encode(const unsigned char* data, size_t len);
// `n` random bytes from the OpenSSL CSPRNG, hex-encoded (2n characters).
std::string random_hex(size_t n);

std::optional<std::string> read_file(const std::string& path);
// Writes atomically: temporary file in the same folder, fsync, rename, fsync of the folder.
bool write_file_atomic(const std::string& path, std::string_view data, std::string* err);

// Value of a hex digit, or -1.
int hex_value(char c);
// Decodes %XX sequences (malformed ones are kept as they are); '+' becomes a space when asked
// (query strings), never in paths.
std::string percent_decode(std::string_view s, bool plus_as_space);

// Parses a non-negative decimal integer with no sign, no spaces and no overflow.
std::optional<uint64_t> parse_u64(std::string_view s);

}  // namespace gh
