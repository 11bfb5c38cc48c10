"""TLS termination: versions, ciphers, SNI certificate choice, chain, ALPN, tickets,
renegotiation, plain HTTP on the TLS port, and verified https upstreams."""
import json
import socket
import ssl
import subprocess
import time

import pytest
import requests

from conftest import Origin, keyless_api, raw_request, status_of


@pytest.fixture(scope="module")
def certs(pki):
    return {
        "default": pki.leaf("default", ["default.test", "127.0.0.1"], kind="ec"),
        "a": pki.leaf("a", ["a.test"], kind="rsa"),
        "b": pki.leaf("b", ["b.test", "*.b.test"], kind="ec"),
    }


def tls_conf(certs, **http_opts):
    opts = {
        "use_ssl": True,
        "certificates": [
            {"domain_name": "a.test", "cert_file": certs["a"][2], "key_file": certs["a"][1]},
            {"domain_name": "*.b.test", "cert_file": certs["b"][2], "key_file": certs["b"][1]},
            {"domain_name": "b.test", "cert_file": certs["b"][2], "key_file": certs["b"][1]},
        ],
        "ssl_certificates": [certs["default"][3]],
    }
    opts.update(http_opts)
    return {"http_server_options": opts}


def client_ctx(pki, **kw):
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def handshake(port, ctx, sni):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            return t.version(), t.cipher()[0], t.getpeercert(), t.selected_alpn_protocol()


