#include "admin/certs_api.h"

#include <openssl/x509.h>

#include <boost/json.hpp>
#include <chrono>
#include <ctime>

#include "admin/keys_api.h"
#include "core/log.h"
#include "core/util.h"
#include "store/keyspace.h"
#include "tls/cert_store.h"

namespace gh::admin {

namespace json = boost::json;
using boost::asio::awaitable;

namespace {

AdminResult err(int status, std::string_view msg) { return error_reply(status, msg); }

std::string rfc3339(int64_t t) {
  if (t == 0) return "0001-01-01T00:00:00Z";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A distinguished name the way Tyk shows it (Go's pkix.Name, field names included).
json::object pkix_name(X509_NAME* n) {
  json::object o;
  json::array names;
  auto list = [&](int nid) {
    json::array a;
    for (int i = -1; (i = X509_NAME_get_index_by_NID(n, nid, i)) >= 0;) {
      auto* d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
      a.emplace_back(json::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(d)),
                                       static_cast<size_t>(ASN1_STRING_length(d))));
    }
    return a.empty() ? json::value(nullptr) : json::value(std::move(a));
  };
  o["Country"] = list(NID_countryName);
  o["Organization"] = list(NID_organizationName);
  o["OrganizationalUnit"] = list(NID_organizationalUnitName);
  o["Locality"] = list(NID_localityName);
  o["Province"] = list(NID_stateOrProvinceName);
  o["StreetAddress"] = list(NID_streetAddress);
  o["PostalCode"] = list(NID_postalCode);
  auto first = [&](int nid) -> std::string {
    int i = X509_NAME_get_index_by_NID(n, nid, -1);
    if (i < 0) return {};
    auto* d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(d)),
                       static_cast<size_t>(ASN1_STRING_length(d)));
  };
  o["SerialNumber"] = first(NID_serialNumber);
  o["CommonName"] = first(NID_commonName);
  for (int i = 0; i < X509_NAME_entry_count(n); ++i) {
    auto* e = X509_NAME_get_entry(n, i);
    char oid[128];
    OBJ_obj2txt(oid, sizeof oid, X509_NAME_ENTRY_get_object(e), 1);
    json::array type;
    for (auto part : split(oid, '.')) {
      if (auto v = parse_u64(part)) type.emplace_back(*v);
    }
    auto* d = X509_NAME_ENTRY_get_data(e);
    json::object entry;
    entry["Type"] = std::move(type);
    entry["Value"] = json::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(d)),
                                       static_cast<size_t>(ASN1_STRING_length(d)));
    names.push_back(std::move(entry));
  }
  o["Names"] = names.empty() ? json::value(nullptr) : json::value(std::move(names));
  o["ExtraNames"] = nullptr;
  return o;
}

json::object public_key_name(const std::string& fingerprint) {
  json::object o;
  for (const char* f : {"Country", "Organization", "OrganizationalUnit", "Locality", "Province",
                        "StreetAddress", "PostalCode"})
    o[f] = nullptr;
  o["SerialNumber"] = "";
  o["CommonName"] = "";
  o["Names"] = nullptr;
  o["ExtraNames"] = nullptr;
  if (!fingerprint.empty()) o["CommonName"] = "Public Key: " + fingerprint;
  return o;
}

std::string cn_of(X509_NAME* n) {
  int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
  if (i < 0) return {};
  auto* d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(d)),
                     static_cast<size_t>(ASN1_STRING_length(d)));
}

json::value dns_array(const std::vector<std::string>& names) {
  if (names.empty()) return nullptr;
  json::array a;
  for (const auto& d : names) a.emplace_back(d);
  return a;
}

// The org a listed id belongs to: `org` followed by exactly 64 hex digits.
bool id_of_org(std::string_view id, std::string_view org) {
  if (id.size() != org.size() + 64 || id.substr(0, org.size()) != org) return false;
  for (char c : id.substr(org.size()))
    if (hex_value(c) < 0) return false;
  return true;
}

}  // namespace

CertsApi::CertsApi(const config::GatewayConfig& cfg, store::Store& store)
    : cfg_(cfg), store_(store) {}

const std::string& CertsApi::sealing_secret(const config::GatewayConfig& cfg) {
  return cfg.security.private_certificate_encoding_secret.empty()
             ? cfg.secret
             : cfg.security.private_certificate_encoding_secret;
}

awaitable<AdminResult> CertsApi::handle(const AdminRequest& req) {
  std::string_view p = req.path;
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  std::string_view id = p.size() > 10 ? p.substr(11) : std::string_view();  // after /tyk/certs/
  if (id.find('/') != std::string_view::npos) co_return err(404, "Not found");
  if (req.method == "POST") {
    AdminResult r = co_await add(req);
    co_return r;
  }
  if (req.method == "GET") {
    if (id.empty()) {
      AdminResult r = co_await list(req);
      co_return r;
    }
    AdminResult r = co_await get(id);
    co_return r;
  }
  if (req.method == "DELETE" && !id.empty()) {
    bool present = false;
    std::string org = query_param(req.query, "org_id", &present);
    (void)org;
    std::string cid(id);
    co_await store_.del(store::cert_key(cid));
    // Keys authenticated by this certificate stop working at once, here and on every gateway
    // sharing the store (their workers remember which certificates are present).
    key_epoch().fetch_add(1, std::memory_order_acq_rel);
    co_await store_.announce_key_change();
    log::info("certificate removed", {{"cert_id", cid}});
    json::object o;
    o["status"] = "ok";
    o["message"] = "removed";
    co_return json_value_reply(200, o);
  }
  co_return err(405, "Method not supported");
}

