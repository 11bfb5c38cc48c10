// The certificate store's control API (/tyk/certs...), on the Store: certificates (with their
// chain and private key) and bare public keys, under Tyk's ids (org id + SHA-256) and storage
// names (cert-raw-<id>). Private keys are sealed before they reach the store.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "admin/control_api.h"
#include "store/store.h"

namespace gh::admin {

class CertsApi {
 public:
  CertsApi(const config::GatewayConfig& cfg, store::Store& store);

  static bool owns(std::string_view path) {
    return path == "/tyk/certs" || path.rfind("/tyk/certs/", 0) == 0;
  }
  // `req` must already have passed the control API's secret check.
  boost::asio::awaitable<AdminResult> handle(const AdminRequest& req);

  // The secret private keys are sealed with (security.private_certificate_encoding_secret,
  // else the control API secret).
  static const std::string& sealing_secret(const config::GatewayConfig& cfg);

 private:
  boost::asio::awaitable<AdminResult> add(const AdminRequest& req);
  boost::asio::awaitable<AdminResult> list(const AdminRequest& req);
  boost::asio::awaitable<AdminResult> get(std::string_view ids);

  const config::GatewayConfig& cfg_;
  store::Store& store_;
};

}  // namespace gh::admin
