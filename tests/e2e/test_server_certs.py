"""Server certificates from everywhere Tyk names them, and their rotation: store ids in
`http_server_options.ssl_certificates`, each API's `certificates` (store ids or files) on its
custom `domain`, chosen by SNI; a certificate replaced in its file or in the store serves new
handshakes after a reload while connections already open keep working; a broken replacement is
logged and the previous certificate stays in use."""
import hashlib
import shutil

from conftest import keyless_api, tls_connect, tls_request

SECRET = "server-cert-sealing-secret"


def served(port, sni=None):
    """SHA-256 of the certificate the gateway presents for `sni`."""
    s = tls_connect(port, sni)
    try:
        return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
    finally:
        s.close()


def leaf_sha(pem_file):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    c = x509.load_pem_x509_certificate(open(pem_file, "rb").read())
    return hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest()


def tls_conf(certs):
    return {"enable_custom_domains": True,
            "security": {"private_certificate_encoding_secret": SECRET},
            "http_server_options": {"use_ssl": True, "ssl_certificates": certs}}


def test_store_ids_in_ssl_certificates(gateway_factory, pki, tmp_path, origin):
    db = str(tmp_path / "shared.db")
    store = {"gatehouse": {"store": {"type": "embedded", "path": db}},
             "security": {"private_certificate_encoding_secret": SECRET}}
    # A plain gateway on the same store file puts the certificate (with its key) in the store.
    g1 = gateway_factory(conf=store)
    main = pki.leaf("store-main", ["gw.example.com", "127.0.0.1"])
    r = g1.admin("POST", "/tyk/certs?org_id=o", raw=open(main[3]).read())
    assert r.status_code == 200, r.text
    cid = r.json()["id"]
    g1.stop()
    conf = tls_conf([cid])
    conf["gatehouse"] = store["gatehouse"]
    g2 = gateway_factory(conf=conf, apis=[keyless_api("k", "/k/", origin.url)])
    assert served(g2.port, "gw.example.com") == leaf_sha(main[0])
    s = tls_connect(g2.port, "gw.example.com")
    try:
        assert tls_request(s, "gw.example.com", "/k/x").status == 200
    finally:
        s.close()
    # A store id that is not there stops the start with the field named.
    g3 = gateway_factory(conf={**tls_conf(["o" + "0" * 64])}, start=False)
    g3.start(wait=False)
    assert g3.proc.wait(timeout=20) != 0
    assert 'field "http_server_options.ssl_certificates[0]"' in g3.logs()


def test_api_certificates_on_custom_domains_and_rotation(gateway_factory, pki, origin):
    default = pki.leaf("srv-default", ["default.example.com", "127.0.0.1"])
    api1 = pki.leaf("srv-api1", ["api.example.com"])
    api1b = pki.leaf("srv-api1-renewed", ["api.example.com"])
    filed = pki.leaf("srv-filed", ["files.example.com"])
    gw = gateway_factory(conf=tls_conf([default[3]]), apis=[
        keyless_api("d", "/", origin.url)])
    id1 = gw.admin("POST", "/tyk/certs?org_id=o", raw=open(api1[3]).read()).json()["id"]
    gw.add_api_file(keyless_api("a", "/", origin.url, domain="api.example.com",
                                certificates=[id1]))
    gw.add_api_file(keyless_api("f", "/", origin.url, domain="files.example.com",
                                certificates=[filed[3]]))
    gw.reload()
    assert served(gw.port, "api.example.com") == leaf_sha(api1[0])
    assert served(gw.port, "files.example.com") == leaf_sha(filed[0])
    assert served(gw.port, "other.example.com") == leaf_sha(default[0])
    assert served(gw.port) == leaf_sha(default[0])
    # Renewal through the store: the new certificate is added, the API names it, the old one is
    # removed; after the reload new handshakes get it and an open connection keeps working.
    open_conn = tls_connect(gw.port, "api.example.com")
    try:
        assert tls_request(open_conn, "api.example.com", "/1").status == 200
        id2 = gw.admin("POST", "/tyk/certs?org_id=o", raw=open(api1b[3]).read()).json()["id"]
        gw.add_api_file(keyless_api("a", "/", origin.url, domain="api.example.com",
                                    certificates=[id2]))
        assert gw.admin("DELETE", f"/tyk/certs/{id1}?org_id=o").status_code == 200
        gw.reload()
        assert served(gw.port, "api.example.com") == leaf_sha(api1b[0])
        assert tls_request(open_conn, "api.example.com", "/2").status == 200
    finally:
        open_conn.close()
    # An API naming a certificate the store does not hold: logged, left out, the rest served.
    gw.add_api_file(keyless_api("m", "/", origin.url, domain="missing.example.com",
                                certificates=["o" + "1" * 64]))
    gw.reload()
    assert "API certificate" in gw.logs()
    assert served(gw.port, "missing.example.com") == leaf_sha(default[0])
    assert served(gw.port, "api.example.com") == leaf_sha(api1b[0])


def test_certificate_file_replaced_then_broken(gateway_factory, pki, origin, tmp_path):
    first = pki.leaf("rot-1", ["rot.example.com", "127.0.0.1"])
    second = pki.leaf("rot-2", ["rot.example.com", "127.0.0.1"])
    live = tmp_path / "live.pem"
    shutil.copy(first[3], live)
    gw = gateway_factory(conf=tls_conf([str(live)]), apis=[keyless_api("k", "/", origin.url)])
    assert served(gw.port, "rot.example.com") == leaf_sha(first[0])
    open_conn = tls_connect(gw.port, "rot.example.com")
    try:
        assert tls_request(open_conn, "rot.example.com", "/1").status == 200
        shutil.copy(second[3], live)
        gw.reload()
        assert served(gw.port, "rot.example.com") == leaf_sha(second[0])
        # The connection made before the reload is still served.
        assert tls_request(open_conn, "rot.example.com", "/2").status == 200
        # A broken replacement: logged, and the certificate in use stays.
        live.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n")
        gw.reload()
        assert "server certificates not reloaded" in gw.logs()
        assert served(gw.port, "rot.example.com") == leaf_sha(second[0])
        assert tls_request(open_conn, "rot.example.com", "/3").status == 200
    finally:
        open_conn.close()
