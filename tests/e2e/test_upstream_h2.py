"""HTTP/2 towards upstreams, end to end against a real HTTP/2 server (Python h2, tests/e2e/
h2_origin.py) over TLS with ALPN offering h2 only, and cleartext with prior knowledge (h2c://):
`proxy_enable_http2` negotiates h2 in ALPN and falls back to HTTP/1.1 when the upstream chooses
it; requests of HTTP/1.1 and HTTP/2 clients are multiplexed on few connections per worker;
bodies both ways with and without a length, trailers, resets, timeouts that reset one stream
and leave the connection to the others, a GOAWAY, and verification still applied."""
import concurrent.futures
import json
import subprocess
import time

import pytest
import requests

from conftest import Origin, keyless_api, raw_request
from h2_origin import H2Origin

PROXY_ERROR = {"error": "There was a problem proxying the request"}


@pytest.fixture(scope="module")
def h2cert(pki):
    return pki.leaf("h2-upstream", ["localhost", "127.0.0.1"])


@pytest.fixture
def h2up(h2cert):
    made = []

    def make(tls=True):
        o = H2Origin(tls_cert=h2cert[2] if tls else None, tls_key=h2cert[1] if tls else None)
        made.append(o)
        return o
    yield make
    for o in made:
        o.stop()


def trusted(pki):
    return {"SSL_CERT_FILE": str(pki.ca)}


def h2_conf(**extra):
    conf = {"proxy_enable_http2": True}
    conf.update(extra)
    return conf


def test_proxy_enable_http2_speaks_h2_over_tls(gateway_factory, h2up, pki):
    up = h2up()
    gw = gateway_factory(conf=h2_conf(), env=trusted(pki),
                         apis=[keyless_api("h2", "/h2/", up.url + "/base")])
    r = requests.get(gw.url("/h2/echo?a=1&b=2"), headers={"X-Custom": "v1", "Connection": "x-hop",
                                                         "X-Hop": "secret", "TE": "gzip"})
    te = requests.get(gw.url("/h2/echo"), headers={"TE": "trailers"}).json()
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["alpn"] == "h2"
    assert rec["method"] == "GET"
    assert rec["path"] == "/base/echo?a=1&b=2"
    assert rec["scheme"] == "https"
    assert rec["authority"] == f"127.0.0.1:{up.port}"
    names = [k for k, _ in rec["headers"]]
    assert ["x-custom", "v1"] in rec["headers"]
    assert "x-forwarded-for" in names
    # HTTP/1.1 connection fields never reach an HTTP/2 upstream (RFC 9113 8.2.2).
    for hop in ("connection", "x-hop", "te", "host", "keep-alive", "transfer-encoding"):
        assert hop not in names, rec["headers"]
    # "TE: trailers" is the one TE an HTTP/2 request carries (gRPC upstreams require it).
    assert ["te", "trailers"] in te["headers"], te["headers"]
    # The upstream's fields reach the HTTP/1.1 client in their usual spelling.
    assert r.headers["Content-Type"] == "application/json"
    assert "X-Origin: h2origin" in "\n".join(f"{k}: {v}" for k, v in r.raw.headers.items())
    # HEAD and a status without a body.
    h = requests.head(gw.url("/h2/echo"))
    assert h.status_code == 200 and h.content == b""
    s = requests.get(gw.url("/h2/status?code=204"))
    assert s.status_code == 204 and s.content == b""
    assert "upstream HTTP/2" not in gw.logs()


