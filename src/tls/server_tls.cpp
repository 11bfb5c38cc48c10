#include "tls/server_tls.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>

#include "config/ciphers.h"
#include "core/log.h"
#include "core/util.h"
#include "tls/ticket_keys.h"
#include "tls/versions.h"

namespace gh::tls {

using config::ConfigError;

namespace {

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// ALPN: h2 (preferred) only with http_server_options.enable_http2 (`arg` non-null), and
// http/1.1.
int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  static const unsigned char kH2[] = "\x02h2\x08http/1.1";
  static const unsigned char kH1[] = "\x08http/1.1";
  unsigned char* o = nullptr;
  int r = arg ? SSL_select_next_proto(&o, outlen, kH2, sizeof kH2 - 1, in, inlen)
              : SSL_select_next_proto(&o, outlen, kH1, sizeof kH1 - 1, in, inlen);
  if (r != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

// --- session tickets -----------------------------------------------------------------------
struct TicketKey {
  unsigned char name[16];
  unsigned char aes[32];
  unsigned char hmac[32];
};
struct TicketRing {
  std::mutex mu;
  TicketKey current{}, previous{};
  bool has_previous = false;
  std::chrono::steady_clock::time_point rotated{};
  bool init = false;
};
TicketRing& ring() {
  static TicketRing r;
  return r;
}
std::atomic<int64_t> g_ticket_rotation_s{6 * 3600};

void fresh(TicketKey& k) {
  if (RAND_bytes(k.name, sizeof k.name) != 1 || RAND_bytes(k.aes, sizeof k.aes) != 1 ||
      RAND_bytes(k.hmac, sizeof k.hmac) != 1)
    std::abort();
}

int ticket_cb(SSL*, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
              EVP_CIPHER_CTX* cctx, EVP_MAC_CTX* hctx, int enc) {
  auto& r = ring();
  TicketKey key;
  int ret = 1;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    auto now = std::chrono::steady_clock::now();
    const auto period = std::chrono::seconds(g_ticket_rotation_s.load(std::memory_order_relaxed));
    if (!r.init || now - r.rotated >= period) {
      // Rotation is lazy; after a quiet spell of two periods or more the current key is too old
      // to be kept as the previous one as well.
      if (r.init) {
        r.previous = r.current;
        r.has_previous = now - r.rotated < 2 * period;
      }
      fresh(r.current);
      r.rotated = now;
      r.init = true;
    }
    if (enc) {
      key = r.current;
    } else if (std::memcmp(key_name, r.current.name, 16) == 0) {
      key = r.current;
    } else if (r.has_previous && std::memcmp(key_name, r.previous.name, 16) == 0) {
      key = r.previous;
      ret = 2;  // valid, but issue a ticket under the current key
    } else {
      return 0;  // unknown key: full handshake
    }
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac, sizeof key.hmac),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  if (enc) {
    std::memcpy(key_name, key.name, 16);
    if (RAND_bytes(iv, 16) != 1) return -1;
    if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key.aes, iv) != 1) return -1;
  } else {
    if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key.aes, iv) != 1) return -1;
  }
  if (EVP_MAC_CTX_set_params(hctx, params) != 1) return -1;
  OPENSSL_cleanse(&key, sizeof key);
  return ret;
}

bool name_matches(const std::string& pattern, const std::string& host) {
  if (pattern == host) return true;
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    auto dot = host.find('.');
    return dot != std::string::npos && host.substr(dot) == pattern.substr(1);
  }
  return false;
}

}  // namespace

void install_ticket_keys(SSL_CTX* ctx) { SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb); }
void set_ticket_rotation(int64_t seconds) {
  g_ticket_rotation_s.store(seconds > 0 ? seconds : 1, std::memory_order_relaxed);
}

