// Tyk's TLS version numbers (769..772, as Go's crypto/tls constants) to OpenSSL's.
#pragma once

#include <openssl/ssl.h>

namespace gh::tls {

inline int openssl_version(int tyk) {
  switch (tyk) {
    case 769:
      return TLS1_VERSION;
    case 770:
      return TLS1_1_VERSION;
    case 771:
      return TLS1_2_VERSION;
    default:
      return TLS1_3_VERSION;
  }
}

}  // namespace gh::tls
