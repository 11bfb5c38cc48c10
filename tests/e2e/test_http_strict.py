"""Strict HTTP/1.1 on the client side, end to end, with raw sockets.

Every malformed request gets a 4xx (the exact status where the parser defines one), a
`Connection: close`, the connection closed by the gateway, and the upstream sees nothing.
The positive half shows what a well-formed client can rely on: keep-alive, pipelining,
`Connection: close`, `Expect: 100-continue`, chunked bodies streamed both ways, the body
limit (413), HTTP/1.0 and a leading empty line.

About "the upstream saw nothing" for errors found in a chunked *body*: the head of such a
request is valid, so the gateway may already have connected upstream and sent the head and the
chunks that were good before the bad one arrived. What must hold is that the upstream never
receives a *complete* request. The `origin` fixture records a request only after it has read the
whole body (for chunked bodies: up to the last chunk; when the gateway closes the connection
mid-body, `readline()` returns b"" and `int(b"", 16)` raises, so the handler dies without
recording). So `origin.count() == 0` means "no complete request". The tests below also run each
chunked case against a raw TCP upstream that keeps every byte it receives, sending the body in a
second packet after the head, and check that no connection ever carried the last chunk.
(`test_origin_premise_records_only_complete_chunked_requests` checks the premise itself.)
The origin would record a *Content-Length* request whose body was cut short, but every
Content-Length error is in the head, refused before any upstream connection is made, and the
413 for a Content-Length over the limit is decided from the head too.
"""
import json
import socket
import threading
import time

import pytest
import requests

from conftest import (Gateway, Origin, RawClient, keyless_api, parse_responses, raw_exchange,
                      raw_request, status_of)

HOST = "gw.test"




def req(head: str, body: bytes = b"") -> bytes:
    return head.encode("latin-1") + body


def get(target="/echo/x", extra="", version="HTTP/1.1", host=HOST):
    return f"GET {target} {version}\r\nHost: {host}\r\n{extra}\r\n".encode("latin-1")


# ---------------------------------------------------------------------------------------------
# One gateway and one origin for all malformed cases (each case on its own connection).
@pytest.fixture(scope="module")
def strict_env(tmp_path_factory):
    origin = Origin("strict")
    raw_up = RawUpstream()
    d = tmp_path_factory.mktemp("strict-gw")
    gw = Gateway(d, {}, [keyless_api("echo", "/echo/", origin.url),
                         keyless_api("raw", "/raw/", raw_up.url)])
    gw.start()
    yield gw, origin, raw_up
    gw.stop()
    origin.stop()
    raw_up.stop()


