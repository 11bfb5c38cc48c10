"""HTTP/2 towards clients (http_server_options.enable_http2): ALPN, the request path over h2
(routing, keys, Tyk's error bodies, the control API, request and response bodies), 100
concurrent streams, and the defences against the known HTTP/2 attacks, each with a client that
must still be served while the attack runs. Clients: curl --http2, h2load, nghttp, Python's h2
and hand-made frames."""
import json
import socket
import ssl
import struct
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
import requests

from conftest import keyless_api

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# Frame types and flags (RFC 9113 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0x0, 0x1, 0x2, 0x3, 0x4, 0x6, 0x7, 0x8, 0x9)
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
ENHANCE_YOUR_CALM, PROTOCOL_ERROR = 0xB, 0x1


@pytest.fixture(scope="module")
def cert(pki):
    return pki.leaf("h2.test", ["h2.test", "localhost", "127.0.0.1"])


def h2_conf(cert, enable=True, **gatehouse):
    conf = {"http_server_options": {"use_ssl": True, "enable_http2": enable,
                                    "ssl_certificates": [cert[3]]}}
    if gatehouse:
        conf["gatehouse"] = gatehouse
    return conf


def keyed_api(api_id, listen_path, target):
    """An auth-token API (the token in Authorization)."""
    return keyless_api(api_id, listen_path, target, use_keyless=False)


def curl(url, *args, pki=None):
    cmd = ["curl", "-s", "--http2", "--max-time", "20", "-w", "\n%{http_version} %{http_code}",
           "--cacert", str(pki.ca)] + list(args) + [url]
    out = subprocess.run(cmd, capture_output=True, timeout=30).stdout.decode(errors="replace")
    body, _, tail = out.rpartition("\n")
    version, code = tail.split()
    return version, int(code), body


def tls_socket(port, alpn=("h2",)):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(s, server_hostname="h2.test")


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(
        ">I", stream_id & 0x7FFFFFFF) + payload


def read_frames(sock, until=None, timeout=5.0):
    """Frames the gateway sends until `until(ftype, flags, sid, payload)` is true, the
    connection closes, or the timeout; returns them and whether the connection closed."""
    sock.settimeout(0.5)
    buf = b""
    frames = []
    end = time.time() + timeout
    closed = False
    while time.time() < end:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        except (ssl.SSLError, OSError):
            closed = True
            break
        if not d:
            closed = True
            break
        buf += d
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            f = (buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n])
            buf = buf[9 + n:]
            frames.append(f)
            if until and until(*f):
                return frames, closed
    return frames, closed


def goaway_code(frames):
    for t, _, _, p in frames:
        if t == GOAWAY:
            return int.from_bytes(p[4:8], "big")
    return None


def raw_h2(port):
    """A TLS connection that has sent the preface and empty SETTINGS (and acknowledged the
    gateway's)."""
    s = tls_socket(port)
    assert s.selected_alpn_protocol() == "h2"
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    frames, _ = read_frames(s, until=lambda t, f, sid, p: t == SETTINGS and not f & ACK)
    s.sendall(frame(SETTINGS, ACK, 0))
    return s


def request_block(path, authority="127.0.0.1", method="GET", extra=()):
    enc = hpack.Encoder()
    return enc.encode([(":method", method), (":scheme", "https"), (":authority", authority),
                       (":path", path)] + list(extra))


