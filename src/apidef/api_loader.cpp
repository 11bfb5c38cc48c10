#include "apidef/api_loader.h"

#include <dirent.h>

#include <algorithm>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cctype>
#include <optional>

#include "core/util.h"

namespace gh::apidef {

namespace json = boost::json;

namespace {

// Field access that turns a wrong type into a "malformed" error (Tyk answers those with
// "Request malformed", as its JSON decoder fails).
struct Malformed {
  std::string what;
};

const json::value* child(const json::value& v, std::string_view key) {
  const auto* o = v.if_object();
  if (!o) return nullptr;
  auto it = o->find(key);
  if (it == o->end() || it->value().is_null()) return nullptr;
  return &it->value();
}

const json::object* obj(const json::value& v, std::string_view key) {
  const auto* c = child(v, key);
  if (!c) return nullptr;
  if (!c->is_object()) throw Malformed{std::string(key) + ": expected an object"};
  return &c->as_object();
}

std::string str(const json::value& v, std::string_view key, std::string def = "") {
  const auto* c = child(v, key);
  if (!c) return def;
  if (!c->is_string()) throw Malformed{std::string(key) + ": expected a string"};
  return std::string(c->as_string());
}

bool boolean(const json::value& v, std::string_view key, bool def = false) {
  const auto* c = child(v, key);
  if (!c) return def;
  if (!c->is_bool()) throw Malformed{std::string(key) + ": expected a boolean"};
  return c->as_bool();
}

// A Go duration ("1s", "500ms", "1m30s", "2h") in seconds.
std::optional<double> go_duration_seconds(std::string_view d) {
  if (d.empty()) return std::nullopt;
  double total = 0;
  size_t i = 0;
  while (i < d.size()) {
    size_t j = i;
    while (j < d.size() && (std::isdigit(static_cast<unsigned char>(d[j])) || d[j] == '.')) ++j;
    if (j == i) return std::nullopt;
    double n = 0;
    try {
      n = std::stod(std::string(d.substr(i, j - i)));
    } catch (const std::exception&) {
      return std::nullopt;
    }
    size_t k = j;
    while (k < d.size() && std::isalpha(static_cast<unsigned char>(d[k]))) ++k;
    auto unit = d.substr(j, k - j);
    if (unit == "h") {
      total += n * 3600;
    } else if (unit == "m") {
      total += n * 60;
    } else if (unit == "s") {
      total += n;
    } else if (unit == "ms") {
      total += n / 1000;
    } else if (unit == "us" || unit == "µs") {
      total += n / 1e6;
    } else if (unit == "ns") {
      total += n / 1e9;
    } else {
      return std::nullopt;
    }
    i = k;
  }
  return total;
}

double number(const json::value& v, std::string_view key, double def = 0) {
  const auto* c = child(v, key);
  if (!c) return def;
  if (!c->is_number()) throw Malformed{std::string(key) + ": expected a number"};
  return c->to_number<double>();
}

// The objects of an array field (each checked to be an object).
std::vector<json::value> objects(const json::value& v, std::string_view key) {
  std::vector<json::value> out;
  const auto* c = child(v, key);
  if (!c) return out;
  if (!c->is_array()) throw Malformed{std::string(key) + ": expected an array"};
  for (const auto& i : c->as_array()) {
    if (!i.is_object()) throw Malformed{std::string(key) + ": expected an array of objects"};
    out.push_back(i);
  }
  return out;
}

std::map<std::string, std::string> string_map(const json::value& v, std::string_view key) {
  std::map<std::string, std::string> out;
  const auto* c = child(v, key);
  if (!c) return out;
  if (!c->is_object()) throw Malformed{std::string(key) + ": expected an object of strings"};
  for (const auto& kv : c->as_object()) {
    if (!kv.value().is_string())
      throw Malformed{std::string(key) + ": expected an object of strings"};
    out.emplace(std::string(kv.key()), std::string(kv.value().as_string()));
  }
  return out;
}

std::vector<std::string> strings(const json::value& v, std::string_view key) {
  std::vector<std::string> out;
  const auto* c = child(v, key);
  if (!c) return out;
  if (!c->is_array()) throw Malformed{std::string(key) + ": expected an array"};
  for (const auto& i : c->as_array()) {
    if (!i.is_string()) throw Malformed{std::string(key) + ": expected an array of strings"};
    out.emplace_back(i.as_string());
  }
  return out;
}

int tls_version_field(const json::value& v, std::string_view key) {
  const auto* c = child(v, key);
  if (!c) return 0;
  if (c->is_string()) {
    auto s = c->as_string();
    if (s == "1.2") return 771;
    if (s == "1.3") return 772;
    if (s == "1.0") return 769;
    if (s == "1.1") return 770;
    throw Malformed{std::string(key) + ": unknown TLS version"};
  }
  if (!c->is_number()) throw Malformed{std::string(key) + ": expected a number"};
  return static_cast<int>(c->to_number<double>());
}

Result<TargetUrl> parse_target(const std::string& url) {
  if (url.empty()) return Error{"target_url is empty"};
  auto r = boost::urls::parse_uri(url);
  if (!r) return Error{"target_url \"" + url + "\" is not a valid URL"};
  auto u = *r;
  TargetUrl t;
  t.scheme = to_lower(u.scheme());
  // h2c: HTTP/2 without TLS (prior knowledge), as Tyk spells it.
  if (t.scheme != "http" && t.scheme != "https" && t.scheme != "h2c")
    return Error{"target_url \"" + url + "\" must use http, https or h2c"};
  if (!u.has_authority() || u.host().empty())
    return Error{"target_url \"" + url + "\" has no host"};
  if (u.has_userinfo()) return Error{"target_url \"" + url + "\" must not contain credentials"};
  t.host = u.host_type() == boost::urls::host_type::ipv6 ? std::string(u.encoded_host_address())
                                                         : to_lower(std::string(u.encoded_host()));
  if (u.has_port()) {
    auto p = parse_u64(u.port());
    if (!p || *p == 0 || *p > 65535) return Error{"target_url \"" + url + "\" has a bad port"};
    t.port = static_cast<uint16_t>(*p);
  } else {
    t.port = t.tls() ? 443 : 80;
  }
  t.authority = std::string(u.encoded_host_and_port());
  t.path = std::string(u.encoded_path());
  // After an authority the path is empty or absolute; anything else would make a malformed
  // request line towards the upstream.
  if (!t.path.empty() && t.path[0] != '/')
    return Error{"target_url \"" + url + "\" has a malformed path"};
  while (!t.path.empty() && t.path.back() == '/') t.path.pop_back();
  if (u.has_query()) t.query = std::string(u.encoded_query());
  return t;
}

// Decides the authentication kind from Classic flags. No flag and not keyless = auth token.
AuthKind classic_auth(const json::value& d) {
  if (boolean(d, "use_keyless")) return AuthKind::kKeyless;
  int n = 0;
  AuthKind k = AuthKind::kAuthToken;
  auto mark = [&](bool on, AuthKind kind) {
    if (on) {
      ++n;
      k = kind;
    }
  };
  bool cert = false;
  if (const auto* ac = obj(d, "auth_configs")) {
    if (auto it = ac->find("authToken"); it != ac->end() && it->value().is_object())
      cert = boolean(it->value(), "use_certificate");
  }
  mark(boolean(d, "use_standard_auth") && !cert, AuthKind::kAuthToken);
  mark(cert, AuthKind::kCertificate);
  mark(boolean(d, "use_basic_auth"), AuthKind::kBasic);
  mark(boolean(d, "enable_jwt"), AuthKind::kJwt);
  mark(boolean(d, "use_oauth2"), AuthKind::kOAuth2);
  mark(boolean(d, "enable_signature_checking"), AuthKind::kHmac);
  mark(boolean(d, "use_openid"), AuthKind::kOpenId);
  if (n > 1) return AuthKind::kMulti;
  return k;
}

}  // namespace

std::string validation_message(std::string_view reason) {
  return "Validation of API Definition failed. Reason: " + std::string(reason) + ".";
}

bool valid_api_id(std::string_view id) {
  if (id.empty() || id.size() > 255 || id == "." || id == "..") return false;
  for (unsigned char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '~';
    if (!ok) return false;
  }
  return true;
}

std::string normalise_listen_path(std::string_view p) {
  std::string s(p);
  if (s.empty() || s[0] != '/') s.insert(s.begin(), '/');
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

bool is_oas_document(const json::value& doc) {
  const auto* o = doc.if_object();
  return o && o->contains("openapi") && o->contains("x-tyk-api-gateway");
}

Result<ApiSpec> load_classic(const json::value& d) {
  try {
    if (!d.is_object()) throw Malformed{"definition must be a JSON object"};
    ApiSpec s;
    s.api_id = str(d, "api_id");
    s.org_id = str(d, "org_id");
    s.name = str(d, "name");
    s.active = boolean(d, "active");
    s.auth = classic_auth(d);
    s.strip_auth_data = boolean(d, "strip_auth_data");
    if (const auto* ac = obj(d, "auth_configs")) {
      if (auto it = ac->find("authToken"); it != ac->end() && !it->value().is_null()) {
        const auto& at = it->value();
        if (!at.is_object()) throw Malformed{"auth_configs.authToken: expected an object"};
        s.token.header_name = str(at, "auth_header_name", "Authorization");
        if (s.token.header_name.empty()) s.token.header_name = "Authorization";
        s.token.use_header = !boolean(at, "disable_header");
        s.token.use_param = boolean(at, "use_param");
        s.token.param_name = str(at, "param_name");
        s.token.use_cookie = boolean(at, "use_cookie");
        s.token.cookie_name = str(at, "cookie_name");
        if (s.auth == AuthKind::kAuthToken && !s.token.use_header && !s.token.use_param &&
            !s.token.use_cookie)
          return Error{
              "all auth sources are disabled for authToken, at least one of header/cookie/query "
              "must be enabled"};
      }
    }
    const auto* proxy = obj(d, "proxy");
    if (!proxy) return Error{"proxy section is missing"};
    const json::value pv(*proxy);
    s.listen_path = normalise_listen_path(str(pv, "listen_path", "/"));
    s.strip_listen_path = boolean(pv, "strip_listen_path");
    s.preserve_host_header = boolean(pv, "preserve_host_header");
    auto t = parse_target(str(pv, "target_url"));
    if (!t) return Error{t.error()};
    s.target = std::move(t.value());
    if (const auto* tr = obj(pv, "transport")) {
      const json::value tv(*tr);
      s.transport.ssl_insecure_skip_verify = boolean(tv, "ssl_insecure_skip_verify");
      s.transport.ssl_ciphers = strings(tv, "ssl_ciphers");
      s.transport.ssl_min_version = tls_version_field(tv, "ssl_min_version");
      s.transport.ssl_max_version = tls_version_field(tv, "ssl_max_version");
      s.transport.ssl_force_common_name_check = boolean(tv, "ssl_force_common_name_check");
      s.transport.proxy_url = str(tv, "proxy_url");
    }
    s.domain = to_lower(str(d, "domain"));
    if (auto colon = s.domain.find(':'); colon != std::string::npos) s.domain.resize(colon);
    s.certificates = strings(d, "certificates");
    if (!boolean(d, "upstream_certificates_disabled"))
      s.upstream_certificates = string_map(d, "upstream_certificates");
    if (!boolean(d, "certificate_pinning_disabled"))
      s.pinned_public_keys = string_map(d, "pinned_public_keys");
    s.use_mutual_tls_auth = boolean(d, "use_mutual_tls_auth");
    s.client_certificates = strings(d, "client_certificates");
    if (const auto* g = obj(d, "global_rate_limit")) {
      const json::value gv(*g);
      s.global_rate = static_cast<int64_t>(number(gv, "rate"));
      s.global_per = number(gv, "per");
    }
    s.disable_rate_limit = boolean(d, "disable_rate_limit");
    s.disable_quota = boolean(d, "disable_quota");
    // Validation of fields Gatehouse does not serve yet would go here; unknown fields are kept.
    s.definition = d;
    return s;
  } catch (const Malformed& m) {
    return Error{"malformed: " + m.what};
  }
}

Result<ApiSpec> load_oas(const json::value& doc) {
  try {
    if (!doc.is_object()) throw Malformed{"definition must be a JSON object"};
    auto version = str(doc, "openapi");
    if (version.rfind("3.", 0) != 0) return Error{"openapi: must be an OpenAPI 3.x version"};
    const auto* ext = obj(doc, "x-tyk-api-gateway");
    if (!ext) return Error{"x-tyk-api-gateway: is required"};
    const json::value x(*ext);
    ApiSpec s;
    s.is_oas = true;
    const auto* info = obj(x, "info");
    if (!info) return Error{"x-tyk-api-gateway.info: is required"};
    const json::value iv(*info);
    s.api_id = str(iv, "id");
    s.org_id = str(iv, "orgId");
    s.name = str(iv, "name");
    if (const auto* st = obj(iv, "state"))
      s.active = boolean(json::value(*st), "active");
    else
      s.active = false;

    const auto* up = obj(x, "upstream");
    if (!up) return Error{"x-tyk-api-gateway.upstream: is required"};
    const json::value uv(*up);
    auto t = parse_target(str(uv, "url"));
    if (!t) return Error{t.error()};
    s.target = std::move(t.value());
    if (const auto* tt = obj(uv, "tlsTransport")) {
      const json::value tv(*tt);
      s.transport.ssl_insecure_skip_verify = boolean(tv, "insecureSkipVerify");
      s.transport.ssl_ciphers = strings(tv, "ciphers");
      s.transport.ssl_min_version = tls_version_field(tv, "minVersion");
      s.transport.ssl_max_version = tls_version_field(tv, "maxVersion");
      s.transport.ssl_force_common_name_check = boolean(tv, "forceCommonNameCheck");
    }
    if (const auto* px = obj(uv, "proxy")) {
      const json::value pv(*px);
      if (boolean(pv, "enabled")) s.transport.proxy_url = str(pv, "url");
    }
    if (const auto* mt = obj(uv, "mutualTLS")) {
      const json::value mv(*mt);
      if (boolean(mv, "enabled")) {
        for (const auto& e : objects(mv, "domainToCertificateMapping"))
          s.upstream_certificates[str(e, "domain")] = str(e, "certificate");
      }
    }
    if (const auto* cp = obj(uv, "certificatePinning")) {
      const json::value cv(*cp);
      if (boolean(cv, "enabled")) {
        for (const auto& e : objects(cv, "domainToPublicKeysMapping")) {
          std::string keys;
          for (const auto& k : strings(e, "publicKeys")) keys += (keys.empty() ? "" : ",") + k;
          s.pinned_public_keys[str(e, "domain")] = keys;
        }
      }
    }
    if (const auto* rl = obj(uv, "rateLimit")) {
      const json::value rv(*rl);
      if (boolean(rv, "enabled")) {
        auto per = go_duration_seconds(str(rv, "per"));
        if (!per || *per <= 0)
          return Error{
              "x-tyk-api-gateway.upstream.rateLimit.per: expected a duration such as "
              "\"1s\" or \"1m\""};
        s.global_rate = static_cast<int64_t>(number(rv, "rate"));
        s.global_per = *per;
      }
    }

    const auto* server = obj(x, "server");
    if (!server) return Error{"x-tyk-api-gateway.server: is required"};
    const json::value sv(*server);
    if (const auto* cc = obj(sv, "clientCertificates")) {
      const json::value cv(*cc);
      s.use_mutual_tls_auth = boolean(cv, "enabled");
      s.client_certificates = strings(cv, "allowlist");
    }
    const auto* lp = obj(sv, "listenPath");
    if (!lp) return Error{"x-tyk-api-gateway.server.listenPath: is required"};
    s.listen_path = normalise_listen_path(str(json::value(*lp), "value", "/"));
    s.strip_listen_path = boolean(json::value(*lp), "strip");
    if (const auto* cd = obj(sv, "customDomain")) {
      const json::value cv(*cd);
      if (boolean(cv, "enabled")) {
        s.domain = to_lower(str(cv, "name"));
        if (auto colon = s.domain.find(':'); colon != std::string::npos) s.domain.resize(colon);
        s.certificates = strings(cv, "certificates");
      }
    }

    s.auth = AuthKind::kKeyless;
    if (const auto* au = obj(sv, "authentication")) {
      const json::value av(*au);
      if (boolean(av, "enabled")) {
        s.strip_auth_data = boolean(av, "stripAuthorizationData");
        int n = 0;
        AuthKind k = AuthKind::kAuthToken;
        bool cert_auth = false;
        const json::object* comp = nullptr;
        const json::value* components = child(doc, "components");
        if (components) {
          if (!components->is_object()) throw Malformed{"components: expected an object"};
          comp = obj(*components, "securitySchemes");
        }
        if (const auto* schemes = obj(av, "securitySchemes")) {
          for (const auto& kv : *schemes) {
            if (!kv.value().is_object())
              throw Malformed{"securitySchemes." + std::string(kv.key()) + ": expected an object"};
            if (!boolean(kv.value(), "enabled")) continue;
            const json::value* def = nullptr;
            if (comp) {
              auto it = comp->find(kv.key());
              if (it != comp->end()) def = &it->value();
            }
            if (!def) {
              return Error{"security scheme \"" + std::string(kv.key()) +
                           "\" is not defined in components.securitySchemes"};
            }
            auto type = str(*def, "type");
            auto scheme = to_lower(str(*def, "scheme"));
            AuthKind kind;
            if (type == "apiKey") {
              // Tyk's legacy spelling of certificate auth on the token scheme.
              if (boolean(kv.value(), "enableClientCertificate")) cert_auth = true;
              kind = AuthKind::kAuthToken;
              auto in = str(*def, "in");
              auto name = str(*def, "name");
              s.token.use_header = in == "header";
              s.token.use_param = in == "query";
              s.token.use_cookie = in == "cookie";
              if (s.token.use_header) s.token.header_name = name;
              if (s.token.use_param) s.token.param_name = name;
              if (s.token.use_cookie) s.token.cookie_name = name;
              auto source = [&](const char* key, bool* on, std::string* nm) {
                if (const auto* src = obj(kv.value(), key)) {
                  const json::value srcv(*src);
                  *on = boolean(srcv, "enabled", *on);
                  auto n2 = str(srcv, "name");
                  if (!n2.empty()) *nm = n2;
                }
              };
              source("header", &s.token.use_header, &s.token.header_name);
              source("query", &s.token.use_param, &s.token.param_name);
              source("cookie", &s.token.use_cookie, &s.token.cookie_name);
              if (s.token.header_name.empty()) s.token.header_name = "Authorization";
            } else if (type == "http" && scheme == "bearer") {
              kind = AuthKind::kJwt;
            } else if (type == "http" && scheme == "basic") {
              kind = AuthKind::kBasic;
            } else if (type == "oauth2") {
              kind = AuthKind::kOAuth2;
            } else {
              return Error{"security scheme \"" + std::string(kv.key()) +
                           "\" has unsupported type"};
            }
            ++n;
            k = kind;
          }
        }
        if (const auto* ca = obj(av, "certificateAuth")) {
          if (boolean(json::value(*ca), "enabled")) cert_auth = true;
        }
        if (cert_auth) {
          // Certificate auth is the token method finding the key by the client's certificate
          // (auth_configs.authToken.use_certificate): it replaces the token scheme.
          if (n == 0 || (n == 1 && k == AuthKind::kAuthToken)) {
            n = 1;
            k = AuthKind::kCertificate;
          } else {
            ++n;
          }
        }
        if (const auto* hm = obj(av, "hmac")) {
          if (boolean(json::value(*hm), "enabled")) {
            ++n;
            k = AuthKind::kHmac;
          }
        }
        s.auth = n > 1 ? AuthKind::kMulti : k;
        if (n == 0) s.auth = AuthKind::kAuthToken;
      }
    }
    s.definition = doc;
    return s;
  } catch (const Malformed& m) {
    return Error{"malformed: " + m.what};
  }
}

Result<ApiSpec> load_any(const json::value& doc) {
  return is_oas_document(doc) ? load_oas(doc) : load_classic(doc);
}

DirectoryLoad load_directory(const std::string& dir) {
  DirectoryLoad out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    out.problems.push_back(dir + ": cannot open app_path");
    return out;
  }
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0 && n[0] != '.') names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    std::string path = dir + "/" + n;
    auto text = read_file(path);
    if (!text) {
      out.problems.push_back(path + ": cannot read");
      continue;
    }
    boost::system::error_code ec;
    auto doc = json::parse(*text, ec);
    if (ec) {
      out.problems.push_back(path + ": not valid JSON: " + ec.message());
      continue;
    }
    // A Tyk app_path holds <id>.json (classic, "is_oas": true) beside <id>-oas.json; the OAS
    // document is the one to load.
    if (doc.is_object() && !is_oas_document(doc)) {
      auto it = doc.as_object().find("is_oas");
      if (it != doc.as_object().end() && it->value().is_bool() && it->value().as_bool()) continue;
    }
    auto spec = load_any(doc);
    if (!spec) {
      out.problems.push_back(path + ": " + spec.error());
      continue;
    }
    if (!valid_api_id(spec->api_id)) {
      out.problems.push_back(path + ": missing or invalid api_id");
      continue;
    }
    spec->source_file = path;
    out.apis.push_back(LoadedApi{path, std::move(spec.value())});
  }
  return out;
}

}  // namespace gh::apidef
