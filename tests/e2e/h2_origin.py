"""A real HTTP/2 upstream for the tests, on Python's h2 (Debian python3-h2): over TLS with ALPN
offering h2 only (an upstream that speaks nothing else), or cleartext with prior knowledge (h2c).
Every stream is answered on its own thread, so slow answers do not hold up the others, and
response data respects the gateway's flow-control windows.

Paths: `/slow?s=N` answers after N seconds; `/chunked?n=N` answers N DATA frames without a
content-length, then trailers; `/big?n=N` sends N bytes with a content-length; `/reset` sends a
head, some data, then RST_STREAM; `/refuse-once` refuses its first stream (REFUSED_STREAM); `/goaway` answers, then ends the connection with GOAWAY;
anything else answers JSON describing the request (method, path, authority, headers, body,
the connection's number and its ALPN protocol)."""
import json
import socket
import ssl
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions


class _Conn:
    def __init__(self, origin, sock, number):
        self.origin = origin
        self.sock = sock
        self.number = number
        self.lock = threading.Lock()
        self.window_open = threading.Condition(self.lock)
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.heads = {}
        self.bodies = {}
        self.closed = False
        self.alpn = sock.selected_alpn_protocol() if isinstance(sock, ssl.SSLSocket) else "h2c"

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def run(self):
        with self.lock:
            self.h2.initiate_connection()
            self.flush()
        try:
            while not self.closed:
                data = self.sock.recv(65536)
                if not data:
                    break
                with self.lock:
                    try:
                        events = self.h2.receive_data(data)
                    except h2.exceptions.ProtocolError:
                        self.flush()
                        break
                    for ev in events:
                        self.event(ev)
                    self.flush()
                    self.window_open.notify_all()
        except OSError:
            pass
        with self.lock:
            self.closed = True
            self.window_open.notify_all()
        try:
            self.sock.close()
        except OSError:
            pass

    def event(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            self.heads[ev.stream_id] = [(k.decode() if isinstance(k, bytes) else k,
                                         v.decode() if isinstance(v, bytes) else v)
                                        for k, v in ev.headers]
            self.bodies[ev.stream_id] = bytearray()
        elif isinstance(ev, h2.events.DataReceived):
            self.bodies.setdefault(ev.stream_id, bytearray()).extend(ev.data)
            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            head = self.heads.pop(ev.stream_id, [])
            body = bytes(self.bodies.pop(ev.stream_id, b""))
            threading.Thread(target=self.answer, args=(ev.stream_id, head, body),
                             daemon=True).start()
        elif isinstance(ev, h2.events.StreamReset):
            with self.origin.lock:
                self.origin.resets.append(ev.stream_id)

    def send_body(self, sid, data, end=True):
        """Sends `data` within the stream's and the connection's windows."""
        view = memoryview(data)
        with self.lock:
            while len(view) and not self.closed:
                try:
                    room = min(self.h2.local_flow_control_window(sid),
                               self.h2.max_outbound_frame_size, len(view))
                except h2.exceptions.StreamClosedError:
                    return
                if room <= 0:
                    self.window_open.wait(1)
                    continue
                self.h2.send_data(sid, bytes(view[:room]))
                view = view[room:]
                self.flush()
            if end and not self.closed:
                self.h2.end_stream(sid)
                self.flush()

    def respond(self, sid, status, headers, body=b"", end=True):
        with self.lock:
            if self.closed:
                return
            self.h2.send_headers(sid, [(":status", str(status))] + headers,
                                 end_stream=not body and end)
            self.flush()
        if body:
            self.send_body(sid, body, end)

    def answer(self, sid, head, body):
        fields = dict((k, v) for k, v in head if k.startswith(":"))
        path = fields.get(":path", "/")
        base = path.split("?")[0]
        q = {}
        if "?" in path:
            for part in path.split("?", 1)[1].split("&"):
                k, _, v = part.partition("=")
                q[k] = v
        record = {"method": fields.get(":method"), "path": path,
                  "scheme": fields.get(":scheme"), "authority": fields.get(":authority"),
                  "headers": [[k, v] for k, v in head if not k.startswith(":")],
                  "body": body.decode("latin-1"), "connection": self.number, "alpn": self.alpn,
                  "stream": sid}
        with self.origin.lock:
            self.origin.requests.append(record)
        try:
            if base.endswith("/slow"):
                time.sleep(float(q.get("s", "2")))
            if base.endswith("/chunked"):
                self.respond(sid, 200, [("content-type", "text/plain")], end=False)
                for i in range(int(q.get("n", "5"))):
                    self.send_body(sid, f"chunk-{i};".encode(), end=False)
                with self.lock:
                    if not self.closed:
                        self.h2.send_headers(sid, [("x-checksum", "abc123")], end_stream=True)
                        self.flush()
                return
            if base.endswith("/big"):
                n = int(q.get("n", "1048576"))
                self.respond(sid, 200, [("content-length", str(n))], b"y" * n)
                return
            if base.endswith("/reset"):
                self.respond(sid, 200, [("content-length", "100")], end=False)
                self.send_body(sid, b"partial", end=False)
                with self.lock:
                    self.h2.reset_stream(sid, 2)  # INTERNAL_ERROR
                    self.flush()
                return
            if base.endswith("/refuse-once"):
                with self.origin.lock:
                    first = not self.origin.refused
                    self.origin.refused = True
                if first:
                    # As an upstream does that will not take the stream (nothing processed).
                    with self.lock:
                        self.h2.reset_stream(sid, 7)  # REFUSED_STREAM
                        self.flush()
                    return
            if base.endswith("/status"):
                self.respond(sid, int(q.get("code", "200")), [])
                return
            out = json.dumps(record).encode()
            headers = [("content-type", "application/json"), ("x-origin", self.origin.name)]
            if fields.get(":method") == "HEAD":
                self.respond(sid, 200, headers + [("content-length", str(len(out)))])
                return
            self.respond(sid, 200, headers + [("content-length", str(len(out)))], out)
            if base.endswith("/goaway"):
                with self.lock:
                    self.h2.close_connection()
                    self.flush()
                    self.closed = True
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        except (h2.exceptions.ProtocolError, OSError):
            pass


class H2Origin:
    def __init__(self, name="h2origin", tls_cert=None, tls_key=None):
        self.name = name
        self.requests = []
        self.resets = []
        self.refused = False
        self.connections = 0
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.ctx = None
        if tls_cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(tls_cert, tls_key)
            self.ctx.set_alpn_protocols(["h2"])
        self.running = True
        self.conns = []
        threading.Thread(target=self.accept_loop, daemon=True).start()

    @property
    def url(self):
        return f"{'https' if self.ctx else 'h2c'}://127.0.0.1:{self.port}"

    def accept_loop(self):
        while self.running:
            try:
                s, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    def serve(self, s):
        try:
            if self.ctx:
                s = self.ctx.wrap_socket(s, server_side=True)
                if s.selected_alpn_protocol() != "h2":
                    # Only HTTP/2 is spoken here: a client that did not ask for it is refused.
                    s.close()
                    return
        except (OSError, ssl.SSLError):
            s.close()
            return
        with self.lock:
            self.connections += 1
            number = self.connections
        c = _Conn(self, s, number)  # (h2c: a client without the preface is refused by h2)
        self.conns.append(c)
        c.run()

    def clear(self):
        with self.lock:
            self.requests.clear()
            self.resets.clear()

    def stop(self):
        self.running = False
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way
        except OSError:
            pass
        self.listener.close()
        for c in self.conns:
            c.closed = True
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
