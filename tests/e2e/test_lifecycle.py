"""Process life: command line, config errors, environment overrides, workers, reload as a
snapshot swap under load, graceful shutdown, access log."""
import json
import signal
import socket
import subprocess
import threading
import time

import requests

from conftest import BIN, SECRET, free_port, keyless_api


def test_version_and_fingerprint(pki):
    out = subprocess.run([BIN, "version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("gatehouse ")
    cert = pki.leaf("fp", ["fp.test"])[0]
    fp = subprocess.run([BIN, "cert", "fingerprint", cert], capture_output=True, text=True,
                        check=True).stdout.strip()
    der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], capture_output=True,
                         check=True).stdout
    import hashlib
    assert fp == hashlib.sha256(der).hexdigest()


def test_refuses_to_start_without_secret(tmp_path):
    conf = tmp_path / "tyk.conf"
    conf.write_text(json.dumps({"listen_port": free_port(), "app_path": str(tmp_path)}))
    p = subprocess.run([BIN, "--conf", str(conf)], capture_output=True, text=True, timeout=10)
    assert p.returncode != 0
    assert str(conf) in p.stderr and '"secret"' in p.stderr


def test_bad_field_names_field_and_file(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text(json.dumps({"secret": "s", "http_server_options": {"read_timeout": "soon"}}))
    p = subprocess.run([BIN, "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert p.returncode != 0
    assert "http_server_options.read_timeout" in p.stderr and str(conf) in p.stderr


def test_validate_command(tmp_path, origin):
    apps = tmp_path / "apps"
    apps.mkdir()
    (apps / "good.json").write_text(json.dumps(keyless_api("good", "/g/", origin.url)))
    conf = tmp_path / "tyk.conf"
    conf.write_text(json.dumps({"secret": "s", "app_path": str(apps)}))
    p = subprocess.run([BIN, "validate", "--conf", str(conf)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "1 API definitions loaded" in p.stdout
    (apps / "broken.json").write_text("{nope")
    p = subprocess.run([BIN, "validate", "--conf", str(conf)], capture_output=True, text=True)
    assert p.returncode == 1
    assert "broken.json" in p.stderr


def test_environment_overrides_and_env_secret(gateway_factory, origin):
    port = free_port()
    gw = gateway_factory(conf={"secret": "env://GH_TEST_SECRET", "listen_port": 1},
                         apis=[keyless_api("echo", "/echo/", origin.url)], start=False,
                         env={"TYK_GW_LISTENPORT": str(port), "GH_TEST_SECRET": "from-env-secret"})
    gw.port = gw.control_port = port
    gw.start()
    assert requests.get(gw.url("/echo/")).status_code == 200
    assert gw.admin("GET", "/tyk/apis", secret="from-env-secret").status_code == 200
    assert gw.admin("GET", "/tyk/apis", secret=SECRET).status_code == 403
    assert "from-env-secret" not in gw.logs()


def test_both_workers_serve(gateway_factory, origin):
    gw = gateway_factory(conf={"gatehouse": {"workers": 2}},
                         apis=[keyless_api("echo", "/echo/", origin.url)])
    for _ in range(40):
        requests.get(gw.url("/echo/"), headers={"Connection": "close"})
    time.sleep(0.5)
    workers = {json.loads(l)["worker"] for l in gw.logs().splitlines()
               if l.startswith("{") and '"msg":"access"' in l}
    assert workers == {0, 1}


def test_access_log_has_no_secrets(gateway_factory, origin):
    gw = gateway_factory(apis=[keyless_api("echo", "/echo/", origin.url)])
    requests.get(gw.url("/echo/p?api_key=SUPERSECRETQUERY"),
                 headers={"Authorization": "Bearer SUPERSECRETTOKEN", "Cookie": "s=SUPERSECRETCOOKIE"})
    gw.admin("GET", "/tyk/apis")
    gw.admin("GET", "/tyk/apis", secret="WRONGSECRETVALUE")
    time.sleep(0.5)
    logs = gw.logs()
    lines = [json.loads(l) for l in logs.splitlines() if '"msg":"access"' in l]
    assert any(l["path"] == "/echo/p" and l["status"] == 200 and l["api_id"] == "echo" for l in lines)
    for secret in ("SUPERSECRET", SECRET, "WRONGSECRETVALUE"):
        assert secret not in logs


def test_reload_20_times_under_keepalive_load(gateway_factory, origin):
    gw = gateway_factory(apis=[keyless_api("echo", "/echo/", origin.url)])
    stop = threading.Event()
    results = {"ok": 0, "failed": []}
    lock = threading.Lock()

    def load():
        s = requests.Session()
        while not stop.is_set():
            try:
                r = s.get(gw.url("/echo/load"), timeout=5)
                with lock:
                    if r.status_code == 200:
                        results["ok"] += 1
                    else:
                        results["failed"].append(r.status_code)
            except Exception as e:  # noqa: BLE001 - any failure counts
                with lock:
                    results["failed"].append(repr(e))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        for i in range(20):
            # Alternate the definition so that every reload really swaps something.
            api = keyless_api("echo", "/echo/", origin.url, name=f"echo-{i}")
            gw.add_api_file(api)
            r = gw.admin("GET", "/tyk/reload?block=true")
            assert r.status_code == 200
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert results["failed"] == []
    assert results["ok"] > 100
    assert gw.admin("GET", "/tyk/apis/echo").json()["name"] == "echo-19"


def test_sigterm_finishes_in_flight_then_exits_zero(gateway_factory, origin):
    gw = gateway_factory(apis=[keyless_api("echo", "/echo/", origin.url)])
    idle = socket.create_connection(("127.0.0.1", gw.port))
    result = {}

    def slow():
        result["r"] = requests.get(gw.url("/echo/slow?s=1.5"), timeout=10)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    gw.proc.send_signal(signal.SIGTERM)
    t.join()
    assert result["r"].status_code == 200
    assert gw.proc.wait(timeout=10) == 0
    # The idle keep-alive connection was closed, and nothing listens any more.
    idle.settimeout(2)
    assert idle.recv(10) == b""
    try:
        socket.create_connection(("127.0.0.1", gw.port), timeout=1).close()
        refused = False
    except OSError:
        refused = True
    assert refused


def test_ready_reports_shutdown(gateway_factory, origin):
    gw = gateway_factory(apis=[keyless_api("echo", "/echo/", origin.url)])
    assert requests.get(gw.url("/ready")).json()["status"] == "pass"


def test_embedded_store_is_opened_and_reported(gateway_factory, origin):
    gw = gateway_factory(apis=[keyless_api("echo", "/echo/", origin.url)])
    body = requests.get(gw.url("/hello")).json()
    assert body["details"]["store"]["status"] == "pass"
    assert body["details"]["store"]["observedValue"] == "embedded"
    db = gw.dir / "gatehouse.db"
    assert db.exists()
    assert (db.stat().st_mode & 0o077) == 0  # not readable by other users


def test_store_errors_name_the_field(gateway_factory, tmp_path):
    gw = gateway_factory(conf={"gatehouse": {"store": {"type": "embedded",
                                                       "path": "/nonexistent-dir/x/gatehouse.db"}}},
                         start=False)
    gw.start(wait=False)
    assert gw.proc.wait(timeout=10) != 0
    assert "gatehouse.store.path" in gw.logs() and str(gw.conf_path) in gw.logs()
    gw2 = gateway_factory(conf={"gatehouse": {"store": {"type": "memcached"}}}, start=False)
    gw2.start(wait=False)
    assert gw2.proc.wait(timeout=10) != 0
    assert "gatehouse.store.type" in gw2.logs()
