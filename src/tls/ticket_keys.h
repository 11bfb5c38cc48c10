// Session-ticket keys kept in memory only, rotated every few hours; the previous key still
// decrypts (and renews) tickets so that rotation does not force full handshakes.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>

namespace gh::tls {

// Installs the shared key callback on `ctx`.
void install_ticket_keys(SSL_CTX* ctx);
// How often a new ticket key is made (the previous one still decrypts until the next rotation).
void set_ticket_rotation(int64_t seconds);

}  // namespace gh::tls