SslCtxPtr ServerTls::make_ctx() const {
  const auto& cfg = cfg_;
  const auto& h = cfg.http_server_options;
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) throw ConfigError("cannot create a TLS context: " + openssl_error());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, openssl_version(h.min_version));
  SSL_CTX_set_max_proto_version(c, openssl_version(h.max_version));
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                             SSL_OP_NO_COMPRESSION | SSL_OP_SINGLE_ECDH_USE);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  std::string list =
      h.openssl_tls12_ciphers.empty() ? config::default_tls12_ciphers() : h.openssl_tls12_ciphers;
  if (h.min_version < 771) {
    // Legacy versions were asked for explicitly; they need CBC suites and security level 0.
    if (h.openssl_tls12_ciphers.empty()) list = "DEFAULT";
    list += ":@SECLEVEL=0";
  }
  if (SSL_CTX_set_cipher_list(c, list.c_str()) != 1)
    throw ConfigError(cfg.file + ": field \"http_server_options.ssl_ciphers\": no usable cipher");
  if (!h.openssl_tls13_suites.empty() &&
      SSL_CTX_set_ciphersuites(c, h.openssl_tls13_suites.c_str()) != 1)
    throw ConfigError(cfg.file + ": field \"http_server_options.ssl_ciphers\": bad TLS 1.3 suite");
  static char h2_on;
  SSL_CTX_set_alpn_select_cb(c, alpn_select,
                             cfg.http_server_options.enable_http2 ? &h2_on : nullptr);
  SSL_CTX_set_tlsext_servername_callback(c, on_servername);
  SSL_CTX_set_tlsext_servername_arg(c, const_cast<ServerTls*>(this));
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
  static const unsigned char kSidCtx[] = "gatehouse";
  SSL_CTX_set_session_id_context(c, kSidCtx, sizeof kSidCtx - 1);
  install_ticket_keys(c);
  // One TLS 1.3 ticket per full handshake (OpenSSL sends two by default). Making a stateless
  // ticket re-parses the whole session, client certificate included, so each ticket costs about
  // a tenth of an mTLS handshake; clients resume one connection per ticket, and HTTP/1.1 and h2
  // clients keep one connection per origin.
  SSL_CTX_set_num_tickets(c, 1);
  set_ticket_rotation(cfg.gatehouse.ticket_key_rotation);
  if (required_cas_) {
    X509_STORE* store = SSL_CTX_get_cert_store(c);
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    for (const auto& b : *required_cas_) {
      for (const auto& cert : b.certs) {
        X509_STORE_add_cert(store, cert.get());
        if (!h.skip_client_ca_announcement)
          sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(cert.get())));
      }
    }
    SSL_CTX_set_client_CA_list(c, names);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    // Sessions resumed from the API listener must not skip the certificate.
    static const unsigned char kControlSid[] = "gatehouse-control";
    SSL_CTX_set_session_id_context(c, kControlSid, sizeof kControlSid - 1);
  }
  return ctx;
}

ServerTls::ServerTls(const config::GatewayConfig& cfg, const std::vector<ServerCert>& certs)
    : cfg_(cfg), announce_cas_(!cfg.http_server_options.skip_client_ca_announcement) {
  set_certificates(certs);
}

ServerTls::ServerTls(const config::GatewayConfig& cfg, const std::vector<ServerCert>& certs,
                     const std::vector<PemBundle>& client_cas)
    : cfg_(cfg), announce_cas_(!cfg.http_server_options.skip_client_ca_announcement) {
  for (const auto& b : client_cas) {
    PemBundle copy;
    for (const auto& c : b.certs) {
      X509_up_ref(c.get());
      copy.certs.emplace_back(c.get());
    }
    owned_cas_.push_back(std::move(copy));
  }
  required_cas_ = &owned_cas_;
  requires_client_cert_ = true;
  set_certificates(certs);
}