def test_request_and_response_bodies_and_trailers(gateway_factory, h2up, pki):
    up = h2up()
    gw = gateway_factory(conf=h2_conf(), env=trusted(pki),
                         apis=[keyless_api("h2", "/h2/", up.url)])
    # A body with a length, larger than the upstream's initial window (65535).
    body = bytes(range(256)) * 1024
    r = requests.post(gw.url("/h2/echo"), data=body)
    assert r.status_code == 200, r.text
    assert r.json()["body"].encode("latin-1") == body
    # A chunked request body of unknown length.
    r = requests.post(gw.url("/h2/echo"), data=(b"part%d;" % i for i in range(50)))
    assert r.status_code == 200, r.text
    assert r.json()["body"] == "".join(f"part{i};" for i in range(50))
    assert "content-length" not in [k for k, _ in r.json()["headers"]]
    # A large response (many windows' worth) arrives whole.
    r = requests.get(gw.url("/h2/big?n=3000000"))
    assert r.status_code == 200 and len(r.content) == 3000000 and set(r.content) == {ord("y")}
    # No content-length from the upstream: the HTTP/1.1 client gets it chunk-framed, whole,
    # with the upstream's trailers.
    out = subprocess.run(["curl", "-s", "--raw", "-H", "TE: trailers", gw.url("/h2/chunked?n=4")],
                         capture_output=True, timeout=10)
    raw = out.stdout
    assert b"chunk-0;" in raw and b"chunk-3;" in raw
    assert raw.endswith(b"0\r\nX-Checksum: abc123\r\n\r\n"), raw[-80:]
    r = requests.get(gw.url("/h2/chunked?n=3"))
    assert r.status_code == 200 and r.content == b"chunk-0;chunk-1;chunk-2;"


def test_streams_are_multiplexed_on_few_connections(gateway_factory, h2up, pki):
    up = h2up()
    gw = gateway_factory(conf=h2_conf(), env=trusted(pki),
                         apis=[keyless_api("h2", "/h2/", up.url)])

    def one(i):
        return requests.get(gw.url(f"/h2/slow?s=0.5&i={i}"), timeout=20).status_code

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(60) as ex:
        codes = list(ex.map(one, range(60)))
    took = time.monotonic() - start
    assert codes == [200] * 60
    # 60 requests at once on a 0.5 s upstream: concurrent streams, not a queue.
    assert took < 8, took
    # One connection per worker (two workers), however many requests ran at once.
    conns = {rec["connection"] for rec in up.requests}
    assert 1 <= len(conns) <= 2, conns
    assert up.connections <= 2
    # The connections stay for the next requests.
    for _ in range(5):
        assert requests.get(gw.url("/h2/echo")).status_code == 200
    assert up.connections <= 2


def test_http2_clients_end_to_end(gateway_factory, h2up, pki, tmp_path):
    up = h2up()
    cert = pki.leaf("gw-h2", ["localhost", "127.0.0.1"])
    gw = gateway_factory(conf=h2_conf(http_server_options={
        "use_ssl": True, "enable_http2": True,
        "certificates": [{"domain_name": "*", "cert_file": cert[2], "key_file": cert[1]}]}),
        env=trusted(pki), apis=[keyless_api("h2", "/h2/", up.url)])
    out = subprocess.run(["h2load", "-n", "400", "-c", "4", "-m", "50",
                          gw.url("/h2/echo")], capture_output=True, text=True, timeout=60)
    assert "400 succeeded" in out.stdout and "400 2xx" in out.stdout, out.stdout
    out = subprocess.run(["curl", "-s", "--http2", "--cacert", str(pki.ca), "-o",
                          str(tmp_path / "big"), "-w", "%{http_version} %{http_code}",
                          gw.url("/h2/big?n=2000000").replace("127.0.0.1", "localhost")],
                         capture_output=True, text=True, timeout=20)
    assert out.stdout == "2 200", out.stdout + out.stderr
    assert (tmp_path / "big").stat().st_size == 2000000
    # 200 streams at once; the upstream allows 100 per connection (its SETTINGS).
    assert up.connections <= 4


