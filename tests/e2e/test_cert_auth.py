"""Certificate auth (Tyk's `auth_configs.authToken.use_certificate`, OAS `certificateAuth` and the
token scheme's `enableClientCertificate`) and token-certificate binding
(`mtls_static_certificate_bindings` on keys and, beyond Tyk, on policies), end to end with
Python's ssl, curl and openssl s_client against a test PKI made here, on the embedded store and on
Redis: the key is found by the certificate presented in the handshake; no certificate, an expired
one, one that maps to no key and a token alone are refused with Tyk's statuses and messages;
`security.allow_unsafe_dynamic_mtls_token` lets the token alone through (with a warning at start);
deleting the certificate from the store revokes its key; the keys API's certificate rules."""
import base64
import hashlib
import json
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import expired_client_cert, keyless_api, tls_connect, tls_request

ORG = "org1"
CERT_REQUIRED = {"error": "Client certificate required"}
DISALLOWED = {"error": "Access to this API has been disallowed"}
EXPIRED = {"error": "Certificate has expired"}


def sha_of(cert_file):
    der = x509.load_pem_x509_certificate(open(cert_file, "rb").read()).public_bytes(
        serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


@pytest.fixture(scope="module")
def certs(tmp_path_factory, pki):
    d = tmp_path_factory.mktemp("certauth")
    server = pki.leaf("ca-server", ["a.example.com", "b.example.com", "127.0.0.1"])
    alice = pki.leaf("client-alice", ["client-alice"], client=True)
    bob = pki.leaf("client-bob", ["client-bob"], client=True)
    carol = pki.leaf("client-carol", ["client-carol"], client=True)
    return {"server": server, "alice": alice, "bob": bob, "carol": carol,
            "expired": expired_client_cert(pki, alice[1], d / "expired.pem"),
            "future": expired_client_cert(pki, alice[1], d / "future.pem", future=True),
            "int": str(pki.int_cert)}


def token_api(api_id, listen, target, **extra):
    d = keyless_api(api_id, listen, target, use_keyless=False, org_id=ORG,
                    auth_configs={"authToken": {"auth_header_name": "Authorization"}})
    d.update(extra)
    return d


def cert_auth_api(api_id, listen, target, **extra):
    d = token_api(api_id, listen, target, **extra)
    d["use_standard_auth"] = True
    d["auth_configs"]["authToken"]["use_certificate"] = True
    return d


def oas_cert_auth_api(api_id, listen, target):
    return {
        "openapi": "3.0.3", "info": {"title": api_id, "version": "1"}, "paths": {},
        "components": {"securitySchemes": {"tok": {"type": "apiKey", "in": "header",
                                                   "name": "Authorization"}}},
        "security": [{"tok": []}],
        "x-tyk-api-gateway": {
            "info": {"id": api_id, "orgId": ORG, "name": api_id, "state": {"active": True}},
            "upstream": {"url": target},
            "server": {"listenPath": {"value": listen, "strip": True},
                       "authentication": {"enabled": True,
                                          "securitySchemes": {"tok": {"enabled": True}},
                                          "certificateAuth": {"enabled": True}}}}}


def connect(port, cert=None, sni=None):
    return tls_connect(port, sni, cert)


def request(sock, path, headers=None, host="gw.test"):
    return tls_request(sock, host, path, headers)


def one(port, path, cert=None, headers=None, sni=None, host="gw.test"):
    s = connect(port, cert, sni)
    try:
        return request(s, path, headers, host)
    finally:
        s.close()


def add_cert(gw, cert_file):
    r = gw.admin("POST", f"/tyk/certs?org_id={ORG}", raw=open(cert_file).read())
    assert r.status_code == 200, r.text
    return r.json()["id"]


def session(apis, **extra):
    s = {"org_id": ORG, "rate": 0, "per": 0, "quota_max": -1,
         "access_rights": {a: {"api_id": a, "api_name": a, "versions": ["Default"]} for a in apis}}
    s.update(extra)
    return s


@pytest.fixture(params=["embedded", "redis"])
def store_conf(request, redis_factory):
    if request.param == "embedded":
        return {}
    r = redis_factory()
    return {"storage": r.storage_conf(), "gatehouse": {"store": {"type": "redis"}}}


@pytest.fixture
def cgw(gateway_factory, origin, certs, store_conf):
    def make(extra_conf=None, apis=None):
        conf = {"http_server_options": {"use_ssl": True, "ssl_certificates": [certs["server"][3]]}}
        conf.update(store_conf)
        conf.update(extra_conf or {})
        return gateway_factory(conf=conf, apis=apis if apis is not None else [
            cert_auth_api("byc", "/byc/", origin.url),
            oas_cert_auth_api("oasc", "/oasc/", origin.url),
            token_api("tok", "/tok/", origin.url),
        ])
    return make


def test_the_key_is_found_by_the_certificate(cgw, certs, origin):
    gw = cgw()
    cid = add_cert(gw, certs["alice"][0])
    assert cid == ORG + sha_of(certs["alice"][0])
    r = gw.admin("POST", "/tyk/keys/create", session(["byc", "oasc"], certificate=cid))
    assert r.status_code == 200, r.text
    token = r.json()["key"]
    # As in Tyk, the key's token is made from the certificate id.
    assert json.loads(base64.b64decode(token)) == {"org": ORG, "id": sha_of(certs["alice"][0]),
                                                   "h": "murmur64"}
    for path in ("/byc/x", "/oasc/x"):
        r = one(gw.port, path, certs["alice"])
        assert r.status == 200, (path, r.body)
    assert origin.count() == 2
    # Python ssl, curl and openssl s_client all get in with the certificate, and only with it.
    c = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--cert",
                        certs["alice"][0], "--key", certs["alice"][1],
                        gw.url("/byc/curl")], capture_output=True, text=True, timeout=10)
    assert c.stdout == "200"
    s = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{gw.port}", "-quiet",
                        "-cert", certs["alice"][0], "-key", certs["alice"][1]],
                       input=b"GET /byc/s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       capture_output=True, timeout=10)
    assert s.stdout.startswith(b"HTTP/1.1 200"), s.stdout[:200]
    c = subprocess.run(["curl", "-sk", "-w", "\n%{http_code}", gw.url("/byc/curl")],
                       capture_output=True, text=True, timeout=10)
    body, code = c.stdout.rsplit("\n", 1)
    assert code == "401" and json.loads(body) == CERT_REQUIRED
    assert origin.count() == 4


