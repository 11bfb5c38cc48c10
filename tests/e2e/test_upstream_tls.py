"""Secure upstreams, end to end against real TLS upstreams started here (Python ssl servers
with a test PKI made at test time) and a real forward proxy that records what it carried:
upstream mutual TLS with Tyk's host precedence (and nothing sent where nothing maps),
certificate pinning (store ids, files, inline PEM; a leaf pin admits a self-signed upstream; pins
re-checked for pooled connections after a reload), ssl_force_common_name_check, TLS versions,
per-API insecure skip with a warning, SNI, the forward proxy (absolute form for http://, CONNECT
for https:// with verification and pinning through the tunnel, credentials), and the SSRF guard
rails (internal addresses after DNS, the allow list, redirects never followed). Each with a
positive control."""
import base64
import hashlib
import json
import queue
import socket
import ssl
import threading

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import Origin, free_port, keyless_api

PROXY_ERROR = {"error": "There was a problem proxying the request"}


def cert_sha(pem_file):
    c = x509.load_pem_x509_certificate(open(pem_file, "rb").read())
    return hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest()


def pubkey_pem(pem_file):
    c = x509.load_pem_x509_certificate(open(pem_file, "rb").read())
    return c.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="module")
def upki(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("upki")
    out = {
        "server": pki.leaf("up-server", ["localhost", "127.0.0.1"]),
        "client_a": pki.leaf("up-client-a", ["gateway-a"], client=True),
        "client_b": pki.leaf("up-client-b", ["gateway-b"], client=True),
        "ca": str(pki.ca),
        "dir": d,
    }
    # A self-signed upstream certificate no CA vouches for.
    key = d / "self.key"
    crt = d / "self.pem"
    import subprocess
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=self", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    out["self"] = (str(crt), str(key))
    # CN differs from the host name the gateway dials (the SAN still names it).
    out["cn_other"] = pki.leaf("cn-mismatch", ["elsewhere.test", "127.0.0.1"])
    return out


def stopping_factory(cls):
    """A fixture body that makes servers of `cls` on demand and stops them all afterwards."""
    made = []

    def make(**kw):
        obj = cls(**kw)
        made.append(obj)
        return obj
    yield make
    for obj in made:
        obj.stop()


@pytest.fixture
def upstreams():
    yield from stopping_factory(Origin)


def trusted(pki):
    return {"SSL_CERT_FILE": str(pki.ca)}


def add_cert(gw, pem_text, org="o"):
    r = gw.admin("POST", f"/tyk/certs?org_id={org}", raw=pem_text)
    assert r.status_code == 200, r.text
    return r.json()["id"]


# --- upstream mutual TLS ----------------------------------------------------------------------
def test_upstream_client_certificate_by_host(gateway_factory, upki, upstreams, pki):
    up = upstreams(name="mtls-up", tls_cert=upki["server"][2], tls_key=upki["server"][1],
                   client_ca=upki["ca"])
    gw = gateway_factory(env=trusted(pki))
    a = add_cert(gw, open(upki["client_a"][3]).read())
    b = add_cert(gw, open(upki["client_b"][3]).read())
    # No certificate maps to this upstream: the handshake it requires fails.
    gw.add_api_file(keyless_api("none", "/none/", up.url))
    # The API's own map: exact host:port beats the gateway's "*" (Tyk's precedence).
    gw.add_api_file(keyless_api("mapped", "/mapped/", up.url,
                                upstream_certificates={f"127.0.0.1:{up.port}": a}))
    gw.reload()
    r = requests.get(gw.url("/none/x"))
    assert r.status_code == 500 and r.json() == PROXY_ERROR
    r = requests.get(gw.url("/mapped/x"))
    assert r.status_code == 200, r.text
    assert r.json()["client_cert_sha256"] == cert_sha(upki["client_a"][0])


def test_gateway_wide_upstream_certificates_and_precedence(gateway_factory, upki, upstreams, pki):
    up = upstreams(name="mtls-up2", tls_cert=upki["server"][2], tls_key=upki["server"][1],
                   client_ca=upki["ca"])
    optional = upstreams(name="asks", tls_cert=upki["server"][2], tls_key=upki["server"][1],
                         client_ca=upki["ca"], client_required=False)
    conf = {"security": {"certificates": {"upstream": {
        "*": upki["client_b"][3], f"127.0.0.1:{up.port}": upki["client_a"][3]}}}}
    gw = gateway_factory(conf=conf, env=trusted(pki), apis=[
        keyless_api("g", "/g/", up.url),
        # The API's "*" overrides the gateway's exact entry (later maps win, as in Tyk).
        keyless_api("api-star", "/s/", up.url, upstream_certificates={"*": upki["client_b"][3]}),
        # OAS mutualTLS: its exact host entry wins over the gateway's "*".
        {"openapi": "3.0.3", "info": {"title": "o", "version": "1"}, "paths": {},
         "x-tyk-api-gateway": {
             "info": {"id": "oas-m", "name": "oas-m", "state": {"active": True}},
             "upstream": {"url": optional.url.replace("127.0.0.1", "localhost"),
                          "mutualTLS": {"enabled": True, "domainToCertificateMapping": [
                              {"domain": "localhost", "certificate": upki["client_a"][3]}]}},
             "server": {"listenPath": {"value": "/o/", "strip": True}}}},
    ])
    assert requests.get(gw.url("/g/x")).json()["client_cert_sha256"] == cert_sha(upki["client_a"][0])
    assert requests.get(gw.url("/s/x")).json()["client_cert_sha256"] == cert_sha(upki["client_b"][0])
    assert requests.get(gw.url("/o/x")).json()["client_cert_sha256"] == cert_sha(upki["client_a"][0])
    # security.certificates.upstream "*" applies to every host, so to see "nothing sent" the
    # gateway-wide map must not match: a second gateway without it.
    gw2 = gateway_factory(env=trusted(pki), apis=[
        keyless_api("o2", "/o2/", optional.url.replace("127.0.0.1", "localhost"),
                    upstream_certificates={"other.test": upki["client_a"][3]})])
    r = requests.get(gw2.url("/o2/x"))
    assert r.status_code == 200 and r.json()["client_cert_sha256"] is None
    # SNI is sent for a name.
    assert r.json()["sni"] == "localhost"


# --- pinning ------------------------------------------------------------------------------------
def test_certificate_pinning(gateway_factory, upki, upstreams, pki, tmp_path):
    up = upstreams(name="pinned", tls_cert=upki["server"][2], tls_key=upki["server"][1])
    right = tmp_path / "right.pub"
    right.write_text(pubkey_pem(upki["server"][0]))
    wrong = tmp_path / "wrong.pub"
    wrong.write_text(pubkey_pem(upki["client_a"][0]))
    gw = gateway_factory(env=trusted(pki), apis=[
        keyless_api("ok", "/ok/", up.url, pinned_public_keys={"127.0.0.1": str(right)}),
        keyless_api("bad", "/bad/", up.url, pinned_public_keys={"*": str(wrong)}),
        # The intermediate's key is in the chain the upstream sends: pinned too.
        keyless_api("int", "/int/", up.url, pinned_public_keys={"127.0.0.1": pubkey_pem(pki.int_cert)}),
    ])
    assert requests.get(gw.url("/ok/x")).status_code == 200
    assert requests.get(gw.url("/int/x")).status_code == 200
    before = up.count()
    r = requests.get(gw.url("/bad/x"))
    assert r.status_code == 500 and r.json() == PROXY_ERROR
    assert up.count() == before
    assert "certificate pinning" in gw.logs()
    # A store id of a bare public key; gateway-wide pins.
    gw2 = gateway_factory(env=trusted(pki))
    kid = add_cert(gw2, pubkey_pem(upki["server"][0]))
    gw2.add_api_file(keyless_api("s", "/s/", up.url, pinned_public_keys={"127.0.0.1": kid}))
    gw2.reload()
    assert requests.get(gw2.url("/s/x")).status_code == 200


def test_leaf_pin_admits_a_self_signed_upstream_and_pins_apply_after_reload(
        gateway_factory, upki, upstreams, tmp_path):
    up = upstreams(name="self", tls_cert=upki["self"][0], tls_key=upki["self"][1])
    api = keyless_api("self", "/self/", up.url)
    gw = gateway_factory(apis=[api])
    # Not trusted by any CA: refused.
    assert requests.get(gw.url("/self/x")).status_code == 500
    # Its own key pinned: the handshake proves the upstream holds it.
    pin = tmp_path / "self.pub"
    pin.write_text(pubkey_pem(upki["self"][0]))
    api["pinned_public_keys"] = {"127.0.0.1": str(pin)}
    gw.add_api_file(api)
    gw.reload()
    s = requests.Session()
    assert s.get(gw.url("/self/1")).status_code == 200
    assert s.get(gw.url("/self/2")).status_code == 200  # a pooled upstream connection
    # The pin changes: the pooled connection (checked under the old pin) is not reused.
    pin.write_text(pubkey_pem(upki["client_a"][0]))
    gw.reload()
    r = s.get(gw.url("/self/3"))
    assert r.status_code == 500 and r.json() == PROXY_ERROR


# --- TLS policy -----------------------------------------------------------------------------------
def test_force_common_name_check_and_versions(gateway_factory, upki, upstreams, pki):
    cn = upstreams(name="cn", tls_cert=upki["cn_other"][2], tls_key=upki["cn_other"][1])
    tls12 = upstreams(name="t12", tls_cert=upki["server"][2], tls_key=upki["server"][1],
                      tls_max=ssl.TLSVersion.TLSv1_2)
    gw = gateway_factory(env=trusted(pki), apis=[
        keyless_api("cn-off", "/cn-off/", cn.url),
        keyless_api("cn-on", "/cn-on/", cn.url,
                    proxy={"transport": {"ssl_force_common_name_check": True}}),
        keyless_api("t12", "/t12/", tls12.url),
        keyless_api("t13", "/t13/", tls12.url, proxy={"transport": {"ssl_min_version": 772}}),
    ])
    assert requests.get(gw.url("/cn-off/x")).status_code == 200
    r = requests.get(gw.url("/cn-on/x"))
    assert r.status_code == 500 and "common name" in gw.logs()
    assert requests.get(gw.url("/t12/x")).status_code == 200
    assert requests.get(gw.url("/t13/x")).status_code == 500
    # Gateway-wide: proxy_ssl_min_version 772 refuses the TLS 1.2-only upstream everywhere.
    gw2 = gateway_factory(conf={"proxy_ssl_min_version": 772}, env=trusted(pki),
                          apis=[keyless_api("t12", "/t12/", tls12.url)])
    assert requests.get(gw2.url("/t12/x")).status_code == 500


def test_insecure_skip_verify_per_api_is_warned(gateway_factory, upki, upstreams):
    up = upstreams(name="untrusted", tls_cert=upki["self"][0], tls_key=upki["self"][1])
    gw = gateway_factory(apis=[
        keyless_api("strict", "/strict/", up.url),
        keyless_api("lax", "/lax/", up.url, proxy={"transport": {"ssl_insecure_skip_verify": True}}),
    ])
    assert requests.get(gw.url("/strict/x")).status_code == 500
    assert requests.get(gw.url("/lax/x")).status_code == 200
    assert "verification is disabled" in gw.logs()


# --- forward proxy ----------------------------------------------------------------------------------
class ForwardProxy:
    """A forward proxy: absolute-form requests are forwarded (one per connection), CONNECT opens
    a tunnel. Requires Basic credentials when given; records what it carried."""

    def __init__(self, user=None, password=None):
        self.seen = []
        self.want = None
        if user is not None:
            self.want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = free_port()
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read_head(c):
        buf = b""
        while b"\r\n\r\n" not in buf:
            b = c.recv(4096)
            if not b:
                return None, b""
            buf += b
        head, rest = buf.split(b"\r\n\r\n", 1)
        return head.decode("latin-1"), rest

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _serve(self, c):
        head, rest = self._read_head(c)
        if head is None:
            c.close()
            return
        lines = head.split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        self.seen.append({"method": method, "target": target,
                          "proxy_authorization": headers.get("proxy-authorization")})
        if self.want and headers.get("proxy-authorization") != self.want:
            c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n"
                      b"Connection: close\r\n\r\n")
            c.close()
            return
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            up = socket.create_connection((host.strip("[]"), int(port)))
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                up.sendall(rest)
            threading.Thread(target=self._pipe, args=(up, c), daemon=True).start()
            self._pipe(c, up)
            return
        # Absolute form: forward this one request in origin form, then close.
        assert target.startswith("http://")
        hostport, _, path = target[len("http://"):].partition("/")
        host, _, port = hostport.partition(":")
        up = socket.create_connection((host, int(port or 80)))
        out = [f"{method} /{path} HTTP/1.1"]
        for line in lines[1:]:
            k = line.partition(":")[0].strip().lower()
            if k in ("proxy-authorization", "connection"):
                continue
            out.append(line)
        out.append("Connection: close")
        up.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + rest)
        data = b""
        while True:
            d = up.recv(65536)
            if not d:
                break
            data += d
        up.close()
        c.sendall(data)
        c.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


