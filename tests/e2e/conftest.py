"""Shared fixtures for the end-to-end tests.

Every test starts the real `gatehouse` binary (GATEHOUSE_BIN, default build/release/gatehouse)
against real upstreams started here, and talks to it with real clients. Certificates are made at
test time with the openssl command line (nothing secret is committed).
"""
import hashlib
import http.server
import json
import os
import signal
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("GATEHOUSE_BIN", str(ROOT / "build" / "release" / "gatehouse"))
SECRET = "test-secret-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------------------------
# PKI made at test time.
class Pki:
    def __init__(self, root: Path):
        self.dir = root
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key, self.ca = self._ca("Gatehouse Test Root CA", "root")
        self.int_key, self.int_cert = self._intermediate("Gatehouse Test Intermediate", "int")

    def _run(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.dir)

    def _key(self, name, kind):
        path = self.dir / f"{name}.key"
        if kind == "rsa":
            self._run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(path))
        else:
            self._run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
        return path

    def _ca(self, cn, name):
        key = self._key(name, "ec")
        cert = self.dir / f"{name}.pem"
        self._run("req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", "30",
                  "-subj", f"/CN={cn}", "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return key, cert

    def _intermediate(self, cn, name):
        key = self._key(name, "ec")
        csr = self.dir / f"{name}.csr"
        cert = self.dir / f"{name}.pem"
        ext = self.dir / f"{name}.ext"
        ext.write_text("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
        self._run("req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={cn}")
        self._run("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
                  "-CAcreateserial", "-out", str(cert), "-days", "30", "-extfile", str(ext))
        return key, cert

    def leaf(self, name, dns_names, kind="ec", days=30, client=False):
        """Leaf signed by the intermediate. Returns (cert_file, key_file, chain_file, combined)."""
        key = self._key(name, kind)
        csr = self.dir / f"{name}.csr"
        cert = self.dir / f"{name}.pem"
        ext = self.dir / f"{name}.ext"
        sans = ",".join(f"DNS:{d}" if not d[0].isdigit() else f"IP:{d}" for d in dns_names)
        usage = "clientAuth" if client else "serverAuth"
        ext.write_text(f"subjectAltName={sans}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
        self._run("req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={dns_names[0]}")
        self._run("x509", "-req", "-in", str(csr), "-CA", str(self.int_cert), "-CAkey", str(self.int_key),
                  "-CAcreateserial", "-out", str(cert), "-days", str(days), "-extfile", str(ext))
        chain = self.dir / f"{name}.chain.pem"
        chain.write_text(cert.read_text() + self.int_cert.read_text())
        combined = self.dir / f"{name}.combined.pem"
        combined.write_text(chain.read_text() + key.read_text())
        return str(cert), str(key), str(chain), str(combined)


def expired_client_cert(pki, key_file, path, future=False):
    """A certificate for the key in `key_file`, signed by the intermediate, expired yesterday
    (or, with `future`, valid only from tomorrow). Returns (cert_file, key_file)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    key = serialization.load_pem_private_key(open(key_file, "rb").read(), None)
    int_cert = x509.load_pem_x509_certificate(pki.int_cert.read_bytes())
    int_key = serialization.load_pem_private_key(pki.int_key.read_bytes(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    exp = (x509.CertificateBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "old")]))
           .issuer_name(int_cert.subject).public_key(key.public_key())
           .serial_number(x509.random_serial_number())
           .not_valid_before(now + datetime.timedelta(days=1) if future
                             else now - datetime.timedelta(days=30))
           .not_valid_after(now + datetime.timedelta(days=30) if future
                            else now - datetime.timedelta(days=1))
           .sign(int_key, hashes.SHA256()))
    Path(path).write_bytes(exp.public_bytes(serialization.Encoding.PEM))
    return str(path), str(key_file)


def tls_connect(port, sni=None, cert=None):
    """A TLS connection to the gateway (server not verified), with a client certificate
    (cert_file, key_file) when given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(s, server_hostname=sni)


def tls_request(sock, host, path="/", headers=None):
    """One GET on an open (keep-alive) connection; returns the parsed response."""
    h = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{h}\r\n".encode())
    buf = b""
    while True:
        got = parse_one_response(buf)
        if got:
            return got[0]
        b = sock.recv(65536)
        if not b:
            return parse_one_response(buf, until_close=True)[0]
        buf += b


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


# ---------------------------------------------------------------------------------------------
# A real origin: records every request it receives and answers with a JSON echo.
class _OriginHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body are separate writes

    def log_message(self, *args):
        pass

    def _handle(self):
        origin = self.server.origin
        body = b""
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        elif self.headers.get("Content-Length"):
            body = self.rfile.read(int(self.headers["Content-Length"]))
        record = {
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.decode("latin-1"),
        }
        if isinstance(self.connection, ssl.SSLSocket):
            # What the TLS client (the gateway) presented: its certificate and the server name.
            der = self.connection.getpeercert(binary_form=True)
            record["client_cert_sha256"] = hashlib.sha256(der).hexdigest() if der else None
            record["sni"] = getattr(self.connection, "gh_sni", None)
        with origin.lock:
            origin.requests.append(record)
        path = self.path.split("?")[0]
        if path.endswith("/slow"):
            time.sleep(float(self._q("s", "2")))
        if path.endswith("/status"):
            code = int(self._q("code", "200"))
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path.endswith("/chunked"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            n = int(self._q("n", "5"))
            for i in range(n):
                data = f"chunk-{i};".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                time.sleep(float(self._q("gap", "0")))
            if self._q("trailers", "0") == "1":
                # A trailer to pass on, and one a trailer section may not carry.
                self.wfile.write(b"0\r\nX-Checksum: abc123\r\nSet-Cookie: no=1\r\n\r\n")
            else:
                self.wfile.write(b"0\r\n\r\n")
            return
        if path.endswith("/big"):
            n = int(self._q("n", "1048576"))
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            block = b"x" * 65536
            left = n
            while left > 0:
                self.wfile.write(block[:min(left, len(block))])
                left -= min(left, len(block))
            return
        if path.endswith("/hopbyhop"):
            self.send_response(200)
            self.send_header("Connection", "X-Secret-Hop")
            self.send_header("X-Secret-Hop", "1")
            self.send_header("Keep-Alive", "timeout=5")
            self.send_header("X-Kept", "yes")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            return
        out = json.dumps(record).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("X-Origin", origin.name)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    def _q(self, name, default):
        if "?" not in self.path:
            return default
        for part in self.path.split("?", 1)[1].split("&"):
            k, _, v = part.partition("=")
            if k == name:
                return v
        return default

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # many connections at once (HTTP/2 streams each take one)


class Origin:
    def __init__(self, name="origin", tls_cert=None, tls_key=None, tls_max=None, client_ca=None,
                 client_required=True, tls_min=None):
        self.name = name
        self.requests = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.server = _ThreadingServer(("127.0.0.1", self.port), _OriginHandler)
        self.server.origin = self
        self.scheme = "http"
        if tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_cert, tls_key)
            if tls_max:
                ctx.maximum_version = tls_max
            if tls_min:
                ctx.minimum_version = tls_min
            if client_ca:
                # Upstream mutual TLS: ask for (or require) a client certificate of this CA.
                ctx.load_verify_locations(client_ca)
                ctx.verify_mode = ssl.CERT_REQUIRED if client_required else ssl.CERT_OPTIONAL

            def remember_sni(sock, name, _ctx):
                sock.gh_sni = name
            ctx.sni_callback = remember_sni
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def clear(self):
        with self.lock:
            self.requests.clear()

    def count(self):
        with self.lock:
            return len(self.requests)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# A module-wide origin (stopping one costs half a second); each test starts with it cleared.
@pytest.fixture(scope="module")
def _module_origin():
    o = Origin("origin")
    yield o
    o.stop()


@pytest.fixture
def origin(_module_origin):
    _module_origin.clear()
    return _module_origin


# ---------------------------------------------------------------------------------------------
def keyless_api(api_id, listen_path, target, **extra):
    d = {
        "name": api_id, "api_id": api_id, "org_id": "default", "active": True, "use_keyless": True,
        "version_data": {"not_versioned": True, "versions": {"Default": {"name": "Default"}}},
        "proxy": {"listen_path": listen_path, "target_url": target, "strip_listen_path": True},
    }
    for k, v in extra.items():
        if k == "proxy":
            d["proxy"].update(v)
        else:
            d[k] = v
    return d


class Gateway:
    """The real binary with a tyk.conf and an app_path of its own."""

    def __init__(self, workdir: Path, conf: dict, apis=(), env=None, raw_conf=None):
        self.dir = workdir
        self.apps = workdir / "apps"
        self.apps.mkdir(parents=True, exist_ok=True)
        self.port = conf.get("listen_port") or free_port()
        base = {"listen_port": self.port, "secret": SECRET, "app_path": str(self.apps),
                "gatehouse": {"workers": 2, "store": {"type": "embedded",
                                                      "path": str(workdir / "gatehouse.db")}}}
        for k, v in conf.items():
            if k == "gatehouse":
                base["gatehouse"].update(v)
            else:
                base[k] = v
        self.conf = base
        for api in apis:
            self.add_api_file(api)
        self.conf_path = workdir / "tyk.conf"
        self.conf_path.write_text(raw_conf if raw_conf is not None else json.dumps(base, indent=2))
        self.control_port = base.get("control_api_port") or self.port
        self.tls = bool(base.get("http_server_options", {}).get("use_ssl"))
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.log_path = workdir / "gatehouse.log"

    def add_api_file(self, api, name=None):
        api_id = api.get("api_id") or api["x-tyk-api-gateway"]["info"]["id"]
        (self.apps / (name or f"{api_id}.json")).write_text(json.dumps(api))

    def start(self, wait=True):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([BIN, "--conf", str(self.conf_path)], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env)
        if wait:
            assert wait_port(self.port), f"gatehouse did not listen: {self.logs()}"
            if self.control_port != self.port:
                assert wait_port(self.control_port), self.logs()
        return self

    def logs(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    def url(self, path="/"):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def control_url(self, path):
        return f"{self.scheme}://127.0.0.1:{self.control_port}{path}"

    def admin(self, method, path, body=None, secret=SECRET, raw=None, headers=None):
        import requests
        h = {"X-Tyk-Authorization": secret} if secret is not None else {}
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return requests.request(method, self.control_url(path), data=data, headers=h, verify=False,
                                timeout=10)

    def reload(self):
        r = self.admin("GET", "/tyk/reload?block=true")
        assert r.status_code == 200, r.text

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        return self.proc.returncode if self.proc else None


# ---------------------------------------------------------------------------------------------
# A real Redis (Debian's redis-server), on a free port, data in its own folder (append-only file,
# fsync always, so a restart keeps every write).
class Redis:
    def __init__(self, workdir: Path, tls=None, password=None):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls = tls  # {"cert", "key", "ca", "auth_clients"}
        self.password = password
        self.proc = None

    def args(self):
        a = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.dir), "--protected-mode", "no"]
        if self.tls:
            a += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", self.tls["cert"],
                  "--tls-key-file", self.tls["key"], "--tls-ca-cert-file", self.tls["ca"],
                  "--tls-auth-clients", "yes" if self.tls.get("auth_clients", True) else "no"]
            if self.tls.get("protocols"):
                a += ["--tls-protocols", self.tls["protocols"]]
        else:
            a += ["--port", str(self.port)]
        if self.password:
            a += ["--requirepass", self.password]
        return a

    def start(self):
        self.log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(self.args(), stdout=self.log, stderr=subprocess.STDOUT)
        assert wait_port(self.port), (self.dir / "redis.log").read_text()
        deadline = time.time() + 10
        while time.time() < deadline:  # the port opens before the data is loaded
            try:
                if self.cli("PING").strip() == "PONG":
                    return self
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.05)
        raise AssertionError("redis did not answer PING")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.log.close()

    def cli(self, *args):
        a = ["redis-cli", "-p", str(self.port)]
        if self.tls:
            a += ["--tls", "--cacert", self.tls["ca"]]
            if "client_cert" in self.tls:
                a += ["--cert", self.tls["client_cert"], "--key", self.tls["client_key"]]
        if self.password:
            a += ["--no-auth-warning", "-a", self.password]
        return subprocess.run(a + list(args), capture_output=True, text=True, check=True,
                              timeout=10).stdout

    def storage_conf(self):
        return {"type": "redis", "host": "127.0.0.1", "port": self.port}