def test_refusals(cgw, certs, origin):
    gw = cgw()
    cid = add_cert(gw, certs["alice"][0])
    add_cert(gw, certs["bob"][0])  # in the store, but no key made for it
    token = gw.admin("POST", "/tyk/keys/create",
                     session(["byc", "oasc"], certificate=cid)).json()["key"]
    origin.clear()
    for path in ("/byc/x", "/oasc/x"):
        # No certificate; the token alone (which anyone who knows the certificate can build).
        for headers in (None, {"Authorization": token}):
            r = one(gw.port, path, None, headers)
            assert r.status == 401 and json.loads(r.body) == CERT_REQUIRED, (path, r.body)
        # Certificates no key was made for (in the store or not).
        for who in ("bob", "carol"):
            r = one(gw.port, path, certs[who])
            assert r.status == 401 and json.loads(r.body) == DISALLOWED, (who, r.body)
        # Expired (same key pair as alice's).
        r = one(gw.port, path, certs["expired"])
        assert r.status == 403 and json.loads(r.body) == EXPIRED
        r = one(gw.port, path, certs["future"])
        assert r.status == 403 and json.loads(r.body) == {"error": "Certificate is not yet valid"}
        # A token of another key does not stand in for the certificate.
        r = one(gw.port, path, certs["bob"], {"Authorization": token})
        assert r.status == 401 and json.loads(r.body) == DISALLOWED
    assert origin.count() == 0
    # Plain token APIs do not accept the certificate in place of a token.
    r = one(gw.port, "/tok/x", certs["alice"])
    assert r.status == 401 and json.loads(r.body) == {"error": "Authorization field missing"}


def test_session_rules_still_apply(cgw, certs, origin):
    gw = cgw()
    cid = add_cert(gw, certs["alice"][0])
    r = gw.admin("POST", "/tyk/keys/create", session(["oasc"], certificate=cid))
    token = r.json()["key"]
    # Access rights: the key grants oasc only.
    r = one(gw.port, "/byc/x", certs["alice"])
    assert r.status == 403 and json.loads(r.body) == DISALLOWED
    assert one(gw.port, "/oasc/x", certs["alice"]).status == 200
    # Inactive, then expired.
    upd = session(["oasc"], certificate=cid, is_inactive=True)
    assert gw.admin("PUT", f"/tyk/keys/{token}", upd).status_code == 200
    r = one(gw.port, "/oasc/x", certs["alice"])
    assert r.status == 403 and json.loads(r.body) == {"error": "Key is inactive, please renew"}
    upd = session(["oasc"], certificate=cid, expires=1000)
    assert gw.admin("PUT", f"/tyk/keys/{token}", upd).status_code == 200
    r = one(gw.port, "/oasc/x", certs["alice"])
    assert r.status == 401 and json.loads(r.body) == {"error": "Key has expired, please renew"}
    # Rate limit: 2 per minute, counted per key across connections.
    upd = session(["oasc"], certificate=cid, rate=2, per=60)
    assert gw.admin("PUT", f"/tyk/keys/{token}", upd).status_code == 200
    got = [one(gw.port, "/oasc/x", certs["alice"]).status for _ in range(4)]
    assert got == [200, 200, 429, 429]
    # Deleting the key: the certificate no longer maps to one.
    assert gw.admin("DELETE", f"/tyk/keys/{token}").status_code == 200
    r = one(gw.port, "/oasc/x", certs["alice"])
    assert r.status == 401 and json.loads(r.body) == DISALLOWED