@pytest.fixture
def fproxy():
    yield from stopping_factory(ForwardProxy)


def test_forward_proxy_http_and_https(gateway_factory, upki, upstreams, pki, fproxy, origin,
                                      tmp_path):
    px = fproxy(user="gw", password="p@ss word")
    tls_up = upstreams(name="via", tls_cert=upki["server"][2], tls_key=upki["server"][1])
    purl = f"http://gw:p%40ss%20word@127.0.0.1:{px.port}"
    wrong_pin = tmp_path / "wrong.pub"
    wrong_pin.write_text(pubkey_pem(upki["client_a"][0]))
    gw = gateway_factory(env=trusted(pki), apis=[
        keyless_api("plain", "/plain/", origin.url, proxy={"transport": {"proxy_url": purl}}),
        keyless_api("tls", "/tls/", tls_up.url, proxy={"transport": {"proxy_url": purl}}),
        keyless_api("pinned", "/pinned/", tls_up.url, proxy={"transport": {"proxy_url": purl}},
                    pinned_public_keys={"*": str(wrong_pin)}),
        keyless_api("nocreds", "/nocreds/", origin.url,
                    proxy={"transport": {"proxy_url": f"http://127.0.0.1:{px.port}"}}),
    ])
    want = "Basic " + base64.b64encode(b"gw:p@ss word").decode()
    r = requests.get(gw.url("/plain/x?q=1"), headers={"Proxy-Authorization": "Basic client-secret"})
    assert r.status_code == 200, r.text
    assert px.seen[-1] == {"method": "GET", "target": f"http://127.0.0.1:{origin.port}/x?q=1",
                           "proxy_authorization": want}
    # The client's own Proxy-Authorization never travels on.
    assert "Proxy-Authorization" not in dict(r.json()["headers"])
    r = requests.get(gw.url("/tls/y"))
    assert r.status_code == 200, r.text
    assert px.seen[-1] == {"method": "CONNECT", "target": f"127.0.0.1:{tls_up.port}",
                           "proxy_authorization": want}
    assert r.json()["path"] == "/y"
    # Pinning still applies through the tunnel.
    n = tls_up.count()
    assert requests.get(gw.url("/pinned/z")).status_code == 500
    assert tls_up.count() == n
    # The proxy refuses without credentials: a clear 500, nothing reaches the origin.
    n = origin.count()
    r = requests.get(gw.url("/nocreds/z"))
    assert r.status_code == 500 and r.json() == PROXY_ERROR
    assert origin.count() == n
    # Verification through the tunnel: an untrusted upstream is refused.
    self_up = upstreams(name="self-via", tls_cert=upki["self"][0], tls_key=upki["self"][1])
    gw.add_api_file(keyless_api("selfvia", "/selfvia/", self_up.url,
                                proxy={"transport": {"proxy_url": purl}}))
    gw.reload()
    assert requests.get(gw.url("/selfvia/z")).status_code == 500
    assert self_up.count() == 0