std::shared_ptr<const ServerTls::CertSet> ServerTls::build(
    const std::vector<ServerCert>& certs) const {
  auto set = std::make_shared<CertSet>();
  for (const auto& sc : certs) {
    auto fail = [&](const std::string& why) {
      return ConfigError(cfg_.file + ": field \"" + sc.field + "\": " + why);
    };
    const auto& b = sc.bundle;
    if (b.certs.empty()) throw fail("no certificate");
    if (b.private_keys.size() != 1) throw fail("needs exactly one private key");
    Entry e;
    e.domain = to_lower(sc.domain);
    e.ctx = make_ctx();
    SSL_CTX* c = e.ctx.get();
    if (SSL_CTX_use_certificate(c, b.certs[0].get()) != 1)
      throw fail("cannot use the certificate: " + openssl_error());
    for (size_t i = 1; i < b.certs.size(); ++i) {
      if (SSL_CTX_add1_chain_cert(c, b.certs[i].get()) != 1)
        throw fail("cannot use the chain: " + openssl_error());
    }
    if (SSL_CTX_use_PrivateKey(c, b.private_keys[0].get()) != 1 ||
        SSL_CTX_check_private_key(c) != 1)
      throw fail("private key does not match the certificate");
    e.leaf = SSL_CTX_get0_certificate(c);
    (e.domain.empty() ? set->generic : set->by_domain).push_back(std::move(e));
  }
  if (set->by_domain.empty() && set->generic.empty())
    throw ConfigError(cfg_.file + ": field \"http_server_options.use_ssl\": no certificate");
  return set;
}

void ServerTls::set_certificates(const std::vector<ServerCert>& certs) {
  auto set = build(certs);
  std::lock_guard<std::mutex> lock(mu_);
  certs_ = std::move(set);
}

std::shared_ptr<const ServerTls::CertSet> ServerTls::certs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return certs_;
}

SSL_CTX* ServerTls::CertSet::choose(const char* sni) const {
  if (sni && *sni) {
    std::string host = to_lower(sni);
    for (const auto& e : by_domain) {
      if (name_matches(e.domain, host)) return e.ctx.get();
    }
    for (const auto& e : generic) {
      if (e.leaf && X509_check_host(e.leaf, host.data(), host.size(), 0, nullptr) == 1)
        return e.ctx.get();
    }
  }
  // Otherwise the first generic certificate, else the first configured one.
  if (!generic.empty()) return generic.front().ctx.get();
  return by_domain.front().ctx.get();
}

std::string ServerTls::describe_choice(const std::string& sni) const {
  auto set = certs();  // held while its context is read
  SSL_CTX* c = set->choose(sni.c_str());
  X509* leaf = SSL_CTX_get0_certificate(c);
  char buf[256] = {0};
  X509_NAME_oneline(X509_get_subject_name(leaf), buf, sizeof buf);
  return buf;
}

int ServerTls::on_servername(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const ServerTls*>(arg);
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  auto set = self->certs();  // held until the connection has its own reference
  SSL_CTX* want = set->choose(sni);
  if (want != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, want);
  self->apply_demand(ssl, sni);
  return SSL_TLSEXT_ERR_OK;
}

namespace {
// The handshake takes any certificate the client offers; the request is judged against the
// allow list of the API it reaches (so one listener serves several lists, and the answer is a
// readable 403 rather than a handshake alert).
int accept_offered(int, X509_STORE_CTX*) { return 1; }
}  // namespace

void ServerTls::set_client_demand(std::shared_ptr<const ClientCertDemand> d) {
  std::lock_guard<std::mutex> lock(mu_);
  demand_ = std::move(d);
}

void ServerTls::apply_demand(SSL* ssl, const char* sni) const {
  if (requires_client_cert_) return;
  std::shared_ptr<const ClientCertDemand> d;
  {
    std::lock_guard<std::mutex> lock(mu_);
    d = demand_;
  }
  if (!d || !d->wants(sni)) {
    SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
    return;
  }
  SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, accept_offered);
  STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
  if (announce_cas_) {
    for (const auto& c : d->ca_names_from) {
      X509_NAME* n = X509_check_ca(c.get()) > 0 ? X509_get_subject_name(c.get())
                                                : X509_get_issuer_name(c.get());
      bool have = false;
      for (int i = 0; i < sk_X509_NAME_num(names) && !have; ++i)
        have = X509_NAME_cmp(sk_X509_NAME_value(names, i), n) == 0;
      if (!have) sk_X509_NAME_push(names, X509_NAME_dup(n));
    }
  }
  SSL_set_client_CA_list(ssl, names);  // empty with skip_client_ca_announcement
}

SSL* ServerTls::new_ssl() const {
  auto set = certs();
  SSL* ssl = SSL_new(set->choose(nullptr));
  if (ssl) apply_demand(ssl, nullptr);  // a client that sends no server name
  return ssl;
}

}  // namespace gh::tls
