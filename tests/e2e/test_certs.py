"""The certificate store's control API (`/tyk/certs`), end to end, with Tyk's statuses, messages
and shapes (COMPAT "Certificates and TLS"): add (certificate with key, certificate alone, chain,
bare public key), ids (org + SHA-256 of the leaf's DER, or of the public key), duplicates, expired
certificates, two private keys, a key that does not match, bad input; listing (plain and
detailed, per org), one and several ids, delete; private keys sealed at rest (no key material in
the store file or in Redis), on the embedded store and on Redis."""
import datetime
import hashlib
import json
import sqlite3

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOT_FOUND = {"status": "error", "message": "Certificate with given SHA256 fingerprint not found"}


def make_cert(cn, days=30, expired=False, ca=False, issuer=None, sans=None):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    if expired:
        nb, na = now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)
    else:
        nb, na = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gatehouse Tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    iss_name, iss_key = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(iss_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(nb).not_valid_after(na)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]),
                            critical=False)
    cert = b.sign(iss_key, hashes.SHA256())
    return cert, key


def pem_cert(c):
    return c.public_bytes(serialization.Encoding.PEM).decode()


def pem_key(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption()).decode()


def der_sha(c):
    return hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest()


def post(gw, pem, org="org1"):
    q = f"?org_id={org}" if org is not None else ""
    return gw.admin("POST", "/tyk/certs" + q, raw=pem)


@pytest.fixture(params=["embedded", "redis"])
def cgw(request, gateway_factory, redis_factory):
    conf = {"security": {"private_certificate_encoding_secret": "cert-sealing-secret-1"}}
    if request.param == "redis":
        r = redis_factory()
        conf.update({"storage": r.storage_conf(), "gatehouse": {"store": {"type": "redis"}}})
    gw = gateway_factory(conf=conf)
    gw.redis = r if request.param == "redis" else None
    return gw


def stored_bytes(gw):
    """Everything the store holds, as bytes."""
    if gw.redis is not None:
        out = b""
        for k in gw.redis.cli("--scan").split():
            out += k.encode() + gw.redis.cli("GET", k).encode()
        return out
    db = sqlite3.connect(str(gw.dir / "gatehouse.db"))
    rows = db.execute("SELECT k, v FROM kv").fetchall()
    db.close()
    return b"".join(k.encode() + (v if isinstance(v, bytes) else v.encode()) for k, v in rows)


def test_add_get_list_delete(cgw):
    cert, key = make_cert("api.example.com", sans=["api.example.com", "www.example.com"])
    r = post(cgw, pem_cert(cert) + pem_key(key))
    cid = "org1" + der_sha(cert)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": cid, "status": "ok", "message": "Certificate added"}
    # The private key is sealed: no part of it is in the store.
    secret_body = pem_key(key).splitlines()[1]
    raw = stored_bytes(cgw)
    assert f"cert-raw-{cid}".encode() in raw
    assert secret_body.encode() not in raw and b"BEGIN PRIVATE KEY" not in raw
    # One certificate.
    r = cgw.admin("GET", f"/tyk/certs/{cid}")
    assert r.status_code == 200
    m = r.json()
    assert m["id"] == cid and m["fingerprint"] == der_sha(cert) and m["has_private"] is True
    assert m["subject"]["CommonName"] == "api.example.com"
    assert m["subject"]["Organization"] == ["Gatehouse Tests"]
    assert m["issuer"]["CommonName"] == "api.example.com"
    assert m["dns_names"] == ["api.example.com", "www.example.com"]
    assert m["is_ca"] is False
    assert m["not_after"].endswith("Z") and m["not_before"] < m["not_after"]
    # A certificate alone, and a CA.
    ca, ca_key = make_cert("Test CA", ca=True)
    r = post(cgw, pem_cert(ca))
    assert r.status_code == 200
    ca_id = r.json()["id"]
    assert cgw.admin("GET", f"/tyk/certs/{ca_id}").json()["has_private"] is False
    assert cgw.admin("GET", f"/tyk/certs/{ca_id}").json()["is_ca"] is True
    # Listing, per org.
    r = cgw.admin("GET", "/tyk/certs?org_id=org1")
    assert r.status_code == 200 and sorted(r.json()["certs"]) == sorted([cid, ca_id])
    assert cgw.admin("GET", "/tyk/certs?org_id=org2").json() == {"certs": None}
    d = cgw.admin("GET", "/tyk/certs?org_id=org1&mode=detailed").json()["certs"]
    by_id = {x["id"]: x for x in d}
    assert by_id[cid]["subject_cn"] == "api.example.com" and by_id[cid]["has_private"] is True
    assert by_id[ca_id]["is_ca"] is True
    assert cgw.admin("GET", "/tyk/certs?org_id=org2&mode=detailed").json() == {"certs": []}
    # Several ids: an array, null for a missing one.
    r = cgw.admin("GET", f"/tyk/certs/{cid},org1{'0' * 64},{ca_id}")
    assert r.status_code == 200
    arr = r.json()
    assert [x["id"] if x else None for x in arr] == [cid, None, ca_id]
    # Delete (always "removed", as in Tyk), then gone.
    r = cgw.admin("DELETE", f"/tyk/certs/{cid}?org_id=org1")
    assert r.status_code == 200 and r.json() == {"status": "ok", "message": "removed"}
    r = cgw.admin("GET", f"/tyk/certs/{cid}")
    assert r.status_code == 404 and r.json() == NOT_FOUND
    assert cgw.admin("DELETE", f"/tyk/certs/{cid}").json() == {"status": "ok",
                                                                "message": "removed"}