class H2Client:
    """A well-behaved client on Python's h2, for requests and for the 'still served' checks."""

    def __init__(self, port, settings=None):
        self.sock = tls_socket(port)
        assert self.sock.selected_alpn_protocol() == "h2"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.sock.sendall(self.conn.data_to_send())
        self.responses = {}
        self.remote_settings = None

    def request(self, path, method="GET", headers=(), body=None, end=True):
        sid = self.conn.get_next_available_stream_id()
        h = [(":method", method), (":scheme", "https"), (":authority", "127.0.0.1"),
             (":path", path)] + list(headers)
        self.conn.send_headers(sid, h, end_stream=body is None and end)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=end)
        self.sock.sendall(self.conn.data_to_send())
        self.responses[sid] = {"status": None, "headers": {}, "body": b"", "done": False,
                               "reset": None}
        return sid

    def pump(self, until, timeout=10.0):
        self.sock.settimeout(0.5)
        end = time.time() + timeout
        while not until() and time.time() < end:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            for ev in self.conn.receive_data(data):
                r = self.responses.get(getattr(ev, "stream_id", None))
                if isinstance(ev, h2.events.ResponseReceived):
                    hs = {k.decode(): v.decode() for k, v in ev.headers}
                    r["status"] = int(hs[":status"])
                    r["headers"] = hs
                elif isinstance(ev, h2.events.DataReceived):
                    r["body"] += ev.data
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.TrailersReceived):
                    r["trailers"] = {k.decode(): v.decode() for k, v in ev.headers}
                elif isinstance(ev, h2.events.StreamEnded):
                    r["done"] = True
                elif isinstance(ev, h2.events.StreamReset):
                    if r is not None:
                        r["reset"] = ev.error_code
                elif isinstance(ev, h2.events.RemoteSettingsChanged):
                    self.remote_settings = {k: v.new_value for k, v in ev.changed_settings.items()}
            self.sock.sendall(self.conn.data_to_send())
        return until()

    def get(self, path, **kw):
        sid = self.request(path, **kw)
        assert self.pump(lambda: self.responses[sid]["done"] or self.responses[sid]["reset"]
                         is not None), f"no answer on stream {sid}"
        return self.responses[sid]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def served(port, path="/app/get"):
    """A fresh h2 client gets a 200 from the origin."""
    c = H2Client(port)
    try:
        r = c.get(path)
        return r["status"] == 200
    finally:
        c.close()


@pytest.fixture
def h2gw(gateway_factory, cert, origin):
    def make(**gatehouse):
        return gateway_factory(conf=h2_conf(cert, **gatehouse), apis=[
            keyless_api("app", "/app/", origin.url),
            keyed_api("keyed", "/keyed/", origin.url)])
    return make


# --- negotiation ---------------------------------------------------------------------------------
def test_h2_offered_only_when_enabled(gateway_factory, cert, origin, pki):
    on = gateway_factory(conf=h2_conf(cert), apis=[keyless_api("app", "/app/", origin.url)])
    off = gateway_factory(conf=h2_conf(cert, enable=False),
                          apis=[keyless_api("app", "/app/", origin.url)])
    assert tls_socket(on.port, ("h2", "http/1.1")).selected_alpn_protocol() == "h2"
    assert tls_socket(off.port, ("h2", "http/1.1")).selected_alpn_protocol() == "http/1.1"
    # A client that offers only h2 to a gateway without it gets no ALPN answer (and HTTP/1.1).
    assert tls_socket(off.port, ("h2",)).selected_alpn_protocol() is None
    assert curl(on.url("/app/get"), pki=pki)[:2] == ("2", 200)
    assert curl(off.url("/app/get"), pki=pki)[:2] == ("1.1", 200)
    # HTTP/1.1 clients of an h2-enabled gateway are served as before.
    assert requests.get(on.url("/app/get"), verify=str(pki.ca)).status_code == 200