def test_h2c_targets_use_prior_knowledge(gateway_factory, h2up):
    up = h2up(tls=False)
    # No proxy_enable_http2: the h2c:// scheme alone asks for HTTP/2 without TLS (Tyk's rule).
    gw = gateway_factory(apis=[keyless_api("h2c", "/c/", up.url)])
    r = requests.post(gw.url("/c/echo?x=1"), data=b"hello")
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["alpn"] == "h2c" and rec["scheme"] == "http" and rec["body"] == "hello"
    assert rec["path"] == "/echo?x=1"


def test_alpn_http11_answer_falls_back(gateway_factory, pki, upstreams_tls):
    # An upstream that does not speak HTTP/2 is served over HTTP/1.1 when it says so in ALPN.
    gw = gateway_factory(conf=h2_conf(), env=trusted(pki),
                         apis=[keyless_api("h1", "/h1/", upstreams_tls.url)])
    for _ in range(3):
        r = requests.post(gw.url("/h1/echo"), data=b"x" * 10)
        assert r.status_code == 200, r.text
        assert r.json()["body"] == "x" * 10
    assert upstreams_tls.count() == 3


@pytest.fixture
def upstreams_tls(pki):
    cert = pki.leaf("h1-upstream", ["localhost", "127.0.0.1"])
    o = Origin(name="h1", tls_cert=cert[2], tls_key=cert[1])
    yield o
    o.stop()


def test_without_proxy_enable_http2_an_h2_only_upstream_fails_clearly(gateway_factory, h2up, pki):
    up = h2up()
    gw = gateway_factory(env=trusted(pki), apis=[keyless_api("h2", "/h2/", up.url)])
    r = requests.get(gw.url("/h2/echo"))
    assert r.status_code == 500 and r.json() == PROXY_ERROR
    assert up.requests == []


def test_verification_still_applies(gateway_factory, h2up):
    up = h2up()
    # The test CA is not trusted here.
    gw = gateway_factory(conf=h2_conf(), apis=[keyless_api("h2", "/h2/", up.url)])
    r = requests.get(gw.url("/h2/echo"))
    assert r.status_code == 500 and r.json() == PROXY_ERROR
    assert "certificate" in gw.logs()
    assert up.requests == []


def test_resets_timeouts_and_goaway(gateway_factory, h2up, pki):
    up = h2up()
    gw = gateway_factory(conf=h2_conf(proxy_default_timeout=1), env=trusted(pki),
                         apis=[keyless_api("h2", "/h2/", up.url)])
    assert requests.get(gw.url("/h2/echo")).status_code == 200
    # The upstream resets a stream after its head: the client's response is cut, not completed.
    raw = raw_request(gw.port, b"GET /h2/reset HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Content-Length: 100" in head and body == b"partial", raw
    # A late upstream: 504 for that stream only; the gateway resets it upstream, and the
    # connection (which may be dead without being closed) takes no new streams: the next request
    # is served on a new one.
    r = requests.get(gw.url("/h2/slow?s=3"), timeout=10)
    assert r.status_code == 504, r.text
    deadline = time.time() + 5
    while not up.resets and time.time() < deadline:
        time.sleep(0.05)
    assert up.resets, "the timed-out stream was not reset upstream"
    before = up.connections
    assert requests.get(gw.url("/h2/echo")).status_code == 200
    # A GOAWAY after an answer: the next requests go on a new connection.
    assert requests.get(gw.url("/h2/goaway")).status_code == 200
    time.sleep(0.3)
    for _ in range(4):
        r = requests.get(gw.url("/h2/echo"))
        assert r.status_code == 200, r.text
    assert up.connections > before
    # A stream the upstream refuses was never processed: it goes again, even a POST.
    r = requests.post(gw.url("/h2/refuse-once"))
    assert r.status_code == 200, r.text
    assert up.refused
    # An upstream gone: 500, then served again when it is back (a new server on another port
    # is a new API target; the same port stays refused).
    up.stop()
    r = requests.get(gw.url("/h2/echo"))
    assert r.status_code == 500 and r.json() == PROXY_ERROR
