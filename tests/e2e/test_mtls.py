"""Static mutual TLS (`use_mutual_tls_auth` + `client_certificates`, OAS `clientCertificates`),
end to end with Python's ssl, curl and openssl s_client against a test PKI made here: the
allowed certificate, one signed by a listed CA, one not listed, one of another CA, an expired
one and none; Tyk's 403 messages on a listener shared with the control API; the SNI/Host
cross-over refused; a certificate allowed for one API refused by another on the same keep-alive
connection; CA names announced in the CertificateRequest (or not, with
skip_client_ca_announcement); allow lists naming certificate store ids."""
import hashlib
import json
import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import (Pki, expired_client_cert, keyless_api, parse_one_response, read_to_close,
                      tls_connect, tls_request)

REQUIRED = {"error": "Client TLS certificate is required"}
EXPIRED = {"error": "Certificate has expired"}


def not_allowed(cert_file):
    der = x509.load_pem_x509_certificate(open(cert_file, "rb").read()).public_bytes(
        serialization.Encoding.DER)
    return {"error": f"Certificate with SHA256 {hashlib.sha256(der).hexdigest()} not allowed"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory, pki):
    d = tmp_path_factory.mktemp("mtls")
    server = pki.leaf("mtls-server", ["a.example.com", "b.example.com", "ca.example.com",
                                      "127.0.0.1"])
    ok = pki.leaf("client-ok", ["client-ok"], client=True)
    other = pki.leaf("client-other", ["client-other"], client=True)
    foreign_pki = Pki(d / "foreign")
    foreign = foreign_pki.leaf("client-foreign", ["client-foreign"], client=True)
    # An expired client certificate from the same intermediate.
    expired = expired_client_cert(pki, ok[1], d / "expired.pem")
    future = expired_client_cert(pki, ok[1], d / "future.pem", future=True)
    return {"server": server, "ok": ok, "other": other, "foreign": foreign, "expired": expired,
            "future": future,
            "int": str(pki.int_cert), "root": str(pki.ca)}


def mtls_api(api_id, listen, target, allow, domain=None):
    d = keyless_api(api_id, listen, target, use_mutual_tls_auth=True, client_certificates=allow)
    if domain:
        d["domain"] = domain
    return d


@pytest.fixture
def mgw(gateway_factory, origin, certs):
    def make(extra_conf=None, apis=None):
        conf = {"enable_custom_domains": True,
                "http_server_options": {"use_ssl": True, "ssl_certificates": [certs["server"][3]]}}
        conf.update(extra_conf or {})
        return gateway_factory(conf=conf, apis=apis if apis is not None else [
            mtls_api("mtls-a", "/", origin.url, [certs["ok"][0]], domain="a.example.com"),
            mtls_api("mtls-ca", "/", origin.url, [certs["int"]], domain="ca.example.com"),
            keyless_api("plain-b", "/", origin.url, domain="b.example.com"),
            mtls_api("any1", "/any1/", origin.url, [certs["ok"][0]]),
            mtls_api("any2", "/any2/", origin.url, [certs["other"][0]]),
        ])
    return make


connect = tls_connect
request = tls_request


def one(port, sni, host, path="/", cert=None):
    s = connect(port, sni, cert)
    try:
        return request(s, host, path)
    finally:
        s.close()


def test_allow_list_with_tyks_refusals(mgw, certs, origin):
    gw = mgw()
    r = one(gw.port, "a.example.com", "a.example.com", cert=certs["ok"])
    assert r.status == 200, r.body
    assert origin.count() == 1
    cases = [(None, REQUIRED), (certs["other"], not_allowed(certs["other"][0])),
             (certs["foreign"], not_allowed(certs["foreign"][0])), (certs["expired"], EXPIRED),
             (certs["future"], {"error": "Certificate is not yet valid"})]
    for cert, body in cases:
        r = one(gw.port, "a.example.com", "a.example.com", cert=cert)
        assert r.status == 403 and json.loads(r.body) == body, (cert, r.body)
    assert origin.count() == 1  # nothing refused was proxied


def test_a_listed_ca_admits_the_certificates_it_signed(mgw, certs):
    gw = mgw()
    for c in ("ok", "other"):
        assert one(gw.port, "ca.example.com", "ca.example.com", cert=certs[c]).status == 200
    r = one(gw.port, "ca.example.com", "ca.example.com", cert=certs["foreign"])
    assert r.status == 403 and json.loads(r.body) == not_allowed(certs["foreign"][0])
    assert json.loads(one(gw.port, "ca.example.com", "ca.example.com",
                          cert=certs["expired"]).body) == EXPIRED


def test_sni_and_host_must_agree_for_an_mtls_domain(mgw, certs, origin):
    gw = mgw()
    for sni in ("b.example.com", None, "ca.example.com"):
        r = one(gw.port, sni, "a.example.com", cert=certs["ok"])
        assert r.status == 421, (sni, r.status, r.body)
    assert origin.count() == 0
    # The plain-TLS API next door needs no certificate.
    assert one(gw.port, "b.example.com", "b.example.com").status == 200