def test_add_refusals(cgw):
    cert, key = make_cert("dup.example.com")
    assert post(cgw, pem_cert(cert) + pem_key(key)).status_code == 200
    cid = "org1" + der_sha(cert)
    other_cert, other_key = make_cert("other.example.com")
    expired, expired_key = make_cert("old.example.com", expired=True)
    cases = [
        (pem_cert(cert), f"Certificate with {cid} id already exists"),
        (pem_cert(cert) + pem_key(key), f"Certificate with {cid} id already exists"),
        (pem_cert(expired) + pem_key(expired_key), "certificate is expired"),
        (pem_cert(other_cert) + pem_key(key), "tls: private key does not match public key"),
        (pem_cert(other_cert) + pem_key(other_key) + pem_key(key), "Found multiple private keys"),
        ("", "Failed to decode certificate. It should be PEM encoded."),
        ("not a certificate", "Failed to decode certificate. It should be PEM encoded."),
        (pem_key(key), "Failed to decode certificate. It should be PEM encoded."),
        (pem_cert(other_cert) + other_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
         "Public keys can't be combined with certificates"),
    ]
    for body, message in cases:
        r = post(cgw, body)
        assert r.status_code == 403, (message, r.text)
        assert r.json() == {"status": "error", "message": message}
    # Nothing of those was stored.
    assert cgw.admin("GET", "/tyk/certs?org_id=org1").json() == {"certs": [cid]}


def test_public_key_and_chain(cgw):
    ca, ca_key = make_cert("Chain CA", ca=True)
    leaf, leaf_key = make_cert("leaf.example.com", issuer=(ca, ca_key))
    r = post(cgw, pem_cert(leaf) + pem_cert(ca) + pem_key(leaf_key), org="")
    assert r.status_code == 200
    assert r.json()["id"] == der_sha(leaf)  # the leaf names the chain
    pub = leaf_key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    spki = leaf_key.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    r = post(cgw, pub.decode(), org="pins")
    assert r.status_code == 200
    pid = "pins" + hashlib.sha256(spki).hexdigest()
    assert r.json()["id"] == pid
    m = cgw.admin("GET", f"/tyk/certs/{pid}").json()
    assert m["fingerprint"] == "" and m["subject"]["CommonName"].startswith("Public Key: ")


def test_certs_api_needs_the_secret_and_methods(cgw):
    cert, key = make_cert("x.example.com")
    r = cgw.admin("POST", "/tyk/certs", raw=pem_cert(cert), secret="wrong")
    assert r.status_code == 403
    assert cgw.admin("GET", "/tyk/certs", secret=None).status_code == 403
    assert cgw.admin("PUT", "/tyk/certs/abc").status_code == 405
    assert cgw.admin("DELETE", "/tyk/certs").status_code == 405
    assert cgw.admin("GET", "/tyk/certs?org_id=").json() == {"certs": None}


def test_sealed_keys_need_their_secret(gateway_factory):
    """Keys sealed under one secret are not readable under another: the certificate is then
    reported as not found, never served with a wrong key."""
    gw = gateway_factory(conf={"security": {"private_certificate_encoding_secret": "first-secret"}})
    cert, key = make_cert("s.example.com")
    cid = post(gw, pem_cert(cert) + pem_key(key)).json()["id"]
    assert gw.stop() == 0
    conf = json.loads(gw.conf_path.read_text())
    conf["security"]["private_certificate_encoding_secret"] = "second-secret"
    gw.conf_path.write_text(json.dumps(conf))
    gw.start()
    r = gw.admin("GET", f"/tyk/certs/{cid}")
    assert r.status_code == 404 and r.json() == NOT_FOUND


def test_expiring_certificates_are_reported(gateway_factory, tmp_path):
    import subprocess
    from conftest import BIN
    soon, soon_key = make_cert("soon.example.com", days=5)
    later, later_key = make_cert("later.example.com", days=365)
    cert_file = tmp_path / "server.pem"
    key_file = tmp_path / "server.key"
    cert_file.write_text(pem_cert(later))
    key_file.write_text(pem_key(later_key))
    gw = gateway_factory(conf={"http_server_options": {"use_ssl": True, "certificates": [
        {"domain_name": "later.example.com", "cert_file": str(cert_file),
         "key_file": str(key_file)}]}})
    r = post(gw, pem_cert(soon) + pem_key(soon_key))
    assert r.status_code == 200
    soon_id = r.json()["id"]
    gw.reload()
    assert "certificate expires soon" in gw.logs() and soon_id in gw.logs()
    assert gw.stop() == 0
    out = subprocess.run([BIN, "cert", "expiring", "--conf", str(gw.conf_path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert soon_id in out.stdout and "soon.example.com" in out.stdout
    assert "later.example.com" not in out.stdout
    out = subprocess.run([BIN, "cert", "expiring", "--days", "400", "--conf",
                          str(gw.conf_path)], capture_output=True, text=True, timeout=30)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and "soon.example.com" in lines[0] and str(cert_file) in lines[1]
    bad = subprocess.run([BIN, "cert", "expiring", "--days", "x", "--conf", str(gw.conf_path)],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2