class RawUpstream:
    """A TCP upstream that keeps every byte of every connection. It answers a request once it
    is complete (head without body, or chunked body up to the last chunk)."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.conns = []  # bytearray per connection
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _accept(self):
        while not self.stopped:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            buf = bytearray()
            with self.lock:
                self.conns.append([buf, 0])
            threading.Thread(target=self._serve, args=(s, buf), daemon=True).start()

    def _serve(self, s, buf):
        start = 0
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    return
                with self.lock:
                    buf.extend(b)
                while True:
                    data = bytes(buf[start:])
                    end = data.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head = data[:end].lower()
                    if b"transfer-encoding: chunked" in head:
                        # The last chunk, then the trailer section (maybe empty) up to its
                        # blank line.
                        last = data.find(b"\r\n0\r\n", end)
                        term = data.find(b"\r\n\r\n", last + 3) if last >= 0 else -1
                        if term < 0:
                            break
                        used = term + 4
                    else:
                        used = end + 4
                    start += used
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            return
        finally:
            s.close()

    def clear(self):
        # Keeps connections (a pooled one may be reused) but forgets what they carried so far.
        with self.lock:
            for c in self.conns:
                c[1] = len(c[0])

    def snapshot(self):
        with self.lock:
            return [bytes(b[m:]) for b, m in self.conns if len(b) > m]

    def stop(self):
        self.stopped = True
        self.lsock.close()


def assert_refused(raw: bytes, closed: bool, expected: int):
    assert raw, "no response at all"
    st = status_of(raw)
    assert st == expected, f"expected {expected}, got {raw[:300]!r}"
    resps = parse_responses(raw)
    assert len(resps) == 1, f"expected exactly one response, got {raw!r}"
    assert (resps[0].header("Connection") or "").lower() == "close", raw[:300]
    assert closed, "the gateway did not close the connection"
    body = json.loads(resps[0].body)
    assert isinstance(body.get("error"), str) and body["error"]


def wait_quiet(origin, seconds=0.05):
    # Anything the gateway would have forwarded is recorded by the origin before the gateway can
    # answer; this short pause only covers a forwarder that answers first and forwards after.
    time.sleep(seconds)
    return origin.count()


# ---------------------------------------------------------------------------------------------
# Malformed request heads: refused before any upstream is contacted.
LONG = "a" * 9000
BAD_HEADS = [
    # framing: Content-Length / Transfer-Encoding
    ("cl_and_te", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n", b"0\r\n\r\n"), 400),
    ("te_and_cl", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n"
                      "Content-Length: 5\r\n\r\n", b"0\r\n\r\n"), 400),
    ("dup_cl_same", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\n"
                        "Content-Length: 5\r\n\r\n", b"hello"), 400),
    ("dup_cl_different", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\n"
                             "Content-Length: 6\r\n\r\n", b"hello!"), 400),
    ("cl_list", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5, 5\r\n\r\n",
                    b"hello"), 400),
    ("cl_negative", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: -5\r\n\r\n",
                        b"hello"), 400),
    ("cl_signed", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: +5\r\n\r\n",
                      b"hello"), 400),
    ("cl_hex", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 0x5\r\n\r\n",
                   b"hello"), 400),
    ("cl_space_inside", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1 0\r\n\r\n",
                            b"helloworld"), 400),
    ("cl_overflow", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\n"
                        "Content-Length: 99999999999999999999\r\n\r\n", b"hello"), 400),
    ("cl_empty", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length:\r\n\r\n",
                     b"hello"), 400),
    ("cl_decimal_point", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5.0\r\n\r\n",
                             b"hello"), 400),
    ("te_gzip", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: gzip\r\n\r\n",
                    b"0\r\n\r\n"), 400),
    ("te_chunked_gzip", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\n"
                            "Transfer-Encoding: chunked, gzip\r\n\r\n", b"0\r\n\r\n"), 400),
    ("te_gzip_chunked", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\n"
                            "Transfer-Encoding: gzip, chunked\r\n\r\n", b"0\r\n\r\n"), 400),
    ("te_identity", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: identity\r\n"
                        "\r\n", b"0\r\n\r\n"), 400),
    ("te_chunked_chunked", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\n"
                               "Transfer-Encoding: chunked, chunked\r\n\r\n", b"0\r\n\r\n"), 400),
    ("te_two_headers", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n", b"0\r\n\r\n"), 400),
    ("te_empty_element", req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\n"
                             "Transfer-Encoding: chunked,\r\n\r\n", b"0\r\n\r\n"), 400),
    ("te_http10", req("POST /echo/x HTTP/1.0\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n",
                      b"5\r\nhello\r\n0\r\n\r\n"), 400),
    # header syntax
    ("obs_fold", get(extra="X-A: one\r\n  two\r\n"), 400),
    ("obs_fold_tab", get(extra="X-A: one\r\n\ttwo\r\n"), 400),
    ("space_before_colon", get(extra="X-A : b\r\n"), 400),
    ("tab_before_colon", get(extra="X-A\t: b\r\n"), 400),
    ("space_before_colon_host", b"GET /echo/x HTTP/1.1\r\nHost : gw.test\r\n\r\n", 400),
    ("nul_in_header_value", get(extra="X-A: a\x00b\r\n"), 400),
    ("nul_in_request_line", b"GET /echo/\x00x HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400),
    ("bare_cr_in_header", get(extra="X-A: a\rb\r\n"), 400),
    ("bare_cr_in_request_line", b"GET /echo/x\rHTTP/1.1\r\nHost: gw.test\r\n\r\n", 400),
    ("bare_lf_request_line", b"GET /echo/x HTTP/1.1\nHost: gw.test\r\n\r\n", 400),
    ("bare_lf_header", b"GET /echo/x HTTP/1.1\r\nHost: gw.test\nX-A: b\r\n\r\n", 400),
    ("bare_lf_everywhere", b"GET /echo/x HTTP/1.1\nHost: gw.test\n\n", 400),
    ("del_in_header_value", get(extra="X-A: a\x7fb\r\n"), 400),
    ("ctl_in_header_value", get(extra="X-A: a\x01b\r\n"), 400),
    ("header_without_colon", get(extra="NoColonHere\r\n"), 400),
    ("empty_header_name", get(extra=": x\r\n"), 400),
    ("bad_header_name_brackets", get(extra="Bad[Name]: x\r\n"), 400),
    ("bad_header_name_space", get(extra="Na me: x\r\n"), 400),
    ("bad_header_name_quote", get(extra='Bad"Name: x\r\n'), 400),
    ("bad_header_name_slash", get(extra="Bad/Name: x\r\n"), 400),
    ("bad_header_name_non_ascii", get(extra="B\xe4d: x\r\n"), 400),
    # limits
    ("header_value_over_limit", get(extra="X-Big: " + "b" * 40000 + "\r\n"), 431),
    ("header_section_over_limit",
     get(extra="".join(f"X-H{i}: {'v' * 1000}\r\n" for i in range(40))), 431),
    ("too_many_headers", get(extra="".join(f"X-H{i}: v\r\n" for i in range(100))), 431),
    ("request_line_over_limit", get(target="/echo/" + LONG), 414),
    ("request_line_over_limit_no_lf", ("GET /echo/" + LONG).encode(), 414),
    # request line
    ("bad_method_bracket", b"GE[T /echo/x HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400),
    ("bad_method_at", b"G@T /echo/x HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400),
    ("bad_method_comma", b"GET, /echo/x HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400),
    ("bad_method_non_ascii", b"G\xc9T /echo/x HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400),
    ("version_1_2", get(version="HTTP/1.2"), 400),
    ("version_2_0", get(version="HTTP/2.0"), 400),
    ("version_no_minor", get(version="HTTP/1"), 400),
    ("version_lowercase", get(version="http/1.1"), 400),
    ("version_https", get(version="HTTPS/1.1"), 400),
    ("version_1_10", get(version="HTTP/1.10"), 400),
    ("version_missing", b"GET /echo/x\r\nHost: gw.test\r\n\r\n", 400),
    ("double_space", b"GET  /echo/x HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400),
    ("trailing_space", b"GET /echo/x HTTP/1.1 \r\nHost: gw.test\r\n\r\n", 400),
    ("tab_separator", b"GET\t/echo/x HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400),
    ("fragment_in_target", get(target="/echo/x#frag"), 400),
    ("non_ascii_in_target", b"GET /echo/\xff HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400),
    ("relative_target", get(target="echo/x"), 400),
    ("asterisk_with_get", get(target="*"), 400),
    ("connect_method", b"CONNECT gw.test:443 HTTP/1.1\r\nHost: gw.test:443\r\n\r\n", 405),
    ("absolute_form_other_host", get(target="http://other.test/echo/x"), 400),
    ("absolute_form_userinfo", get(target="http://user:pw@gw.test/echo/x"), 400),
    ("absolute_form_userinfo_at_host", get(target="http://gw.test@other.test/echo/x"), 400),
    ("absolute_form_bad_scheme", get(target="ftp://gw.test/echo/x"), 400),
    # Host
    ("missing_host_11", b"GET /echo/x HTTP/1.1\r\n\r\n", 400),
    ("missing_host_10", b"GET /echo/x HTTP/1.0\r\n\r\n", 400),
    ("duplicate_host_same", get(extra="Host: gw.test\r\n"), 400),
    ("duplicate_host_different", get(extra="Host: other.test\r\n"), 400),
    ("host_with_space", get(host="gw test"), 400),
    ("host_with_slash", get(host="gw.test/evil"), 400),
    ("host_with_quote", get(host='gw"test'), 400),
    ("host_with_at", get(host="user@gw.test"), 400),
    ("host_empty", b"GET /echo/x HTTP/1.1\r\nHost:\r\n\r\n", 400),
    # expectations
    ("expect_unknown", get(extra="Expect: something-else\r\n"), 417),
    ("expect_100_on_10_unknown", get(extra="Expect: 200-ok\r\n", version="HTTP/1.0"), 417),
]


@pytest.mark.parametrize("data,expected", [pytest.param(d, e, id=i) for i, d, e in BAD_HEADS])
def test_malformed_head_refused(strict_env, data, expected):
    gw, origin, raw_up = strict_env
    origin.clear()
    raw, closed = raw_exchange(gw.port, data)
    assert_refused(raw, closed, expected)
    assert wait_quiet(origin) == 0, origin.requests


# Bad chunked bodies: the head is fine, the body is not.
CHUNKED_HEAD = "POST {path} HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
BAD_CHUNKS = [
    ("chunk_size_not_hex", b"zz\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_0x_prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_negative", b"-5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_plus", b"+5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_empty", b"\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_space_inside", b"5 5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_17_hex_digits", b"1" + b"0" * 16 + b"\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_overflow_ffff", b"f" * 20 + b"\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_over_int64", b"8000000000000000\r\nhello\r\n0\r\n\r\n"),
    ("chunk_data_without_crlf", b"5\r\nhelloXX0\r\n\r\n"),
    ("chunk_data_too_long", b"3\r\nhello\r\n0\r\n\r\n"),
    ("chunk_data_lf_only", b"5\r\nhello\n0\r\n\r\n"),
    ("chunk_size_bare_lf", b"5\nhello\r\n0\r\n\r\n"),
    ("chunk_size_bare_cr", b"5\rhello\r\n0\r\n\r\n"),
    ("chunk_ext_bare_lf", b"5;ext=1\nhello\r\n0\r\n\r\n"),
    ("chunk_ext_nul", b"5;e\x00t\r\nhello\r\n0\r\n\r\n"),
    ("last_chunk_trailer_fold", b"5\r\nhello\r\n0\r\n folded\r\n\r\n"),
    ("last_chunk_trailer_bare_lf", b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n"),
    ("second_chunk_bad", b"5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n"),
]


@pytest.mark.parametrize("body", [pytest.param(b, id=i) for i, b in BAD_CHUNKS])
def test_malformed_chunked_body_one_packet(strict_env, body):
    gw, origin, raw_up = strict_env
    origin.clear()
    raw, closed = raw_exchange(gw.port, CHUNKED_HEAD.format(path="/echo/x").encode() + body)
    assert_refused(raw, closed, 400)
    assert wait_quiet(origin) == 0, origin.requests


@pytest.mark.parametrize("body", [pytest.param(b, id=i) for i, b in BAD_CHUNKS])
def test_malformed_chunked_body_never_completes_upstream(strict_env, body):
    """Head first, body in a later packet: the gateway may have forwarded the head (and good
    chunks), but the upstream must never see the last chunk, i.e. never a complete request."""
    gw, origin, raw_up = strict_env
    raw_up.clear()
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    try:
        s.sendall(CHUNKED_HEAD.format(path="/raw/x").encode())
        time.sleep(0.1)
        try:
            s.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        closed = False
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not b:
                closed = True
                break
            data += b
    finally:
        s.close()
    assert_refused(data, closed, 400)
    time.sleep(0.05)
    for conn in raw_up.snapshot():
        assert b"\r\n0\r\n\r\n" not in conn, f"upstream received a complete request: {conn!r}"
        assert not conn.endswith(b"0\r\n\r\n"), conn


def test_header_count_boundary_accepted(strict_env):
    """100 header fields (Host included) is the limit: accepted (101 is refused, above).
    Sent to the raw upstream: Python's http.server would itself refuse more than 100 fields and
    the gateway adds X-Forwarded-For."""
    gw, _, raw_up = strict_env
    raw_up.clear()
    c = RawClient(gw.port)
    try:
        c.send(get(target="/raw/h100", extra="".join(f"X-H{i}: v\r\n" for i in range(99))))
        r = c.read_response()
        assert r.status == 200 and r.body == b"ok"
    finally:
        c.close()
    conn = [x for x in raw_up.snapshot() if b"/h100" in x]
    assert len(conn) == 1 and b"X-H98: v" in conn[0]


def test_request_line_boundary_accepted(strict_env):
    gw, origin, _ = strict_env
    origin.clear()
    prefix = "GET /echo/"
    suffix = " HTTP/1.1"
    target_len = 8192 - len(prefix) - len(suffix)
    line = prefix + "a" * target_len + suffix
    assert len(line) == 8192
    raw, _ = raw_exchange(gw.port, (line + "\r\nHost: gw.test\r\nConnection: close\r\n\r\n").encode())
    assert status_of(raw) == 200, raw[:300]
    line = prefix + "a" * (target_len + 1) + suffix
    raw, closed = raw_exchange(gw.port, (line + "\r\nHost: gw.test\r\n\r\n").encode())
    assert_refused(raw, closed, 414)


def test_absolute_form_same_host_accepted(strict_env):
    gw, origin, _ = strict_env
    origin.clear()
    raw, _ = raw_exchange(gw.port, get(target="http://gw.test/echo/abs?q=1",
                                       extra="Connection: close\r\n"))
    r = parse_responses(raw)[0]
    assert r.status == 200, raw[:300]
    assert json.loads(r.body)["path"] == "/abs?q=1"


# ---------------------------------------------------------------------------------------------
# Well-formed clients.
@pytest.fixture
def echo_gw(gateway_factory, origin):
    return gateway_factory(apis=[keyless_api("echo", "/echo/", origin.url)])


def test_keep_alive_several_requests_one_socket(echo_gw, origin):
    c = RawClient(echo_gw.port)
    try:
        for i in range(5):
            c.send(get(target=f"/echo/ka{i}"))
            r = c.read_response()
            assert r.status == 200
            assert (r.header("Connection") or "").lower() != "close"
            assert json.loads(r.body)["path"] == f"/ka{i}"
        assert not c.closed_by_peer(timeout=0.3)
    finally:
        c.close()
    assert origin.count() == 5


def test_pipelining_three_requests_one_send(echo_gw, origin):
    c = RawClient(echo_gw.port)
    try:
        c.send(get(target="/echo/p1") + get(target="/echo/p2", extra="X-N: 2\r\n")
               + req("POST /echo/p3 HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 3\r\n\r\n", b"abc"))
        paths = []
        for _ in range(3):
            r = c.read_response()
            assert r.status == 200
            seen = json.loads(r.body)
            paths.append((seen["method"], seen["path"], seen["body"]))
        assert paths == [("GET", "/p1", ""), ("GET", "/p2", ""), ("POST", "/p3", "abc")]
    finally:
        c.close()
    assert origin.count() == 3


def test_connection_close_honoured(echo_gw, origin):
    raw, closed = raw_exchange(echo_gw.port, get(extra="Connection: close\r\n")
                               + get(target="/echo/never"))
    resps = parse_responses(raw)
    assert len(resps) == 1, raw
    assert resps[0].status == 200
    assert resps[0].header("Connection").lower() == "close"
    assert closed
    assert origin.count() == 1  # the pipelined request after the close was not served


def test_expect_100_continue(echo_gw, origin):
    c = RawClient(echo_gw.port)
    try:
        c.send(b"POST /echo/up HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 11\r\n"
               b"Expect: 100-continue\r\n\r\n")
        interim = c.read_response()
        assert interim.status == 100
        assert interim.reason == "Continue"
        assert origin.count() == 0
        c.send(b"hello world")
        r = c.read_response()
        assert r.status == 200
        seen = json.loads(r.body)
        assert seen["body"] == "hello world"
        assert "expect" not in [k.lower() for k, _ in seen["headers"]]
    finally:
        c.close()


def test_chunked_request_streamed_and_reframed(strict_env):
    """The gateway forwards the first chunk before the client has sent the rest (no buffering
    of the whole body) and re-frames it as chunked."""
    gw, origin, raw_up = strict_env
    raw_up.clear()
    c = RawClient(gw.port)
    try:
        c.send(CHUNKED_HEAD.format(path="/raw/stream").encode() + b"6\r\nfirst-\r\n")
        deadline = time.time() + 5
        while time.time() < deadline:
            conns = raw_up.snapshot()
            if any(b"first-" in x for x in conns):
                break
            time.sleep(0.02)
        else:
            raise AssertionError(f"first chunk not forwarded before the body ended: {conns!r}")
        c.send(b"7\r\nsecond-\r\n5\r\nthird\r\n0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"ok"
    finally:
        c.close()
    conn = [x for x in raw_up.snapshot() if b"/stream" in x][0]
    head, _, body = conn.partition(b"\r\n\r\n")
    hl = head.lower()
    assert b"transfer-encoding: chunked" in hl
    assert b"content-length" not in hl
    assert body.endswith(b"0\r\n\r\n")


def test_request_trailers_are_passed_on(strict_env):
    """A client's chunked trailer section reaches an HTTP/1.1 upstream, less the fields a
    trailer section may not carry (RFC 9110 6.5.1, here Authorization)."""
    gw, origin, raw_up = strict_env
    raw_up.clear()
    c = RawClient(gw.port)
    try:
        c.send(CHUNKED_HEAD.format(path="/raw/trailers").encode() +
               b"5\r\nhello\r\n0\r\nX-Digest: abc\r\nAuthorization: no\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"ok"
    finally:
        c.close()
    conn = [x for x in raw_up.snapshot() if b"/trailers" in x][0]
    body = conn.partition(b"\r\n\r\n")[2]
    assert body.endswith(b"5\r\nhello\r\n0\r\nX-Digest: abc\r\n\r\n"), body
    assert b"Authorization" not in body


def test_chunked_request_body_decoded_by_origin(echo_gw, origin):
    c = RawClient(echo_gw.port)
    try:
        c.send(CHUNKED_HEAD.format(path="/echo/ch").encode() + b"5;name=v\r\nhello\r\n")
        time.sleep(0.05)
        c.send(b"6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        seen = json.loads(r.body)
        assert seen["body"] == "hello world"
        names = [k.lower() for k, _ in seen["headers"]]
        assert "transfer-encoding" in names and "content-length" not in names
    finally:
        c.close()


def test_chunked_response_from_upstream_intact(echo_gw, origin):
    c = RawClient(echo_gw.port)
    try:
        c.send(get(target="/echo/chunked?n=6"))
        r = c.read_response()
        assert r.status == 200
        assert r.header("Transfer-Encoding").lower() == "chunked"
        assert r.header("Content-Length") is None
        assert r.body == b"".join(f"chunk-{i};".encode() for i in range(6))
        # the connection stays usable
        c.send(get(target="/echo/after"))
        assert c.read_response().status == 200
    finally:
        c.close()


def test_upstream_trailers_are_passed_on(echo_gw, origin):
    """The trailer section of a chunked response reaches an HTTP/1.1 client; fields a trailer
    section may not carry (RFC 9110 6.5.1, here Set-Cookie) are dropped."""
    raw = raw_request(echo_gw.port, get(target="/echo/chunked?n=2&trailers=1",
                                        extra="Connection: close\r\n"), timeout=5)
    assert raw.endswith(b"chunk-1;\r\n0\r\nX-Checksum: abc123\r\n\r\n"), raw[-120:]
    assert b"no=1" not in raw


def test_chunked_response_streamed(echo_gw, origin):
    """The first chunk reaches the client long before the upstream has finished."""
    s = socket.create_connection(("127.0.0.1", echo_gw.port), timeout=10)
    try:
        s.sendall(get(target="/echo/chunked?n=4&gap=0.5", extra="Connection: close\r\n"))
        t0 = time.time()
        data = b""
        first = None
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
            if first is None and b"chunk-0;" in data:
                first = time.time() - t0
        total = time.time() - t0
    finally:
        s.close()
    r = parse_responses(data)[0]
    assert r.body == b"chunk-0;chunk-1;chunk-2;chunk-3;"
    assert first is not None and total - first > 1.0, (first, total)


def test_chunked_response_to_http10_client(echo_gw, origin):
    raw, closed = raw_exchange(echo_gw.port, get(target="/echo/chunked?n=3", version="HTTP/1.0"))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert status_of(raw) == 200
    assert b"transfer-encoding" not in head.lower()
    assert body == b"chunk-0;chunk-1;chunk-2;"
    assert closed


@pytest.fixture
def limited_gw(gateway_factory, origin):
    return gateway_factory(conf={"gatehouse": {"max_body_bytes": 1000}},
                           apis=[keyless_api("echo", "/echo/", origin.url)])


def test_body_at_limit_accepted(limited_gw, origin):
    raw, _ = raw_exchange(limited_gw.port, req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\n"
                                               "Content-Length: 1000\r\nConnection: close\r\n\r\n",
                                               b"a" * 1000))
    r = parse_responses(raw)[0]
    assert r.status == 200
    assert len(json.loads(r.body)["body"]) == 1000


def test_content_length_over_limit_413(limited_gw, origin):
    raw, closed = raw_exchange(limited_gw.port, req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\n"
                                                    "Content-Length: 1001\r\n\r\n", b"a" * 1001))
    assert_refused(raw, closed, 413)
    assert wait_quiet(origin) == 0


def test_content_length_over_limit_with_expect_no_continue(limited_gw, origin):
    c = RawClient(limited_gw.port)
    try:
        c.send(b"POST /echo/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5000\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = c.read_response()
        assert r.status == 413, "no 100 Continue for a body that will be refused"
        assert r.header("Connection").lower() == "close"
        assert c.closed_by_peer()
    finally:
        c.close()
    assert wait_quiet(origin) == 0


def test_chunked_over_limit_413(limited_gw, origin):
    body = b"7d0\r\n" + b"a" * 2000 + b"\r\n0\r\n\r\n"
    raw, closed = raw_exchange(limited_gw.port,
                               CHUNKED_HEAD.format(path="/echo/x").encode() + body)
    assert_refused(raw, closed, 413)
    assert wait_quiet(origin) == 0


def test_chunked_over_limit_small_chunks_413(limited_gw, origin):
    s = socket.create_connection(("127.0.0.1", limited_gw.port), timeout=5)
    try:
        s.sendall(CHUNKED_HEAD.format(path="/echo/x").encode())
        for _ in range(12):  # 12 x 100 bytes, in separate packets
            try:
                s.sendall(b"64\r\n" + b"b" * 100 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.01)
        try:
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed = b"", False
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not b:
                closed = True
                break
            data += b
    finally:
        s.close()
    assert_refused(data, closed, 413)
    assert wait_quiet(origin) == 0


def test_http10_request_works_and_closes(echo_gw, origin):
    raw, closed = raw_exchange(echo_gw.port, get(target="/echo/old", version="HTTP/1.0"))
    resps = parse_responses(raw)
    assert len(resps) == 1
    assert resps[0].status == 200
    assert json.loads(resps[0].body)["path"] == "/old"
    assert (resps[0].header("Connection") or "close").lower() == "close"
    assert closed
    assert origin.count() == 1


def test_http10_keep_alive(echo_gw, origin):
    c = RawClient(echo_gw.port)
    try:
        for i in range(2):
            c.send(get(target=f"/echo/k{i}", version="HTTP/1.0", extra="Connection: keep-alive\r\n"))
            r = c.read_response()
            assert r.status == 200
            assert r.header("Connection").lower() == "keep-alive"
    finally:
        c.close()
    assert origin.count() == 2


def test_leading_crlf_tolerated(echo_gw, origin):
    raw, _ = raw_exchange(echo_gw.port, b"\r\n" + get(extra="Connection: close\r\n"))
    assert status_of(raw) == 200, raw[:200]
    assert origin.count() == 1


def test_no_response_for_idle_open_connection(echo_gw, origin):
    """A connection that sends an incomplete head is neither answered nor proxied."""
    c = RawClient(echo_gw.port)
    try:
        c.send(b"GET /echo/x HTTP/1.1\r\nHost: gw.test\r\n")
        assert not c.closed_by_peer(timeout=0.5)
        assert c.buf == b""
        c.send(b"Connection: close\r\n\r\n")
        assert c.read_response().status == 200
    finally:
        c.close()
    assert origin.count() == 1


def test_requests_library_sanity(echo_gw, origin):
    r = requests.post(echo_gw.url("/echo/lib"), data=b"xyz")
    assert r.status_code == 200 and r.json()["body"] == "xyz"


def test_origin_premise_records_only_complete_chunked_requests(origin):
    """The premise of the chunked-body cases: the `origin` fixture does not record a chunked
    request whose body is cut short (here sent to it directly, without the gateway)."""
    head = (f"POST /direct HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    for partial in (b"", b"5\r\nhello\r\n", b"5\r\nhel"):
        s = socket.create_connection(("127.0.0.1", origin.port), timeout=5)
        s.sendall(head + partial)
        time.sleep(0.05)
        s.close()
    time.sleep(0.2)
    assert origin.count() == 0
    raw, _ = raw_exchange(origin.port, head.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n")
                          + b"5\r\nhello\r\n0\r\n\r\n")
    assert status_of(raw) == 200
    assert origin.count() == 1


def test_head_request_keeps_connection_usable(echo_gw, origin):
    c = RawClient(echo_gw.port)
    try:
        c.send(b"HEAD /echo/h HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        r = c.read_response(head_only=True)
        assert r.status == 200
        assert int(r.header("Content-Length")) > 0
        c.send(get(target="/echo/after-head"))
        r = c.read_response()
        assert r.status == 200 and json.loads(r.body)["path"] == "/after-head"
    finally:
        c.close()


def test_large_response_streamed_intact(echo_gw, origin):
    n = 3 * 1024 * 1024 + 17
    r = requests.get(echo_gw.url(f"/echo/big?n={n}"), stream=True)
    got = 0
    for block in r.iter_content(65536):
        assert set(block) == {ord("x")}
        got += len(block)
    assert got == n


def test_large_request_body_streamed(echo_gw, origin):
    body = bytes(range(256)) * 8192  # 2 MiB
    r = requests.post(echo_gw.url("/echo/upload"), data=body)
    assert r.status_code == 200
    assert r.json()["body"].encode("latin-1") == body


def test_max_request_body_size_tyk_field(gateway_factory, origin):
    gw = gateway_factory(conf={"http_server_options": {"max_request_body_size": 500}},
                         apis=[keyless_api("echo", "/echo/", origin.url)])
    raw, closed = raw_exchange(gw.port, req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\n"
                                            "Content-Length: 501\r\n\r\n", b"a" * 501))
    assert_refused(raw, closed, 413)
    raw, _ = raw_exchange(gw.port, req("POST /echo/x HTTP/1.1\r\nHost: gw.test\r\n"
                                       "Content-Length: 500\r\nConnection: close\r\n\r\n", b"a" * 500))
    assert status_of(raw) == 200
    assert origin.count() == 1


@pytest.mark.parametrize("data,expected", [
    pytest.param(get(target="/nothing/here", extra="Connection: close\r\n"), 404, id="no-api"),
    pytest.param(req("POST /nothing HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 4\r\n\r\n", b"abcd"),
                 404, id="no-api-with-body"),
])
def test_no_matching_api_nothing_proxied(strict_env, data, expected):
    gw, origin, raw_up = strict_env
    origin.clear()
    raw_up.clear()
    raw, _ = raw_exchange(gw.port, data, timeout=2)
    assert status_of(raw) == expected
    assert json.loads(parse_responses(raw)[0].body) == {"error": "Not Found"}
    assert wait_quiet(origin) == 0 and raw_up.snapshot() == []


def test_pipelining_chunked_then_get(echo_gw, origin):
    c = RawClient(echo_gw.port)
    try:
        c.send(CHUNKED_HEAD.format(path="/echo/c1").encode() + b"3\r\nabc\r\n0\r\n\r\n"
               + get(target="/echo/c2"))
        r1, r2 = c.read_response(), c.read_response()
        assert (json.loads(r1.body)["path"], json.loads(r1.body)["body"]) == ("/c1", "abc")
        assert json.loads(r2.body)["path"] == "/c2"
    finally:
        c.close()


def test_pipelining_stops_at_malformed_request(echo_gw, origin):
    """A valid request is answered; the malformed one after it gets a 400 and the connection
    closes; nothing after it is read as a request (no smuggling)."""
    raw, closed = raw_exchange(echo_gw.port, get(target="/echo/first")
                               + b"GET /echo/second HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1\r\n"
                                 b"Content-Length: 2\r\n\r\nx"
                               + get(target="/echo/third"))
    resps = parse_responses(raw)
    assert [r.status for r in resps] == [200, 400], raw
    assert resps[1].header("Connection").lower() == "close"
    assert closed
    assert [r["path"] for r in origin.requests] == ["/first"]


def test_body_is_not_read_as_next_request(echo_gw, origin):
    """A request hidden in a body stays body."""
    hidden = get(target="/echo/hidden")
    raw, _ = raw_exchange(echo_gw.port, req(f"POST /echo/outer HTTP/1.1\r\nHost: gw.test\r\n"
                                            f"Content-Length: {len(hidden)}\r\nConnection: close\r\n\r\n",
                                            hidden))
    resps = parse_responses(raw)
    assert len(resps) == 1 and resps[0].status == 200
    assert [r["path"] for r in origin.requests] == ["/outer"]
    assert origin.requests[0]["body"].encode("latin-1") == hidden
