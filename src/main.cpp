// gatehouse: command line entry point.
//   gatehouse [--conf FILE | -c FILE]      run in the foreground (default ./tyk.conf)
//   gatehouse validate --conf FILE         check a config and its API definitions
//   gatehouse version
//   gatehouse cert fingerprint FILE        the id the certificate store gives a PEM file
//   gatehouse cert expiring [--days N]     certificates expiring within N days (default 30)
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "config/gateway_config.h"
#include "core/log.h"
#include "core/util.h"
#include "net/server.h"
#include "net/server_certs.h"
#include "proxy/snapshot.h"
#include "tls/server_tls.h"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: gatehouse [--conf FILE]\n"
               "       gatehouse validate --conf FILE\n"
               "       gatehouse version\n"
               "       gatehouse cert fingerprint FILE\n"
               "       gatehouse cert expiring [--days N] [--conf FILE]\n");
}

int validate(const std::string& conf) {
  auto cfg = gh::config::load_gateway_config(conf);
  if (cfg.http_server_options.use_ssl) {
    // Store ids are not checked here (the store is not opened to validate a file).
    std::vector<std::string> cert_problems, unused;
    auto certs = gh::net::server_certificates(cfg, nullptr, nullptr, &cert_problems, &unused);
    if (!cert_problems.empty())
      throw gh::config::ConfigError(cfg.file + ": " + cert_problems.front());
    if (!certs.empty()) gh::tls::ServerTls tls(cfg, certs);
  }
  std::vector<std::string> problems;
  auto snap = gh::proxy::build_snapshot(cfg.app_path, cfg.enable_custom_domains, 1, &problems,
                                        cfg.policies.policy_path, cfg.policies.policy_record_name);
  for (const auto& p : problems) std::fprintf(stderr, "invalid: %s\n", p.c_str());
  for (const auto& w : cfg.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  std::printf("%s: config OK; %zu API definitions loaded, %zu served, %zu problems\n", conf.c_str(),
              snap->apis.size(), snap->router.size(), problems.size());
  return problems.empty() ? 0 : 1;
}

int fingerprint(const std::string& file) {
  auto text = gh::read_file(file);
  if (!text) {
    std::fprintf(stderr, "%s: cannot read\n", file.c_str());
    return 1;
  }
  BIO* bio = BIO_new_mem_buf(text->data(), static_cast<int>(text->size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  std::string der;
  if (cert) {
    int len = i2d_X509(cert, nullptr);
    der.resize(static_cast<size_t>(len));
    auto* p = reinterpret_cast<unsigned char*>(der.data());
    i2d_X509(cert, &p);
    X509_free(cert);
  } else {
    BIO_free(bio);
    bio = BIO_new_mem_buf(text->data(), static_cast<int>(text->size()));
    EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    if (!key) {
      BIO_free(bio);
      std::fprintf(stderr, "%s: no certificate or public key in PEM form\n", file.c_str());
      return 1;
    }
    int len = i2d_PUBKEY(key, nullptr);
    der.resize(static_cast<size_t>(len));
    auto* p = reinterpret_cast<unsigned char*>(der.data());
    i2d_PUBKEY(key, &p);
    EVP_PKEY_free(key);
  }
  BIO_free(bio);
  std::printf("%s\n", gh::sha256_hex(der).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (const char* lvl = std::getenv("GATEHOUSE_LOG_LEVEL")) {
    std::string l = lvl;
    if (l == "debug") gh::log::set_level(gh::log::Level::kDebug);
    if (l == "warn") gh::log::set_level(gh::log::Level::kWarn);
    if (l == "error") gh::log::set_level(gh::log::Level::kError);
  }
  std::string conf = "./tyk.conf";
  std::string command = "run";
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--conf" || a == "-c" || a == "--config") {
      if (i + 1 >= args.size()) {
        usage();
        return 2;
      }
      conf = args[++i];
    } else if (a.rfind("--conf=", 0) == 0) {
      conf = a.substr(7);
    } else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else if (command == "run" && (a == "validate" || a == "version" || a == "cert")) {
      command = a;
    } else {
      rest.push_back(a);
    }
  }
  try {
    if (command == "version") {
      std::printf("gatehouse %s\n", GATEHOUSE_VERSION);
      return 0;
    }
    if (command == "cert") {
      if (rest.size() == 2 && rest[0] == "fingerprint") return fingerprint(rest[1]);
      if (!rest.empty() && rest[0] == "expiring") {
        int days = 30;
        if (rest.size() == 3 && rest[1] == "--days") {
          auto d = gh::parse_u64(rest[2]);
          if (!d || *d > 36500) {
            usage();
            return 2;
          }
          days = static_cast<int>(*d);
        } else if (rest.size() != 1) {
          usage();
          return 2;
        }
        auto cfg = gh::config::load_gateway_config(conf);
        return gh::net::print_expiring(cfg, days);
      }
      usage();
      return 2;
    }
    if (!rest.empty()) {
      usage();
      return 2;
    }
    if (command == "validate") return validate(conf);
    auto cfg = gh::config::load_gateway_config(conf);
    return gh::net::run(cfg);
  } catch (const gh::config::ConfigError& e) {
    std::fprintf(stderr, "gatehouse: config error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gatehouse: fatal: %s\n", e.what());
    return 1;
  }
}