def test_removing_the_certificate_revokes_its_key(cgw, certs, origin):
    gw = cgw()
    cid = add_cert(gw, certs["alice"][0])
    gw.admin("POST", "/tyk/keys/create", session(["byc"], certificate=cid))
    s = connect(gw.port, certs["alice"])
    try:
        assert request(s, "/byc/1").status == 200
        assert gw.admin("DELETE", f"/tyk/certs/{cid}?org_id={ORG}").status_code == 200
        # At once, even on the connection that is already open.
        r = request(s, "/byc/2")
        assert r.status == 403 and json.loads(r.body) == DISALLOWED
    finally:
        s.close()
    add_cert(gw, certs["alice"][0])
    assert one(gw.port, "/byc/3", certs["alice"]).status == 200


def test_unsafe_token_mode(cgw, certs, origin):
    gw = cgw({"security": {"allow_unsafe_dynamic_mtls_token": True}})
    assert "allow_unsafe_dynamic_mtls_token" in gw.logs()
    cid = add_cert(gw, certs["alice"][0])
    token = gw.admin("POST", "/tyk/keys/create",
                     session(["byc"], certificate=cid)).json()["key"]
    assert one(gw.port, "/byc/x", None, {"Authorization": token}).status == 200
    assert one(gw.port, "/byc/x", certs["alice"]).status == 200
    r = one(gw.port, "/byc/x", None, {"Authorization": token + "x"})
    assert r.status == 403 and json.loads(r.body) == DISALLOWED
    r = one(gw.port, "/byc/x")
    assert r.status == 401 and json.loads(r.body) == CERT_REQUIRED
    # A certificate that maps to no key is refused even with a good token.
    r = one(gw.port, "/byc/x", certs["bob"], {"Authorization": token})
    assert r.status == 401 and json.loads(r.body) == DISALLOWED
    # The token alone is refused once the certificate is gone from the store.
    gw.admin("DELETE", f"/tyk/certs/{cid}?org_id={ORG}")
    r = one(gw.port, "/byc/x", None, {"Authorization": token})
    assert r.status == 403 and json.loads(r.body) == DISALLOWED


def test_certificate_auth_on_a_custom_domain(gateway_factory, origin, certs):
    api = cert_auth_api("dom", "/", origin.url, domain="a.example.com")
    gw = gateway_factory(conf={
        "enable_custom_domains": True,
        "http_server_options": {"use_ssl": True, "ssl_certificates": [certs["server"][3]]}},
        apis=[api, token_api("other", "/", origin.url, domain="b.example.com")])
    cid = add_cert(gw, certs["alice"][0])
    gw.admin("POST", "/tyk/keys/create", session(["dom"], certificate=cid))
    r = one(gw.port, "/", certs["alice"], sni="a.example.com", host="a.example.com")
    assert r.status == 200, r.body
    # A handshake for another name (not asked for a certificate) does not reach the API.
    r = one(gw.port, "/", certs["alice"], sni="b.example.com", host="a.example.com")
    assert r.status == 421


def test_keys_api_certificate_rules(cgw, certs):
    gw = cgw()
    cid = add_cert(gw, certs["alice"][0])
    bob = add_cert(gw, certs["bob"][0])
    r = gw.admin("POST", "/tyk/keys/create", session(["byc"], certificate=ORG + "0" * 64))
    assert r.status_code == 400
    assert r.json() == {"status": "error",
                        "message": "Key must be used with an existent certificate"}
    r = gw.admin("POST", "/tyk/keys/create", session(["byc"], certificate=cid))
    token = r.json()["key"]
    r = gw.admin("POST", "/tyk/keys/create", session(["byc"], certificate=cid))
    assert r.status_code == 500
    assert r.json()["message"] == ("Failed to create key - Key with given certificate already "
                                   "found:" + token)
    r = gw.admin("PUT", f"/tyk/keys/{token}", session(["byc"]))
    assert r.status_code == 400
    assert r.json()["message"] == "Key cannot be used without a certificate"
    r = gw.admin("PUT", f"/tyk/keys/{token}", session(["byc"], certificate=ORG + "1" * 64))
    assert r.status_code == 400
    assert r.json()["message"] == "Key must be used with an existent certificate"
    assert gw.admin("PUT", f"/tyk/keys/{token}",
                    session(["byc"], certificate=bob)).status_code == 200
    # Bindings: each id must belong to the key's org and be in the store.
    r = gw.admin("POST", "/tyk/keys/create",
                 session(["tok"], mtls_static_certificate_bindings=["other" + "2" * 64]))
    assert r.status_code == 400 and r.json()["message"] == "invalid certificate ID: other" + "2" * 64
    r = gw.admin("POST", "/tyk/keys/create",
                 session(["tok"], mtls_static_certificate_bindings=[ORG + "3" * 64]))
    assert r.status_code == 400 and r.json()["message"] == "certificate not found: " + ORG + "3" * 64
    r = gw.admin("POST", "/tyk/keys/create",
                 session(["tok"], mtls_static_certificate_bindings=[cid]))
    assert r.status_code == 200
    k = r.json()["key"]
    r = gw.admin("PUT", f"/tyk/keys/{k}",
                 session(["tok"], mtls_static_certificate_bindings=[cid, ORG + "4" * 64]))
    assert r.status_code == 400 and r.json()["message"] == "certificate not found: " + ORG + "4" * 64
    r = gw.admin("POST", "/tyk/keys/create",
                 session(["tok"], mtls_static_certificate_bindings="nope"))
    assert r.status_code == 400


