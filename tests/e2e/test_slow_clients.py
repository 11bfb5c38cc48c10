"""Slow and greedy clients, end to end: a request head trickled byte by byte (slowloris) is cut
off at `gatehouse.header_timeout` for the whole head; a request body that stalls longer than
`http_server_options.read_timeout` between reads (slow POST) is cut off and nothing incomplete
is answered as a success; an idle keep-alive connection is closed after
`gatehouse.idle_timeout`; `gatehouse.max_connections_per_worker` caps connections. In each case
other clients are served normally meanwhile."""
import socket
import threading
import time

import requests

from conftest import keyless_api


def closed_within(sock, seconds):
    """Reads until the gateway closes; returns (closed, bytes received, seconds taken)."""
    sock.settimeout(seconds)
    t0 = time.time()
    got = b""
    try:
        while True:
            b = sock.recv(4096)
            if not b:
                return True, got, time.time() - t0
            got += b
    except socket.timeout:
        return False, got, time.time() - t0
    except OSError:
        return True, got, time.time() - t0


def test_slowloris_head_is_cut_off_while_others_are_served(gateway_factory, origin):
    gw = gateway_factory(conf={"gatehouse": {"header_timeout": 2, "workers": 1}},
                         apis=[keyless_api("a", "/a/", origin.url)])
    slow = socket.create_connection(("127.0.0.1", gw.port))
    stop = threading.Event()
    sent = []

    def trickle():
        # A valid head, one byte every 0.2 s: it would take about 8 s to finish.
        head = b"GET /a/slow HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 25 + b"\r\n\r\n"
        for b in head:
            if stop.is_set():
                return
            try:
                slow.send(bytes([b]))
                sent.append(b)
            except OSError:
                return
            time.sleep(0.2)
    t0 = time.time()
    th = threading.Thread(target=trickle, daemon=True)
    th.start()
    # Meanwhile, on the same single worker, normal requests are answered at once.
    for i in range(5):
        r = requests.get(gw.url(f"/a/fast{i}"), timeout=2)
        assert r.status_code == 200
    closed, _, _ = closed_within(slow, 6)
    stop.set()
    assert closed, "the slow head was not cut off"
    assert time.time() - t0 < 5
    assert len(sent) < 60  # it was cut off before the head was complete
    assert not any(r["path"] == "/slow" for r in origin.requests)
    slow.close()


def test_slow_body_is_cut_off(gateway_factory, origin):
    gw = gateway_factory(conf={"http_server_options": {"read_timeout": 1}},
                         apis=[keyless_api("a", "/a/", origin.url)])
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.sendall(b"POST /a/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
    time.sleep(0.3)
    s.sendall(b"y" * 10)
    # Then nothing for longer than read_timeout.
    closed, got, took = closed_within(s, 5)
    assert closed and took < 4
    assert not got.startswith(b"HTTP/1.1 2")
    s.close()
    assert requests.get(gw.url("/a/after")).status_code == 200
    # The origin never saw a complete upload.
    assert not any(r["path"] == "/upload" and len(r["body"]) == 1000 for r in origin.requests)


def test_idle_keepalive_connection_is_closed(gateway_factory, origin):
    gw = gateway_factory(conf={"gatehouse": {"idle_timeout": 1}},
                         apis=[keyless_api("a", "/a/", origin.url)])
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.sendall(b"GET /a/one HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(3)
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    closed, _, took = closed_within(s, 4)
    assert closed and took < 3
    s.close()


def test_connection_cap_per_worker(gateway_factory, origin):
    gw = gateway_factory(conf={"gatehouse": {"max_connections_per_worker": 3, "workers": 1}},
                         apis=[keyless_api("a", "/a/", origin.url)])
    held = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(3)]
    time.sleep(0.3)
    extra = socket.create_connection(("127.0.0.1", gw.port))
    extra.sendall(b"GET /a/x HTTP/1.1\r\nHost: x\r\n\r\n")
    closed, got, _ = closed_within(extra, 3)
    assert closed and got == b"", "a connection over the cap was served"
    extra.close()
    # The held connections still work; once they are gone, new ones are served again.
    held[0].sendall(b"GET /a/held HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    _, got, _ = closed_within(held[0], 3)
    assert got.startswith(b"HTTP/1.1 200")
    for h in held:
        h.close()
    time.sleep(0.3)
    assert requests.get(gw.url("/a/again"), timeout=3).status_code == 200