awaitable<AdminResult> CertsApi::add(const AdminRequest& req) {
  const char* kNotPem = "Failed to decode certificate. It should be PEM encoded.";
  std::string org = query_param(req.query, "org_id");
  auto parsed = tls::parse_pem(req.body);
  if (!parsed) co_return err(403, kNotPem);
  auto& b = parsed.value();
  if (b.public_key && !b.certs.empty())
    co_return err(403, "Public keys can't be combined with certificates");
  if (b.private_keys.size() > 1) co_return err(403, "Found multiple private keys");
  std::string id;
  if (b.public_key) {
    if (!b.private_keys.empty()) co_return err(403, kNotPem);
    id = tls::describe_public_key(b.public_key.get(), org).id;
  } else {
    if (b.certs.empty()) co_return err(403, kNotPem);
    for (const auto& c : b.certs) {
      if (X509_cmp_current_time(X509_get0_notAfter(c.get())) < 0)
        co_return err(403, "certificate is expired");
    }
    if (!b.private_keys.empty() &&
        X509_check_private_key(b.certs.front().get(), b.private_keys.front().get()) != 1)
      co_return err(403, "tls: private key does not match public key");
    id = org + tls::cert_der_sha256(b.certs.front().get());
  }
  if (co_await store_.get(store::cert_key(id)))
    co_return err(403, "Certificate with " + id + " id already exists");
  if (!co_await store_.set(store::cert_key(id), tls::seal(b, sealing_secret(cfg_)), 0))
    co_return err(500, "Failed to store the certificate");
  log::info("certificate added", {{"cert_id", id}, {"has_private", !b.private_keys.empty()}});
  json::object o;
  o["id"] = id;
  o["status"] = "ok";
  o["message"] = "Certificate added";
  co_return json_value_reply(200, o);
}

awaitable<AdminResult> CertsApi::list(const AdminRequest& req) {
  std::string org = query_param(req.query, "org_id");
  bool detailed = query_param(req.query, "mode") == "detailed";
  auto names = co_await store_.scan("cert-raw-" + org);
  json::array ids, details;
  for (const auto& n : names) {
    std::string id = n.substr(9);
    if (!id_of_org(id, org)) continue;
    if (!detailed) {
      ids.emplace_back(id);
      continue;
    }
    auto v = co_await store_.get(n);
    if (!v) continue;
    auto b = tls::unseal(*v, sealing_secret(cfg_));
    if (!b) continue;  // sealed under another secret: not ours to show
    json::object o;
    o["id"] = id;
    if (b->public_key) {
      auto m = tls::describe_public_key(b->public_key.get(), org);
      o["issuer_cn"] = "";
      o["subject_cn"] = "Public Key: " + m.fingerprint;
      o["dns_names"] = nullptr;
      o["has_private"] = false;
      o["not_before"] = rfc3339(0);
      o["not_after"] = rfc3339(0);
      o["is_ca"] = false;
    } else if (!b->certs.empty()) {
      X509* c = b->certs.front().get();
      auto m = tls::describe(c, org, !b->private_keys.empty());
      o["issuer_cn"] = cn_of(X509_get_issuer_name(c));
      o["subject_cn"] = cn_of(X509_get_subject_name(c));
      o["dns_names"] = dns_array(m.dns_names);
      o["has_private"] = m.has_private;
      o["not_before"] = rfc3339(m.not_before);
      o["not_after"] = rfc3339(m.not_after);
      o["is_ca"] = m.is_ca;
    }
    details.push_back(std::move(o));
  }
  json::object out;
  if (detailed)
    out["certs"] = std::move(details);
  else
    out["certs"] = ids.empty() ? json::value(nullptr) : json::value(std::move(ids));
  co_return json_value_reply(200, out);
}

awaitable<AdminResult> CertsApi::get(std::string_view ids_text) {
  auto ids = split(ids_text, ',');
  json::array all;
  for (auto idv : ids) {
    std::string id(idv);
    std::optional<tls::PemBundle> b;
    if (!id.empty()) {
      if (auto v = co_await store_.get(store::cert_key(id))) {
        auto u = tls::unseal(*v, sealing_secret(cfg_));
        if (u) b = std::move(u.value());
      }
    }
    if (!b || (b->certs.empty() && !b->public_key)) {
      all.emplace_back(nullptr);
      continue;
    }
    json::object o;
    o["id"] = id;
    if (b->public_key) {
      auto m = tls::describe_public_key(b->public_key.get(), "");
      o["fingerprint"] = "";
      o["has_private"] = false;
      o["issuer"] = public_key_name("");
      o["subject"] = public_key_name(m.fingerprint);
      o["not_before"] = rfc3339(0);
      o["not_after"] = rfc3339(0);
      o["is_ca"] = false;
    } else {
      X509* c = b->certs.front().get();
      auto m = tls::describe(c, "", !b->private_keys.empty());
      o["fingerprint"] = m.fingerprint;
      o["has_private"] = m.has_private;
      o["issuer"] = pkix_name(X509_get_issuer_name(c));
      o["subject"] = pkix_name(X509_get_subject_name(c));
      o["not_before"] = rfc3339(m.not_before);
      o["not_after"] = rfc3339(m.not_after);
      if (!m.dns_names.empty()) o["dns_names"] = dns_array(m.dns_names);
      o["is_ca"] = m.is_ca;
    }
    all.push_back(std::move(o));
  }
  if (ids.size() == 1) {
    if (all[0].is_null()) co_return err(404, "Certificate with given SHA256 fingerprint not found");
    co_return json_value_reply(200, all[0]);
  }
  co_return json_value_reply(200, all);
}

}  // namespace gh::admin