def test_oas_upstream_proxy(gateway_factory, fproxy, origin):
    px = fproxy()
    oas = {"openapi": "3.0.3", "info": {"title": "p", "version": "1"}, "paths": {},
           "x-tyk-api-gateway": {
               "info": {"id": "oas-proxy", "name": "p", "state": {"active": True}},
               "upstream": {"url": origin.url,
                            "proxy": {"enabled": True, "url": f"http://127.0.0.1:{px.port}"}},
               "server": {"listenPath": {"value": "/p/", "strip": True}}}}
    gw = gateway_factory(apis=[oas])
    assert requests.get(gw.url("/p/x")).status_code == 200
    assert px.seen and px.seen[-1]["target"] == f"http://127.0.0.1:{origin.port}/x"


# --- SSRF guard rails ---------------------------------------------------------------------------------
def test_internal_upstreams_refused_when_asked(gateway_factory, origin):
    apis = [keyless_api("ip", "/ip/", origin.url),
            keyless_api("name", "/name/", origin.url.replace("127.0.0.1", "localhost")),
            keyless_api("meta", "/meta/", "http://169.254.169.254:80")]
    gw = gateway_factory(conf={"gatehouse": {"upstream_guard": {"deny_internal": True}}}, apis=apis)
    n = origin.count()
    for p in ("/ip/x", "/name/x", "/meta/latest/meta-data/"):
        r = requests.get(gw.url(p), timeout=10)
        assert r.status_code == 500 and r.json() == PROXY_ERROR, p
    assert origin.count() == n
    assert "upstream_guard" in gw.logs()
    # Allowed ranges pass; the rest stay refused.
    gw2 = gateway_factory(conf={"gatehouse": {"upstream_guard": {
        "deny_internal": True, "allow": ["127.0.0.0/8", "::1"]}}}, apis=apis)
    assert requests.get(gw2.url("/ip/x")).status_code == 200
    assert requests.get(gw2.url("/name/x")).status_code == 200
    assert requests.get(gw2.url("/meta/x"), timeout=10).status_code == 500
    # Off by default (upstreams on private networks are the common case).
    gw3 = gateway_factory(apis=apis)
    assert requests.get(gw3.url("/ip/x")).status_code == 200