# --- the request path over h2 --------------------------------------------------------------------
def test_keyless_requests_bodies_and_headers_over_h2(h2gw, origin, pki, tmp_path):
    gw = h2gw()
    v, code, body = curl(gw.url("/app/get?x=1"), "-H", "X-Custom: yes", "-H", "Cookie: a=1",
                         "-H", "Cookie: b=2", pki=pki)
    assert (v, code) == ("2", 200)
    rec = json.loads(body)
    hs = {k.lower(): v for k, v in rec["headers"]}
    assert rec["path"] == "/get?x=1" and hs["x-custom"] == "yes"
    assert hs["host"] == f"127.0.0.1:{origin.port}"  # the target's authority, as on HTTP/1.1
    assert hs["cookie"] == "a=1; b=2"  # RFC 9113 8.2.3: one field again
    assert hs["x-forwarded-for"] == "127.0.0.1"
    # A body with a length, larger than the stream window (flow control both ways).
    payload = tmp_path / "p.bin"
    payload.write_bytes(bytes(range(256)) * 1200)
    v, code, body = curl(gw.url("/app/post"), "--data-binary", f"@{payload}", pki=pki)
    assert (v, code) == ("2", 200)
    assert json.loads(body)["body"].encode("latin-1") == payload.read_bytes()
    # A body of unknown length (no content-length): chunked to the upstream, intact.
    c = H2Client(gw.port)
    sid = c.request("/app/upload", method="PUT", body=b"part-one;", end=False)
    c.conn.send_data(sid, b"part-two", end_stream=True)
    c.sock.sendall(c.conn.data_to_send())
    assert c.pump(lambda: c.responses[sid]["done"])
    rec = json.loads(c.responses[sid]["body"])
    assert rec["body"] == "part-one;part-two"
    assert any(k.lower() == "transfer-encoding" for k, _ in rec["headers"])
    # A large response (1 MiB) and a chunked one arrive whole.
    v, code, body = curl(gw.url("/app/big?n=1048576"), pki=pki)
    assert (v, code, len(body)) == ("2", 200, 1048576)
    v, code, body = curl(gw.url("/app/chunked?n=4"), pki=pki)
    assert (v, code, body) == ("2", 200, "chunk-0;chunk-1;chunk-2;chunk-3;")
    # The upstream's trailers follow the data (those a trailer section may not carry do not).
    r = c.get("/app/chunked?n=2&trailers=1")
    assert r["body"] == b"chunk-0;chunk-1;" and r["trailers"] == {"x-checksum": "abc123"}
    # HEAD: the length, no body.
    out = subprocess.run(["curl", "-s", "--http2", "-I", "--cacert", str(pki.ca),
                          gw.url("/app/get")], capture_output=True, timeout=20).stdout.decode()
    assert out.startswith("HTTP/2 200") and "content-length:" in out.lower()
    # Hop-by-hop fields of the upstream never reach the client (they are illegal in h2).
    out = subprocess.run(["curl", "-s", "--http2", "-D", "-", "-o", "/dev/null", "--cacert",
                          str(pki.ca), gw.url("/app/hopbyhop")], capture_output=True,
                         timeout=20).stdout.decode().lower()
    assert "x-kept: yes" in out and "x-secret-hop" not in out and "keep-alive" not in out


def test_keys_and_tyk_errors_over_h2(h2gw, origin, pki):
    gw = h2gw()
    assert curl(gw.url("/nowhere"), pki=pki) == ("2", 404, json.dumps(
        {"error": "Not Found"}, indent=4))
    v, code, body = curl(gw.url("/keyed/get"), pki=pki)
    assert (v, code) == ("2", 401)
    assert json.loads(body) == {"error": "Authorization field missing"}
    v, code, body = curl(gw.url("/keyed/get"), "-H", "Authorization: nope", pki=pki)
    assert (v, code, json.loads(body)) == ("2", 403, {"error": "Access to this API has been disallowed"})
    # The control API over h2: a key made with a body, then used over h2.
    key_body = json.dumps({"access_rights": {"keyed": {"api_id": "keyed", "api_name": "keyed",
                                                       "versions": ["Default"]}},
                           "org_id": "default", "rate": 1000, "per": 1, "quota_max": -1})
    v, code, body = curl(gw.url("/tyk/keys/create"), "-X", "POST", "-H",
                         "X-Tyk-Authorization: " + gw.conf["secret"], "--data-binary", key_body,
                         pki=pki)
    assert (v, code) == ("2", 200), body
    key = json.loads(body)["key"]
    before = origin.count()
    v, code, body = curl(gw.url("/keyed/get"), "-H", f"Authorization: {key}", pki=pki)
    assert (v, code) == ("2", 200)
    assert origin.count() == before + 1
    # The control API refuses a wrong secret over h2 with Tyk's body.
    v, code, body = curl(gw.url("/tyk/apis"), "-H", "X-Tyk-Authorization: wrong", pki=pki)
    assert (v, code) == ("2", 403)
    assert json.loads(body)["message"] == "Attempted administrative access with invalid or missing key!"