def test_certificate_for_one_api_is_refused_by_another_on_the_same_connection(mgw, certs):
    gw = mgw()
    s = connect(gw.port, None, certs["ok"])
    try:
        assert request(s, "127.0.0.1", "/any1/").status == 200
        r = request(s, "127.0.0.1", "/any2/")
        assert r.status == 403 and json.loads(r.body) == not_allowed(certs["ok"][0])
        assert request(s, "127.0.0.1", "/any1/").status == 200
    finally:
        s.close()


def test_curl_and_openssl_clients(mgw, certs):
    gw = mgw()
    out = subprocess.run(["curl", "-sk", "--resolve", f"a.example.com:{gw.port}:127.0.0.1",
                          "--cert", certs["ok"][0], "--key", certs["ok"][1], "-o", "/dev/null",
                          "-w", "%{http_code}", f"https://a.example.com:{gw.port}/"],
                         capture_output=True, text=True, timeout=20)
    assert out.stdout == "200", out
    out = subprocess.run(["curl", "-sk", "--resolve", f"a.example.com:{gw.port}:127.0.0.1",
                          f"https://a.example.com:{gw.port}/"], capture_output=True, text=True,
                         timeout=20)
    assert json.loads(out.stdout) == REQUIRED


def s_client(port, sni, extra=()):
    p = subprocess.run(["openssl", "s_client", "-ign_eof", "-connect", f"127.0.0.1:{port}",
                        "-servername", sni, *extra], input="GET / HTTP/1.1\r\nHost: " + sni +
                       "\r\nConnection: close\r\n\r\n", capture_output=True, text=True, timeout=20)
    return p.stdout + p.stderr


def test_ca_names_are_announced_unless_skipped(mgw, certs):
    gw = mgw()
    out = s_client(gw.port, "ca.example.com", ["-cert", certs["ok"][0], "-key", certs["ok"][1]])
    assert "Acceptable client certificate CA names" in out
    assert "Gatehouse Test Intermediate" in out.split("Acceptable client certificate CA names")[1]
    assert "HTTP/1.1 200" in out
    gw2 = mgw({"http_server_options": {"use_ssl": True, "ssl_certificates": [certs["server"][3]],
                                       "skip_client_ca_announcement": True}})
    out = s_client(gw2.port, "ca.example.com", ["-cert", certs["ok"][0], "-key", certs["ok"][1]])
    assert "No client certificate CA names sent" in out
    assert "HTTP/1.1 200" in out  # still requested and judged
    out = s_client(gw2.port, "ca.example.com",
                   ["-cert", certs["foreign"][0], "-key", certs["foreign"][1]])
    assert "HTTP/1.1 403" in out


@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_allow_list_by_store_id_and_oas(mgw, certs, origin, redis_factory, store):
    oas = {
        "openapi": "3.0.3", "info": {"title": "oas-mtls", "version": "1"}, "paths": {},
        "x-tyk-api-gateway": {
            "info": {"id": "oas-mtls", "orgId": "default", "name": "oas-mtls",
                     "state": {"active": True}},
            "upstream": {"url": origin.url},
            "server": {"listenPath": {"value": "/oas-mtls/", "strip": True},
                       "clientCertificates": {"enabled": True, "allowlist": []}},
        },
    }
    extra = {}
    if store == "redis":
        extra = {"storage": redis_factory().storage_conf(),
                 "gatehouse": {"store": {"type": "redis"}}}
    gw = mgw(extra_conf=extra, apis=[oas])
    r = gw.admin("POST", "/tyk/certs?org_id=default", raw=open(certs["other"][0]).read())
    assert r.status_code == 200, r.text
    cid = r.json()["id"]
    # Empty allow list: nothing is admitted.
    r = one(gw.port, None, "127.0.0.1", "/oas-mtls/", cert=certs["other"])
    assert r.status == 403
    oas["x-tyk-api-gateway"]["server"]["clientCertificates"]["allowlist"] = [cid]
    assert gw.admin("PUT", "/tyk/apis/oas/oas-mtls", oas).status_code == 200
    gw.reload()
    assert one(gw.port, None, "127.0.0.1", "/oas-mtls/", cert=certs["other"]).status == 200
    r = one(gw.port, None, "127.0.0.1", "/oas-mtls/", cert=certs["ok"])
    assert r.status == 403 and json.loads(r.body) == not_allowed(certs["ok"][0])


def test_mtls_api_on_a_plain_listener(gateway_factory, origin, certs):
    gw = gateway_factory(apis=[mtls_api("m", "/m/", origin.url, [certs["ok"][0]])])
    import requests
    r = requests.get(gw.url("/m/"), timeout=5)
    assert r.status_code == 403 and r.json() == {"error": "TLS not enabled"}
    assert origin.count() == 0


# ---------------------------------------------------------------------------------------------
# Control API mutual TLS.
def control_conf(certs, port=None):
    c = {"http_server_options": {"use_ssl": True, "ssl_certificates": [certs["server"][3]]},
         "security": {"control_api_use_mutual_tls": True,
                      "certificates": {"control_api": [certs["int"]]}}}
    if port:
        c["control_api_port"] = port
    return c