def test_guard_config_errors_name_the_field(gateway_factory):
    gw = gateway_factory(conf={"gatehouse": {"upstream_guard": {"deny_internal": True,
                                                                "allow": ["10.0.0.0/33"]}}},
                         start=False)
    gw.start(wait=False)
    assert gw.proc.wait(timeout=20) != 0
    assert 'gatehouse.upstream_guard.allow[0]' in gw.logs()


def test_redirects_are_passed_to_the_client_never_followed(gateway_factory, upstreams):
    import http.server

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Redirect)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        gw = gateway_factory(apis=[keyless_api("r", "/r/", f"http://127.0.0.1:{srv.server_port}")])
        r = requests.get(gw.url("/r/x"), allow_redirects=False)
        assert r.status_code == 302
        assert r.headers["Location"] == "http://169.254.169.254/latest/meta-data/"
    finally:
        srv.shutdown()


# --- connection reuse -----------------------------------------------------------------------------
def test_upstream_closing_quietly_after_each_response(gateway_factory):
    """An upstream that keeps HTTP/1.1 framing but closes every connection right after its
    response, without saying so: the next request must not fail on the dead pooled connection
    (an idempotent one is retried on a fresh connection, a POST is only sent on one that was
    checked), and nothing is sent twice. The upstream has closed before the next request is
    made, so each POST meets a connection that is already dead."""
    got = []
    closed = queue.Queue()
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = free_port()
    lsock.bind(("127.0.0.1", port))
    lsock.listen(16)

    def serve():
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data:
                d = c.recv(4096)
                if not d:
                    break
                data += d
            if not data:
                c.close()
                continue
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v)
            body = data.split(b"\r\n\r\n", 1)[1]
            while len(body) < length:
                body += c.recv(4096)
            got.append(head.split("\r\n")[0])
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            c.close()
            closed.put(True)
    threading.Thread(target=serve, daemon=True).start()
    try:
        gw = gateway_factory(apis=[keyless_api("q", "/q/", f"http://127.0.0.1:{port}")])
        s = requests.Session()
        for i in range(6):
            r = s.get(gw.url(f"/q/get{i}"))
            assert r.status_code == 200, (i, r.text)
            closed.get(timeout=5)
            r = s.post(gw.url(f"/q/post{i}"), data=b"payload")
            assert r.status_code == 200, (i, r.text)
            closed.get(timeout=5)
        assert len([g for g in got if g.startswith("POST")]) == 6
        assert len([g for g in got if g.startswith("GET")]) == 6
    finally:
        lsock.close()