@pytest.fixture
def redis_factory(tmp_path):
    made = []

    def make(**kw):
        r = Redis(tmp_path / f"redis{len(made)}", **kw)
        made.append(r)
        return r.start()

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def gateway_factory(tmp_path):
    made = []

    def make(conf=None, apis=(), env=None, start=True, raw_conf=None):
        d = tmp_path / f"gw{len(made)}"
        d.mkdir()
        g = Gateway(d, conf or {}, apis, env, raw_conf)
        made.append(g)
        if start:
            g.start()
        return g

    yield make
    for g in made:
        g.stop()
    # Under the ASan/UBSan build a sanitizer report anywhere in a gateway's log fails the test,
    # even when the requests themselves succeeded.
    for g in made:
        logs = g.logs()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert marker not in logs, f"sanitizer report in {g.log_path}:\n{logs[-4000:]}"


def raw_request(port, data: bytes, timeout=3.0, tls_ctx=None, server_hostname=None):
    """Sends raw bytes and returns everything the gateway answers until it closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls_ctx is not None:
        s = tls_ctx.wrap_socket(s, server_hostname=server_hostname)
    try:
        s.sendall(data)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        s.close()


def read_to_close(sock) -> bytes:
    """Everything a socket delivers until the peer closes it."""
    buf = b""
    while True:
        b = sock.recv(65536)
        if not b:
            return buf
        buf += b


def status_of(raw: bytes) -> int:
    line = raw.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


# ---------------------------------------------------------------------------------------------
# Raw-socket helpers for the strict HTTP/1.1 tests (added; nothing above depends on them).
class RawResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value), in order
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


def parse_one_response(buf: bytes, head_only=False, until_close=False):
    """Parses one response from the start of `buf`. Returns (RawResponse, rest) or None when
    `buf` does not hold a whole response yet. A body without framing needs `until_close`."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k, v.strip()))
    r = RawResponse(status, reason, headers, b"")
    rest = buf[end + 4:]
    if head_only or 100 <= status < 200 or status in (204, 304):
        return r, rest
    te = r.header("Transfer-Encoding")
    if te is not None and "chunked" in te.lower():
        body = b""
        pos = 0
        while True:
            lf = rest.find(b"\r\n", pos)
            if lf < 0:
                return None
            size = int(rest[pos:lf].split(b";")[0], 16)
            pos = lf + 2
            if size == 0:
                # trailers until the empty line
                while True:
                    lf = rest.find(b"\r\n", pos)
                    if lf < 0:
                        return None
                    line = rest[pos:lf]
                    pos = lf + 2
                    if line == b"":
                        r.body = body
                        return r, rest[pos:]
            if len(rest) < pos + size + 2:
                return None
            body += rest[pos:pos + size]
            assert rest[pos + size:pos + size + 2] == b"\r\n", "chunk data not followed by CRLF"
            pos += size + 2
    cl = r.header("Content-Length")
    if cl is not None:
        n = int(cl)
        if len(rest) < n:
            return None
        r.body = rest[:n]
        return r, rest[n:]
    if until_close:
        r.body = rest
        return r, b""
    return None