def control_call(port, cert=None, secret="test-secret-0123456789"):
    """GET /tyk/apis on the control port; None when the handshake (or the connection right
    after it, with TLS 1.3) is refused."""
    try:
        s = connect(port, None, cert)
        h = f"X-Tyk-Authorization: {secret}\r\n" if secret else ""
        s.sendall(f"GET /tyk/apis HTTP/1.1\r\nHost: x\r\n{h}Connection: close\r\n\r\n".encode())
        buf = read_to_close(s)
        s.close()
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return None
    got = parse_one_response(buf, until_close=True) if buf else None
    return got[0] if got else None


def test_control_api_mtls_on_its_own_port(gateway_factory, origin, certs):
    from conftest import free_port
    cport = free_port()
    gw = gateway_factory(conf=control_conf(certs, cport),
                         apis=[keyless_api("open", "/open/", origin.url)])
    r = control_call(cport, certs["ok"])
    assert r is not None and r.status == 200, r and r.body
    # The secret is still needed.
    r = control_call(cport, certs["ok"], secret=None)
    assert r.status == 403
    # Refused in the handshake: no certificate, another CA, expired.
    for cert in (None, certs["foreign"], certs["expired"]):
        assert control_call(cport, cert) is None, cert
    # The API listener is unaffected: no certificate needed there.
    assert one(gw.port, None, "127.0.0.1", "/open/").status == 200


def test_control_api_mtls_on_a_shared_listener(gateway_factory, origin, certs):
    gw = gateway_factory(conf=control_conf(certs), apis=[keyless_api("open", "/open/",
                                                                     origin.url)])
    r = control_call(gw.port, None)
    assert r.status == 403
    assert json.loads(r.body) == {"status": "error", "message": "Client TLS certificate is required"}
    r = control_call(gw.port, certs["foreign"])
    assert r.status == 403
    r = control_call(gw.port, certs["ok"])
    assert r.status == 200
    assert one(gw.port, None, "127.0.0.1", "/open/").status == 200


def test_control_api_mtls_needs_certificates(gateway_factory, certs):
    conf = control_conf(certs)
    conf["security"]["certificates"]["control_api"] = ["/nonexistent/ca.pem"]
    gw = gateway_factory(conf=conf, start=False)
    gw.start(wait=False)
    assert gw.proc.wait(timeout=10) != 0
    assert "security.certificates.control_api" in gw.logs()


def test_verified_client_certificate_forwarded_upstream(gateway_factory, origin, certs):
    """RFC 9440: with gatehouse.forward_client_cert the upstream of an mTLS API gets the verified
    certificate as Client-Cert (and the rest of the chain the client sent as
    Client-Cert-Chain); Client-Cert headers sent by clients never pass, option on or off."""
    import base64

    def headers_seen():
        return {k.lower(): v for k, v in origin.requests[-1]["headers"]}

    def send(port, path, cert):
        s = connect(port, None, cert)
        try:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nClient-Cert: :Zm9yZ2Vk:\r\n"
                      f"Client-Cert-Chain: :Zm9yZ2Vk:\r\nConnection: close\r\n\r\n".encode())
            buf = read_to_close(s)
            return parse_one_response(buf, until_close=True)[0]
        finally:
            s.close()

    leaf_der = x509.load_pem_x509_certificate(open(certs["ok"][0], "rb").read()).public_bytes(
        serialization.Encoding.DER)
    int_der = x509.load_pem_x509_certificate(open(certs["int"], "rb").read()).public_bytes(
        serialization.Encoding.DER)
    apis = [mtls_api("m", "/m/", origin.url, [certs["ok"][0]]),
            keyless_api("open", "/open/", origin.url)]
    tls_conf = {"use_ssl": True, "ssl_certificates": [certs["server"][3]]}
    gw = gateway_factory(conf={"http_server_options": tls_conf,
                               "gatehouse": {"forward_client_cert": True}}, apis=apis)
    # The client sends its chain (leaf + intermediate).
    assert send(gw.port, "/m/", (certs["ok"][2], certs["ok"][1])).status == 200
    h = headers_seen()
    assert h["client-cert"] == ":" + base64.b64encode(leaf_der).decode() + ":"
    assert h["client-cert-chain"] == ":" + base64.b64encode(int_der).decode() + ":"
    # Not an mTLS API: nothing verified, nothing forwarded; the forged headers are gone.
    assert send(gw.port, "/open/", (certs["ok"][0], certs["ok"][1])).status == 200
    h = headers_seen()
    assert "client-cert" not in h and "client-cert-chain" not in h
    # Option off: never forwarded, forged headers still removed.
    gw2 = gateway_factory(conf={"http_server_options": tls_conf}, apis=apis)
    assert send(gw2.port, "/m/", (certs["ok"][0], certs["ok"][1])).status == 200
    h = headers_seen()
    assert "client-cert" not in h and "client-cert-chain" not in h