def test_100_concurrent_streams(h2gw, origin, pki):
    gw = h2gw()
    c = H2Client(gw.port)
    try:
        assert c.pump(lambda: c.remote_settings is not None)
        assert c.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] >= 100
        # 100 streams open at once, each held by the origin for a moment: all answered, and in
        # about the time of one (they ran side by side).
        t0 = time.time()
        sids = [c.request(f"/app/{i}/slow?s=1") for i in range(100)]
        assert c.pump(lambda: all(c.responses[s]["done"] for s in sids), timeout=30)
        elapsed = time.time() - t0
        assert all(c.responses[s]["status"] == 200 for s in sids)
        assert elapsed < 15, elapsed  # one after another would take 100 s
    finally:
        c.close()
    out = subprocess.run(["h2load", "-n", "2000", "-c", "2", "-m", "100", gw.url("/app/get")],
                         capture_output=True, timeout=60).stdout.decode()
    assert "2000 succeeded" in out and "2000 2xx" in out, out


# --- slow clients ----------------------------------------------------------------------------------
def test_slow_h2_clients_are_cut_alone(h2gw, origin):
    gw = h2gw(header_timeout=2, idle_timeout=3)
    # A connection that never completes a request is closed at header_timeout.
    s = raw_h2(gw.port)
    s.sendall(frame(HEADERS, 0, 1, request_block("/app/x")[:3]))  # no END_HEADERS, ever
    t0 = time.time()
    frames, closed = read_frames(s, timeout=8)
    assert closed and 1.5 < time.time() - t0 < 7
    # A body that stalls: the stream is reset after read_timeout; the connection still serves.
    gw2 = h2gw(idle_timeout=30)
    gw2.stop()
    gw2.conf["http_server_options"]["read_timeout"] = 2
    gw2.conf_path.write_text(json.dumps(gw2.conf))
    gw2.start()
    c = H2Client(gw2.port)
    sid = c.request("/app/post", method="POST", headers=[("content-length", "100")],
                    body=b"only-some", end=False)
    assert c.pump(lambda: c.responses[sid]["reset"] is not None, timeout=8)
    assert c.get("/app/get")["status"] == 200  # same connection, next stream
    assert served(gw2.port)
    c.close()


# --- attacks -------------------------------------------------------------------------------------
def attack_and_check(gw, attack, expect_goaway=None):
    """Runs `attack(sock)` on one connection while a second client keeps being served; returns
    the frames the attacker got back."""
    result = {}

    def run():
        s = raw_h2(gw.port)
        try:
            result["frames"], result["closed"] = attack(s)
        finally:
            s.close()
    t = threading.Thread(target=run)
    t.start()
    during = 0
    while t.is_alive():
        assert served(gw.port), "a well-behaved client was not served during the attack"
        during += 1
    t.join()
    assert during >= 1 or served(gw.port)
    assert served(gw.port), "not served after the attack"
    assert gw.proc.poll() is None, "the gateway died"
    if expect_goaway is not None:
        assert goaway_code(result["frames"]) == expect_goaway, result["frames"][-5:]
    return result