def s_client(port, *args, sni=None, input_=b"", timeout=10):
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}"]
    if sni:
        cmd += ["-servername", sni]
    else:
        cmd += ["-noservername"]
    cmd += list(args)
    p = subprocess.run(cmd, input=input_, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def cn_of(cert):
    for rdn in cert["subject"]:
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


@pytest.fixture
def tls_gw(gateway_factory, origin, certs):
    return gateway_factory(conf=tls_conf(certs), apis=[keyless_api("echo", "/echo/", origin.url)])


def test_tls12_and_tls13_by_default(tls_gw, pki):
    v, *_ = handshake(tls_gw.port, client_ctx(pki, maximum_version=ssl.TLSVersion.TLSv1_2), "a.test")
    assert v == "TLSv1.2"
    v, *_ = handshake(tls_gw.port, client_ctx(pki), "a.test")
    assert v == "TLSv1.3"


def test_tls11_and_10_refused_by_default(tls_gw):
    for flag in ("-tls1_1", "-tls1"):
        rc, out = s_client(tls_gw.port, flag, "-cipher", "DEFAULT:@SECLEVEL=0", sni="a.test")
        assert rc != 0, out
        assert "New, (NONE), Cipher is (NONE)" in out, out


def test_tls11_only_when_asked_and_warned(gateway_factory, origin, certs):
    gw = gateway_factory(conf=tls_conf(certs, min_version=770),
                         apis=[keyless_api("echo", "/echo/", origin.url)])
    rc, out = s_client(gw.port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", sni="a.test",
                       input_=b"Q\n")
    assert "TLSv1.1" in out, out
    assert "TLS 1.0/1.1" in gw.logs()


def test_min_version_tls13(gateway_factory, origin, certs, pki):
    gw = gateway_factory(conf=tls_conf(certs, min_version=772),
                         apis=[keyless_api("echo", "/echo/", origin.url)])
    with pytest.raises(ssl.SSLError):
        handshake(gw.port, client_ctx(pki, maximum_version=ssl.TLSVersion.TLSv1_2), "a.test")
    assert handshake(gw.port, client_ctx(pki), "a.test")[0] == "TLSv1.3"


def test_cipher_suites_from_go_names(gateway_factory, origin, certs, pki):
    gw = gateway_factory(conf=tls_conf(certs, ssl_ciphers=["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]),
                         apis=[keyless_api("echo", "/echo/", origin.url)])
    ctx = client_ctx(pki, maximum_version=ssl.TLSVersion.TLSv1_2)
    v, cipher, *_ = handshake(gw.port, ctx, "b.test")
    assert (v, cipher) == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")
    ctx = client_ctx(pki, maximum_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with pytest.raises(ssl.SSLError):
        handshake(gw.port, ctx, "b.test")


def test_unknown_cipher_is_a_config_error(gateway_factory, certs):
    gw = gateway_factory(conf=tls_conf(certs, ssl_ciphers=["TLS_NOT_A_CIPHER"]), start=False)
    gw.start(wait=False)
    assert gw.proc.wait(timeout=10) != 0
    assert "http_server_options.ssl_ciphers" in gw.logs() and "TLS_NOT_A_CIPHER" in gw.logs()


def test_sni_chooses_certificate(tls_gw, pki):
    ctx = client_ctx(pki)
    assert cn_of(handshake(tls_gw.port, ctx, "a.test")[2]) == "a.test"
    assert cn_of(handshake(tls_gw.port, ctx, "b.test")[2]) == "b.test"
    assert cn_of(handshake(tls_gw.port, ctx, "x.b.test")[2]) == "b.test"
    # Unknown SNI and no SNI: the ssl_certificates certificate, never another domain's.
    ctx_nocheck = client_ctx(pki, check_hostname=False)
    assert cn_of(handshake(tls_gw.port, ctx_nocheck, "unknown.test")[2]) == "default.test"
    assert cn_of(handshake(tls_gw.port, ctx_nocheck, None)[2]) == "default.test"


def test_without_ssl_certificates_first_configured(gateway_factory, origin, certs, pki):
    conf = tls_conf(certs)
    conf["http_server_options"]["ssl_certificates"] = []
    gw = gateway_factory(conf=conf, apis=[keyless_api("echo", "/echo/", origin.url)])
    ctx = client_ctx(pki, check_hostname=False)
    assert cn_of(handshake(gw.port, ctx, "unknown.test")[2]) == "a.test"
    assert cn_of(handshake(gw.port, ctx, "b.test")[2]) == "b.test"


def test_rsa_and_ecdsa_certificates(tls_gw):
    _, out = s_client(tls_gw.port, "-tls1_2", sni="a.test", input_=b"Q\n")
    assert "Server public key is 2048 bit" in out, out
    _, out = s_client(tls_gw.port, "-tls1_2", sni="b.test", input_=b"Q\n")
    assert "Server public key is 256 bit" in out, out


def test_full_chain_served(tls_gw, pki):
    _, out = s_client(tls_gw.port, "-showcerts", sni="a.test", input_=b"Q\n")
    assert out.count("BEGIN CERTIFICATE") == 2, out
    # Verification with only the root works because the intermediate is sent.
    r = requests.get(f"https://127.0.0.1:{tls_gw.port}/hello", verify=False)
    assert r.status_code == 200
    rc, out = s_client(tls_gw.port, "-CAfile", str(pki.ca), "-verify_return_error", sni="a.test",
                       input_=b"Q\n")
    assert "Verify return code: 0 (ok)" in out, out


def test_alpn_offers_only_http11(tls_gw, pki):
    ctx = client_ctx(pki)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    assert handshake(tls_gw.port, ctx, "a.test")[3] == "http/1.1"
    ctx = client_ctx(pki)
    ctx.set_alpn_protocols(["h2"])
    assert handshake(tls_gw.port, ctx, "a.test")[3] is None


def test_session_tickets_resume(tls_gw, pki):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(pki, maximum_version=version, minimum_version=version)
        with socket.create_connection(("127.0.0.1", tls_gw.port)) as s:
            with ctx.wrap_socket(s, server_hostname="a.test") as t:
                t.sendall(b"GET /hello HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                while t.recv(4096):
                    pass
                session = t.session
        assert session is not None
        with socket.create_connection(("127.0.0.1", tls_gw.port)) as s:
            with ctx.wrap_socket(s, server_hostname="a.test", session=session) as t:
                assert t.session_reused, version


def test_renegotiation_refused(tls_gw):
    # "R" asks s_client to renegotiate; the gateway must refuse and never complete a second
    # handshake.
    rc, out = s_client(tls_gw.port, "-tls1_2", sni="a.test", input_=b"R\n", timeout=10)
    assert "RENEGOTIATING" in out
    assert "no renegotiation" in out.lower() or "alert" in out.lower() or rc != 0, out


def test_plain_http_on_tls_port_refused(tls_gw, origin):
    out = raw_request(tls_gw.port, b"GET /echo/ HTTP/1.1\r\nHost: a.test\r\n\r\n")
    assert status_of(out) == 400
    assert b"Client sent an HTTP request to an HTTPS server." in out
    assert origin.count() == 0


def test_https_request_proxied(tls_gw, origin, pki):
    r = requests.get(f"https://127.0.0.1:{tls_gw.port}/echo/x", verify=False, headers={"Host": "a.test"})
    assert r.status_code == 200 and r.json()["path"] == "/x"


# --- upstream TLS verification --------------------------------------------------------------
def test_https_upstream_verified_with_ssl_cert_file(gateway_factory, pki):
    cert, key, chain, _ = pki.leaf("upstream", ["127.0.0.1", "localhost"])
    up = Origin("tls-origin", tls_cert=chain, tls_key=key)
    try:
        api = keyless_api("secure", "/secure/", up.url)
        gw = gateway_factory(apis=[api], env={"SSL_CERT_FILE": str(pki.ca)})
        r = requests.get(gw.url("/secure/x"))
        assert r.status_code == 200, r.text
        assert r.json()["path"] == "/x"
        # Not trusted without the test root: refused, nothing about the secret in the error.
        gw2 = gateway_factory(apis=[api], env={"SSL_CERT_FILE": "/nonexistent"})
        before = up.count()
        r = requests.get(gw2.url("/secure/x"))
        assert r.status_code == 500
        assert r.json() == {"error": "There was a problem proxying the request"}
        assert up.count() == before
        assert "certificate" in gw2.logs()
    finally:
        up.stop()


def test_https_upstream_wrong_host_name_refused(gateway_factory, pki):
    cert, key, chain, _ = pki.leaf("wronghost", ["other.test"])
    up = Origin("tls-wrong", tls_cert=chain, tls_key=key)
    try:
        gw = gateway_factory(apis=[keyless_api("w", "/w/", up.url)], env={"SSL_CERT_FILE": str(pki.ca)})
        r = requests.get(gw.url("/w/x"))
        assert r.status_code == 500
        assert up.count() == 0
    finally:
        up.stop()


def _resume(port, ctx, session):
    with socket.create_connection(("127.0.0.1", port)) as s:
        with ctx.wrap_socket(s, server_hostname="a.test", session=session) as t:
            t.sendall(b"GET /hello HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            while t.recv(4096):
                pass
            return t.session_reused, t.session


def test_ticket_keys_rotate_in_memory(gateway_factory, origin, certs, pki):
    # Rotation every 2 s: a ticket still resumes after one rotation (the previous key decrypts
    # it) and no longer after two.
    conf = tls_conf(certs)
    conf["gatehouse"] = {"ticket_key_rotation": 2}
    gw = gateway_factory(conf=conf, apis=[keyless_api("echo", "/echo/", origin.url)])
    ctx = client_ctx(pki, maximum_version=ssl.TLSVersion.TLSv1_2)
    _, session = _resume(gw.port, ctx, None)
    time.sleep(2.5)
    reused, _ = _resume(gw.port, ctx, session)
    assert reused
    time.sleep(4.5)
    reused, _ = _resume(gw.port, ctx, session)
    assert not reused
    # A fresh ticket, then a quiet spell of more than two periods: not resumed either.
    _, session = _resume(gw.port, ctx, None)
    time.sleep(4.5)
    reused, _ = _resume(gw.port, ctx, session)
    assert not reused