# ---------------------------------------------------------------------------------------------
# Token-certificate binding on a static-mTLS API.
def bound_api(origin, certs):
    # The allow list is the intermediate CA: alice, bob and carol all pass the handshake check.
    return token_api("mt", "/mt/", origin.url, use_mutual_tls_auth=True,
                     client_certificates=[certs["int"]])


def test_token_bound_to_certificates(cgw, certs, origin, tmp_path):
    pol_dir = tmp_path / "policies"
    pol_dir.mkdir()
    gw = cgw({"policies": {"policy_source": "file", "policy_path": str(pol_dir)}},
             apis=[bound_api(origin, certs), token_api("tok", "/tok/", origin.url)])
    alice = add_cert(gw, certs["alice"][0])
    bob = add_cert(gw, certs["bob"][0])
    k = gw.admin("POST", "/tyk/keys/create",
                 session(["mt", "tok"], mtls_static_certificate_bindings=[alice])).json()["key"]
    free = gw.admin("POST", "/tyk/keys/create", session(["mt"])).json()["key"]
    auth = {"Authorization": k}
    assert one(gw.port, "/mt/x", certs["alice"], auth).status == 200
    for who in ("bob", "carol"):
        r = one(gw.port, "/mt/x", certs[who], auth)
        assert r.status == 401 and json.loads(r.body) == DISALLOWED, who
    # The token is still required; an unbound key works with any allowed certificate.
    r = one(gw.port, "/mt/x", certs["alice"])
    assert r.status == 401 and json.loads(r.body) == {"error": "Authorization field missing"}
    assert one(gw.port, "/mt/x", certs["bob"], {"Authorization": free}).status == 200
    # As in Tyk, a binding is enforced where the API uses static mTLS (documented).
    assert one(gw.port, "/tok/x", None, auth).status == 200
    # Same connection: alice's certificate, then another key bound to bob's: refused.
    k_bob = gw.admin("POST", "/tyk/keys/create",
                     session(["mt"], mtls_static_certificate_bindings=[bob])).json()["key"]
    s = connect(gw.port, certs["alice"])
    try:
        assert request(s, "/mt/1", auth).status == 200
        assert request(s, "/mt/2", {"Authorization": k_bob}).status == 401
        assert request(s, "/mt/3", auth).status == 200
    finally:
        s.close()
    # Beyond Tyk: a policy binds certificates to the keys it governs.
    (pol_dir / "bind.json").write_text(json.dumps({
        "id": "bind", "org_id": ORG, "rate": 0, "per": 0, "quota_max": -1, "active": True,
        "access_rights": {"mt": {"api_id": "mt", "api_name": "mt", "versions": ["Default"]}},
        "mtls_static_certificate_bindings": [bob]}))
    gw.reload()
    kp = gw.admin("POST", "/tyk/keys/create",
                  {"org_id": ORG, "apply_policies": ["bind"]}).json()["key"]
    assert one(gw.port, "/mt/x", certs["bob"], {"Authorization": kp}).status == 200
    r = one(gw.port, "/mt/x", certs["alice"], {"Authorization": kp})
    assert r.status == 401 and json.loads(r.body) == DISALLOWED
    # The key's own bindings and its policies' are united.
    kb = gw.admin("POST", "/tyk/keys/create",
                  {"org_id": ORG, "apply_policies": ["bind"],
                   "mtls_static_certificate_bindings": [alice]}).json()["key"]
    for who in ("alice", "bob"):
        assert one(gw.port, "/mt/x", certs[who], {"Authorization": kb}).status == 200, who
    assert one(gw.port, "/mt/x", certs["carol"], {"Authorization": kb}).status == 401