def test_rapid_reset(h2gw, origin):
    gw = h2gw(http2={"reset_burst": 200, "reset_rate": 10})
    before = origin.count()

    def attack(s):
        enc = hpack.Encoder()
        out = b""
        for i in range(2000):
            sid = 1 + 2 * i
            out += frame(HEADERS, END_STREAM | END_HEADERS, sid,
                         enc.encode([(":method", "GET"), (":scheme", "https"),
                                     (":authority", "127.0.0.1"), (":path", "/app/slow?s=1")]))
            out += frame(RST_STREAM, 0, sid, struct.pack(">I", 0x8))
            if len(out) > 16384:
                try:
                    s.sendall(out)
                except OSError:
                    break
                out = b""
        return read_frames(s, until=lambda t, *_: t == GOAWAY, timeout=5)
    attack_and_check(gw, attack, expect_goaway=ENHANCE_YOUR_CALM)
    # The reset streams' upstream work was stopped, not queued: far fewer than 2000 reached it.
    time.sleep(1.5)
    assert origin.count() - before < 400
    assert "HTTP/2 connection ended" in gw.logs()
    # And each exchange ended when its stream was reset, not when the origin (1 s) answered.
    durations = sorted(json.loads(line)["duration_us"] for line in gw.logs().splitlines()
                       if '"msg":"access"' in line and '"/app/slow"' in line)
    assert durations and durations[len(durations) // 2] < 500000, durations[-5:]


def test_continuation_flood(h2gw):
    gw = h2gw()

    def attack(s):
        block = request_block("/app/x", extra=[("x-pad", "a" * 100)])
        s.sendall(frame(HEADERS, 0, 1, block[:5]))
        try:
            for _ in range(5000):
                s.sendall(frame(CONTINUATION, 0, 1, b"\x00" * 0))
        except OSError:
            pass
        return read_frames(s, until=lambda t, *_: t == GOAWAY, timeout=5)
    r = attack_and_check(gw, attack)
    assert goaway_code(r["frames"]) is not None or r["closed"]


def test_hpack_bomb_and_oversized_header_lists(h2gw, origin):
    gw = h2gw(max_header_bytes=8192)
    # A 4 KiB value put in the dynamic table once, then referenced 1000 times (a few bytes each):
    # the decoded list would be 4 MB. The stream is answered 431; others are served.
    c = H2Client(gw.port)
    try:
        enc = hpack.Encoder()
        first = enc.encode([(":method", "GET"), (":scheme", "https"), (":authority", "127.0.0.1"),
                            (":path", "/app/bomb"), ("x-bomb", "b" * 4000)])
        idx = enc.encode([("x-bomb", "b" * 4000)]) * 1000
        sid = c.conn.get_next_available_stream_id()
        c.responses[sid] = {"status": None, "headers": {}, "body": b"", "done": False,
                            "reset": None}
        # Written by hand (h2 would refuse to send it): HEADERS + CONTINUATIONs of 16 KiB.
        block = first + idx
        chunks = [block[i:i + 16000] for i in range(0, len(block), 16000)]
        raw = frame(HEADERS, END_STREAM | (END_HEADERS if len(chunks) == 1 else 0), sid, chunks[0])
        for j, ch in enumerate(chunks[1:], 1):
            raw += frame(CONTINUATION, END_HEADERS if j == len(chunks) - 1 else 0, sid, ch)
        c.sock.sendall(raw)
        frames, _ = read_frames(c.sock, until=lambda t, f, s, p: (t in (HEADERS, RST_STREAM)
                                                                   and s == sid) or t == GOAWAY)
        kinds = [(t, s) for t, _, s, _ in frames]
        assert (HEADERS, sid) in kinds or (RST_STREAM, sid) in kinds or goaway_code(frames) is not None
    finally:
        c.close()
    assert served(gw.port)
    # Plain oversized header lists: 431 with Tyk's style body, nothing proxied.
    before = origin.count()
    c = H2Client(gw.port)
    try:
        r = c.get("/app/big-headers", headers=[(f"x-h{i}", "v" * 200) for i in range(60)])
        assert r["status"] == 431
        assert json.loads(r["body"]) == {"error": "Request Header Fields Too Large"}
        r = c.get("/app/many", headers=[(f"x-n{i}", "1") for i in range(150)])
        assert r["status"] == 431
        assert c.get("/app/get")["status"] == 200  # the same connection goes on
    finally:
        c.close()
    assert origin.count() == before + 1


@pytest.mark.parametrize("kind", ["ping", "settings", "empty_data", "window_update"])
def test_control_frame_floods(h2gw, kind):
    gw = h2gw(http2={"control_frame_burst": 200, "control_frame_rate": 10})

    def attack(s):
        if kind == "empty_data":
            s.sendall(frame(HEADERS, END_HEADERS, 1, request_block("/app/post", method="POST")))
        one = {"ping": frame(PING, 0, 0, b"12345678"),
               "settings": frame(SETTINGS, 0, 0, struct.pack(">HI", 0x3, 100)),
               "empty_data": frame(DATA, 0, 1, b""),
               "window_update": frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1))}[kind]
        try:
            for _ in range(20):
                s.sendall(one * 100)
        except OSError:
            pass
        return read_frames(s, until=lambda t, *_: t == GOAWAY, timeout=5)
    attack_and_check(gw, attack, expect_goaway=ENHANCE_YOUR_CALM)
    assert "flood" in gw.logs()


