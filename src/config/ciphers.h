// Go crypto/tls cipher-suite names (as Tyk's ssl_ciphers takes them) mapped to OpenSSL names.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gh::config {

struct CipherMapping {
  std::string tls12;  // OpenSSL cipher list for TLS 1.2 and below (SSL_CTX_set_cipher_list)
  std::string tls13;  // OpenSSL TLS 1.3 suites (SSL_CTX_set_ciphersuites), empty = default
};

// Returns the OpenSSL name for one Go name, or nullopt when the name is unknown.
std::optional<std::string> openssl_cipher_name(std::string_view go_name);
// True for TLS 1.3 suite names (TLS_AES_128_GCM_SHA256 ...).
bool is_tls13_suite(std::string_view go_name);
// Maps a whole list; throws nothing, returns the first unknown name in *unknown.
std::optional<CipherMapping> map_ciphers(const std::vector<std::string>& go_names,
                                         std::string* unknown);
// Gatehouse's default TLS 1.2 list: ECDHE with AEAD ciphers only.
const char* default_tls12_ciphers();

}  // namespace gh::config