def parse_responses(buf: bytes):
    """Every whole response in `buf` (the last one may be delimited by the close)."""
    out = []
    while buf:
        p = parse_one_response(buf)
        if p is None:
            p = parse_one_response(buf, until_close=True)
            if p is None:
                break
        r, buf = p
        out.append(r)
    return out


def raw_exchange(port, data: bytes, timeout=5.0):
    """Sends raw bytes, reads until the peer closes or `timeout` passes.
    Returns (bytes, closed_by_peer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    chunks = []
    closed = False
    deadline = time.time() + timeout
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while True:
            left = deadline - time.time()
            if left <= 0:
                break
            s.settimeout(left)
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
            chunks.append(b)
        return b"".join(chunks), closed
    finally:
        s.close()


class RawClient:
    """A client socket that reads whole responses one at a time (keep-alive, pipelining)."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def send(self, data: bytes):
        self.sock.sendall(data)

    def read_response(self, head_only=False, timeout=5.0):
        deadline = time.time() + timeout
        while True:
            p = parse_one_response(self.buf, head_only=head_only)
            if p is not None:
                r, self.buf = p
                return r
            if self.eof:
                p = parse_one_response(self.buf, head_only=head_only, until_close=True)
                if p is not None:
                    r, self.buf = p
                    return r
                raise AssertionError(f"connection closed before a whole response: {self.buf!r}")
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"no whole response within {timeout}s: {self.buf!r}")
            self.sock.settimeout(left)
            try:
                b = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not b:
                self.eof = True
            self.buf += b

    def closed_by_peer(self, timeout=3.0):
        """True when the peer closes (EOF/reset) within `timeout` and sends nothing more."""
        if self.eof:
            return not self.buf
        self.sock.settimeout(timeout)
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if b:
            self.buf += b
            return False
        self.eof = True
        return True

    def close(self):
        self.sock.close()