def test_unread_acknowledgements_flood(h2gw):
    # PINGs from a client that never reads: the queued PING ACKs are bounded.
    gw = h2gw(http2={"max_outbound_ack": 100, "control_frame_burst": 1000000,
                     "control_frame_rate": 1000000})

    def attack(s):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            for _ in range(200):
                s.sendall(frame(PING, 0, 0, b"abcdefgh") * 500)
        except OSError:
            pass
        return read_frames(s, timeout=5)
    r = attack_and_check(gw, attack)
    assert r["closed"] or goaway_code(r["frames"]) == ENHANCE_YOUR_CALM


@pytest.mark.parametrize("abuse", ["even_id", "decreasing_id", "data_on_idle", "huge_window"])
def test_stream_id_and_protocol_abuse(h2gw, abuse):
    gw = h2gw()

    def attack(s):
        b = lambda sid: frame(HEADERS, END_STREAM | END_HEADERS, sid, request_block("/app/get"))
        if abuse == "even_id":
            s.sendall(b(2))
        elif abuse == "decreasing_id":
            s.sendall(b(7))
            s.sendall(b(3))
        elif abuse == "data_on_idle":
            s.sendall(frame(DATA, 0, 9, b"x" * 10))
        else:  # a window beyond 2^31-1
            s.sendall(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF)) * 2)
        return read_frames(s, until=lambda t, *_: t == GOAWAY, timeout=5)
    r = attack_and_check(gw, attack)
    code = goaway_code(r["frames"])
    assert code is not None and code != 0, r["frames"]


def test_zero_window_stall_does_not_hold_the_gateway(gateway_factory, cert, origin):
    conf = h2_conf(cert)
    conf["http_server_options"]["write_timeout"] = 2
    gw = gateway_factory(conf=conf, apis=[keyless_api("app", "/app/", origin.url)])
    # A client whose windows are 0: the 8 MiB response cannot be sent. The gateway buffers at
    # most its stream buffer, resets the stream at write_timeout, and serves others meanwhile.
    c = H2Client(gw.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    try:
        sid = c.request("/app/big?n=8388608")
        t0 = time.time()
        got_reset = False
        end = time.time() + 12
        c.sock.settimeout(0.5)
        while time.time() < end and not got_reset:
            assert served(gw.port)
            try:
                data = c.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            for ev in c.conn.receive_data(data):
                if isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    got_reset = True
            c.sock.sendall(c.conn.data_to_send())
        assert got_reset and time.time() - t0 < 10
    finally:
        c.close()
    rss_kb = int(open(f"/proc/{gw.proc.pid}/status").read().split("VmRSS:")[1].split()[0])
    assert rss_kb < 200 * 1024, rss_kb
    assert served(gw.port)
