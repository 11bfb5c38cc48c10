"""The Redis store (`gatehouse.store.type: "redis"`, Tyk's `storage` block) against Debian's
redis-server started here: Tyk's key layout, no token in Redis, three gateways sharing keys with
invalidation across gateways, exact fleet-wide rate limits (enable_redis_rolling_limiter) and
shared quotas under concurrent clients, failing closed while Redis is down and serving again when
it is back with no key lost, TLS and mutual TLS to Redis, and configuration errors naming the
field."""
import json
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import Pki, Redis, keyless_api

ORG = "default"
DISALLOWED = {"error": "Access to this API has been disallowed"}
STORE_DOWN = {"error": "Key store not available"}


def token_api(api_id, listen, target):
    return keyless_api(api_id, listen, target, use_keyless=False, org_id=ORG)


def gw_conf(redis, **extra):
    c = {"storage": redis.storage_conf(), "gatehouse": {"store": {"type": "redis"}}}
    c.update(extra)
    return c


def create_key(gw, **fields):
    body = {"org_id": ORG, "access_rights": {"a": {"api_id": "a", "versions": ["Default"]}}}
    body.update(fields)
    r = gw.admin("POST", "/tyk/keys/create", body)
    assert r.status_code == 200, r.text
    return r.json()


def get(gw, path, token=None):
    h = {"Authorization": token} if token else {}
    return requests.get(gw.url(path), headers=h, timeout=10)


def wait_for(pred, timeout=10.0, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def test_keys_live_in_redis_in_tyks_layout_and_no_token_is_stored(redis_factory, gateway_factory,
                                                                  origin):
    redis = redis_factory()
    gw = gateway_factory(conf=gw_conf(redis), apis=[token_api("a", "/a/", origin.url)])
    k = create_key(gw, quota_max=5, quota_renewal_rate=3600)
    token, khash = k["key"], k["key_hash"]
    assert get(gw, "/a/", token).status_code == 200
    keys = set(redis.cli("--scan").split())
    assert f"apikey-{khash}" in keys and f"quota-{khash}" in keys
    assert redis.cli("GET", f"quota-{khash}").strip() == "1"
    assert 0 < int(redis.cli("TTL", f"quota-{khash}")) <= 3600
    session = json.loads(redis.cli("GET", f"apikey-{khash}"))
    assert set(session["access_rights"]) == {"a"}
    # Neither the token nor the key id inside it is anywhere in Redis.
    key_id = json.loads(__import__("base64").b64decode(token))["id"]
    values = redis.cli("--scan") + "".join(redis.cli("GET", k) for k in keys)
    aof = b"".join(f.read_bytes() for f in redis.dir.rglob("*.aof*") if f.is_file())
    assert aof  # the append-only file holds every write
    for secret in (token, key_id):
        assert secret not in values and secret.encode() not in aof
    # Read, live quota, delete.
    kp = "/tyk/keys/" + urllib.parse.quote(token, safe="")
    assert gw.admin("GET", kp).json()["quota_remaining"] == 4
    assert gw.admin("DELETE", kp).status_code == 200
    assert redis.cli("EXISTS", f"apikey-{khash}").strip() == "0"
    assert get(gw, "/a/", token).json() == DISALLOWED


def test_three_gateways_share_keys_and_invalidate_each_other(redis_factory, gateway_factory,
                                                             origin):
    redis = redis_factory()
    gws = [gateway_factory(conf=gw_conf(redis), apis=[token_api("a", "/a/", origin.url)])
           for _ in range(3)]
    token = create_key(gws[0])["key"]
    for g in gws:  # each gateway now holds the key in its cache
        for _ in range(4):
            assert get(g, "/a/", token).status_code == 200
    kp = "/tyk/keys/" + urllib.parse.quote(token, safe="")
    # Deactivated on one gateway: refused by the others within a second.
    body = gws[1].admin("GET", kp).json()
    body["is_inactive"] = True
    assert gws[1].admin("PUT", kp, body).status_code == 200
    t0 = time.time()
    for g in (gws[0], gws[2]):
        assert wait_for(lambda: all(get(g, "/a/", token).status_code == 403 for _ in range(4)),
                        timeout=1.0)
    # Deleted on one gateway: refused by the others.
    body["is_inactive"] = False
    assert gws[2].admin("PUT", kp, body).status_code == 200
    assert wait_for(lambda: all(get(gws[0], "/a/", token).status_code == 200 for _ in range(4)),
                    timeout=1.0)
    assert gws[2].admin("DELETE", kp).status_code == 200
    for g in (gws[0], gws[1]):
        assert wait_for(lambda: all(get(g, "/a/", token).json() == DISALLOWED for _ in range(4)),
                        timeout=1.0)
    assert time.time() - t0 < 5


def fire(gws, token, n):
    with ThreadPoolExecutor(max_workers=24) as ex:
        return list(ex.map(lambda i: get(gws[i % len(gws)], "/a/", token).status_code, range(n)))


def test_fleet_wide_rate_limit_is_exact(redis_factory, gateway_factory, origin):
    redis = redis_factory()
    gws = [gateway_factory(conf=gw_conf(redis, enable_redis_rolling_limiter=True),
                           apis=[token_api("a", "/a/", origin.url)]) for _ in range(3)]
    token = create_key(gws[0], rate=10, per=60)["key"]
    codes = fire(gws, token, 60)
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 50
    assert origin.count() == 10


def test_fleet_wide_quota_is_exact(redis_factory, gateway_factory, origin):
    redis = redis_factory()
    gws = [gateway_factory(conf=gw_conf(redis), apis=[token_api("a", "/a/", origin.url)])
           for _ in range(3)]
    token = create_key(gws[0], quota_max=12, quota_renewal_rate=3600)["key"]
    codes = fire(gws, token, 48)
    assert codes.count(200) == 12, codes
    assert codes.count(403) == 36
    assert origin.count() == 12


def go_window(per, now_ns=None):
    """The fixed window of `now_ns` as Tyk names it: Go's time.Truncate(per), which counts from
    0001-01-01 UTC (62135596800 s before the unix epoch). Unix nanoseconds."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    d = int(per * 10**9)
    start = now_ns - (now_ns + 62135596800 * 10**9) % d
    return start, start + d


def roomy_per():
    """A `per` of about an hour whose current window has two minutes left at least, so that no
    window boundary falls inside the test."""
    return next(p for p in range(3600, 3700) if go_window(p)[1] - time.time_ns() > 120 * 10**9)


def test_fixed_window_limiter_is_exact_across_a_fleet_in_tyks_layout(redis_factory,
                                                                     gateway_factory, origin):
    # enable_fixed_window_rate_limiter wins over the rolling limiter, as in Tyk: one counter per
    # window, named <rate key>/<window start in ns>, counted with INCR (no sorted set, no
    # transaction) and expiring with its window.
    redis = redis_factory()
    conf = gw_conf(redis, enable_fixed_window_rate_limiter=True, enable_redis_rolling_limiter=True,
                   rate_limit_response_headers="rate_limits")
    gws = [gateway_factory(conf=conf, apis=[token_api("a", "/a/", origin.url)]) for _ in range(3)]
    per = roomy_per()
    k = create_key(gws[0], rate=10, per=per, quota_max=100, quota_renewal_rate=3600)
    token, khash = k["key"], k["key_hash"]
    codes = fire(gws, token, 60)
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 50
    assert origin.count() == 10
    start, end = go_window(per)
    wkey = f"rate-limit-{khash}/{start}"
    assert [n for n in redis.cli("--scan").split() if n.startswith("rate-limit-")] == [wkey]
    assert redis.cli("TYPE", wkey).strip() == "string"
    counted = int(redis.cli("GET", wkey))
    assert 10 < counted <= 60  # refusals counted too, until each gateway knew the window spent
    assert 0 < int(redis.cli("PTTL", wkey)) <= (end - time.time_ns()) // 10**6 + 1000
    assert redis.cli("GET", f"quota-{khash}").strip() == "10"  # the 429s used no quota

    # Every gateway has seen a refusal in this window (20 requests each, 10 admitted in all):
    # each now refuses on its own until the window ends, without asking Redis.
    rs = [get(g, "/a/", token) for g in gws for _ in range(3)]
    assert [r.status_code for r in rs] == [429] * 9
    for r in rs:
        assert r.headers["X-RateLimit-Remaining"] == "0"
        assert abs(int(r.headers["X-RateLimit-Reset"]) - end / 10**9) <= 1.5, r.headers
    assert int(redis.cli("GET", wkey)) == counted
    assert origin.count() == 10

    # An update of the key on one gateway resets its counters for the fleet: the window's counter
    # goes, and the other gateways forget that it was spent.
    kp = "/tyk/keys/" + urllib.parse.quote(token, safe="")
    body = gws[1].admin("GET", kp).json()
    assert gws[1].admin("PUT", kp, body).status_code == 200
    assert redis.cli("EXISTS", wkey).strip() == "0"
    for g in (gws[0], gws[2]):
        assert wait_for(lambda: get(g, "/a/", token).status_code == 200, timeout=1.0)
    assert int(redis.cli("GET", wkey)) == 2


def test_refused_requests_are_taken_back_and_headers_come_from_redis(redis_factory,
                                                                    gateway_factory, origin):
    # The rolling limiter and the quota are one MULTI/EXEC round trip; a refused request's log
    # entry and quota unit are taken back in a second one, so neither counts.
    redis = redis_factory()
    gw = gateway_factory(conf=gw_conf(redis, enable_redis_rolling_limiter=True,
                                      rate_limit_response_headers="rate_limits"),
                         apis=[token_api("a", "/a/", origin.url)])
    k = create_key(gw, rate=2, per=60, quota_max=10, quota_renewal_rate=3600)
    token, khash = k["key"], k["key_hash"]
    rs = [get(gw, "/a/", token) for _ in range(5)]
    assert [r.status_code for r in rs] == [200, 200, 429, 429, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in rs] == ["1", "0", "0", "0", "0"]
    now = time.time()
    for r in rs:  # the log's oldest entry leaves the 60 s window about a minute from now
        assert now + 55 <= int(r.headers["X-RateLimit-Reset"]) <= now + 62, r.headers
    assert origin.count() == 2
    assert redis.cli("GET", f"quota-{khash}").strip() == "2"  # the 429s used no quota
    assert 3590 <= int(redis.cli("TTL", f"quota-{khash}")) <= 3600
    rate_keys = [n for n in redis.cli("--scan").split() if n.startswith("rate-limit-")]
    assert len(rate_keys) == 1 and redis.cli("ZCARD", rate_keys[0]).strip() == "2"
    assert 0 < int(redis.cli("PTTL", rate_keys[0])) <= 60000
    kp = "/tyk/keys/" + urllib.parse.quote(token, safe="")
    assert gw.admin("GET", kp).json()["quota_remaining"] == 8

    # Quota refusals are taken back too: the counter stays at quota_max.
    q = create_key(gw, quota_max=3, quota_renewal_rate=3600)
    codes = [get(gw, "/a/", q["key"]).status_code for _ in range(6)]
    assert codes == [200, 200, 200, 403, 403, 403]
    assert redis.cli("GET", f"quota-{q['key_hash']}").strip() == "3"

    # A counter that lost its expiry (made by an older gateway, or cut off between its two
    # round trips) gets one again on its next request.
    redis.cli("PERSIST", f"quota-{q['key_hash']}")
    redis.cli("SET", f"quota-{q['key_hash']}", "1")
    assert get(gw, "/a/", q["key"]).status_code == 200
    assert 3590 <= int(redis.cli("TTL", f"quota-{q['key_hash']}")) <= 3600


def test_redis_down_fails_closed_and_recovers_with_no_key_lost(redis_factory, gateway_factory,
                                                                origin, tmp_path):
    redis = redis_factory()
    gw = gateway_factory(conf=gw_conf(redis), apis=[token_api("a", "/a/", origin.url),
                                                    keyless_api("open", "/open/", origin.url)])
    tokens = [create_key(gw)["key"] for _ in range(5)]
    assert all(get(gw, "/a/", t).status_code == 200 for t in tokens)
    assert requests.get(gw.url("/ready"), timeout=5).status_code == 200
    redis.stop()
    origin.clear()
    # Keyed requests: 503 with a JSON error, nothing proxied (cached sessions included).
    for t in tokens:
        r = get(gw, "/a/", t)
        assert r.status_code == 503 and r.json() == STORE_DOWN
    assert origin.count() == 0
    assert wait_for(lambda: requests.get(gw.url("/ready"), timeout=5).status_code == 503)
    r = gw.admin("POST", "/tyk/keys/create", {"org_id": ORG,
                                              "access_rights": {"a": {"api_id": "a"}}})
    assert r.status_code >= 500 and r.json()["status"] == "error"
    # Keyless APIs do not need the store; the gateway neither crashes nor spins.
    assert get(gw, "/open/").status_code == 200
    stat = lambda: sum(int(x) for x in open(f"/proc/{gw.proc.pid}/stat").read().split()[13:15])
    before = stat()
    time.sleep(1.0)
    assert stat() - before < 50  # under half a CPU-second per second while waiting
    assert gw.proc.poll() is None
    # Back: served again within seconds, every key still there.
    redis.start()
    assert wait_for(lambda: requests.get(gw.url("/ready"), timeout=5).status_code == 200,
                    timeout=5)
    assert wait_for(lambda: all(get(gw, "/a/", t).status_code == 200 for t in tokens), timeout=5)


@pytest.fixture(scope="module")
def redis_pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("redis-pki"))
    server = p.leaf("redis-server", ["127.0.0.1"])
    client = p.leaf("gw-client", ["gatehouse"], client=True)
    bundle = p.dir / "bundle.pem"
    bundle.write_text(p.ca.read_text() + p.int_cert.read_text())
    other = Pki(tmp_path_factory.mktemp("other-pki"))
    other_bundle = other.dir / "bundle.pem"
    other_bundle.write_text(other.ca.read_text() + other.int_cert.read_text())
    other_client = other.leaf("other-client", ["intruder"], client=True)
    return {"server": server, "client": client, "ca": str(bundle), "other_ca": str(other_bundle),
            "other_client": other_client}


def tls_redis(redis_factory, pki):
    return redis_factory(tls={"cert": pki["server"][2], "key": pki["server"][1], "ca": pki["ca"],
                              "client_cert": pki["client"][0], "client_key": pki["client"][1]})


def test_mutual_tls_to_redis(redis_factory, gateway_factory, origin, redis_pki):
    redis = tls_redis(redis_factory, redis_pki)
    storage = dict(redis.storage_conf(), use_ssl=True, ca_file=redis_pki["ca"],
                   cert_file=redis_pki["client"][0], key_file=redis_pki["client"][1],
                   tls_min_version="1.2")
    gw = gateway_factory(conf={"storage": storage, "gatehouse": {"store": {"type": "redis"}}},
                         apis=[token_api("a", "/a/", origin.url)])
    k = create_key(gw)
    assert get(gw, "/a/", k["key"]).status_code == 200
    assert f"apikey-{k['key_hash']}" in redis.cli("--scan")


@pytest.mark.parametrize("case", ["no-client-cert", "client-cert-of-another-ca", "unknown-server-ca"])
def test_tls_to_redis_refusals_fail_closed(redis_factory, gateway_factory, origin, redis_pki, case):
    redis = tls_redis(redis_factory, redis_pki)
    storage = dict(redis.storage_conf(), use_ssl=True, ca_file=redis_pki["ca"],
                   cert_file=redis_pki["client"][0], key_file=redis_pki["client"][1])
    if case == "no-client-cert":
        del storage["cert_file"], storage["key_file"]
    elif case == "client-cert-of-another-ca":
        storage["cert_file"], storage["key_file"] = redis_pki["other_client"][:2]
    else:
        storage["ca_file"] = redis_pki["other_ca"]
    gw = gateway_factory(conf={"storage": storage, "gatehouse": {"store": {"type": "redis"}}},
                         apis=[token_api("a", "/a/", origin.url)])
    time.sleep(0.5)
    assert requests.get(gw.url("/ready"), timeout=5).status_code == 503
    r = gw.admin("POST", "/tyk/keys/create", {"org_id": ORG,
                                              "access_rights": {"a": {"api_id": "a"}}})
    assert r.status_code >= 500
    r = get(gw, "/a/", "whatever-token")
    assert r.status_code == 503 and r.json() == STORE_DOWN
    assert redis.cli("DBSIZE").strip() == "0"
    if case == "unknown-server-ca":
        assert "certificate" in gw.logs()


def test_redis_insecure_skip_verify_is_an_explicit_warned_opt_in(redis_factory, gateway_factory,
                                                                   origin, redis_pki):
    """A Redis whose certificate no configured CA vouches for: refused by default (above), served
    with storage.ssl_insecure_skip_verify, which logs a warning."""
    redis = tls_redis(redis_factory, redis_pki)
    storage = dict(redis.storage_conf(), use_ssl=True, ca_file=redis_pki["other_ca"],
                   cert_file=redis_pki["client"][0], key_file=redis_pki["client"][1],
                   ssl_insecure_skip_verify=True)
    gw = gateway_factory(conf={"storage": storage, "gatehouse": {"store": {"type": "redis"}}},
                         apis=[token_api("a", "/a/", origin.url)])
    k = create_key(gw)
    assert get(gw, "/a/", k["key"]).status_code == 200
    assert "Redis TLS verification is disabled" in gw.logs()


@pytest.mark.parametrize("server,client,works", [
    ("TLSv1.2", {"tls_max_version": "1.2"}, True),
    ("TLSv1.2", {"tls_min_version": "1.3"}, False),
    ("TLSv1.3", {"tls_max_version": "1.2"}, False),
    ("TLSv1.3", {}, True),
])
def test_redis_tls_versions(redis_factory, gateway_factory, origin, redis_pki, server, client, works):
    redis = redis_factory(tls={"cert": redis_pki["server"][2], "key": redis_pki["server"][1],
                               "ca": redis_pki["ca"], "client_cert": redis_pki["client"][0],
                               "client_key": redis_pki["client"][1], "protocols": server})
    storage = dict(redis.storage_conf(), use_ssl=True, ca_file=redis_pki["ca"],
                   cert_file=redis_pki["client"][0], key_file=redis_pki["client"][1], **client)
    gw = gateway_factory(conf={"storage": storage, "gatehouse": {"store": {"type": "redis"}}},
                         apis=[token_api("a", "/a/", origin.url)])
    if works:
        k = create_key(gw)
        assert get(gw, "/a/", k["key"]).status_code == 200
    else:
        time.sleep(0.5)
        assert requests.get(gw.url("/ready"), timeout=5).status_code == 503
        r = get(gw, "/a/", "whatever-token")
        assert r.status_code == 503 and r.json() == STORE_DOWN
        assert redis.cli("DBSIZE").strip() == "0"


def test_redis_password(redis_factory, gateway_factory, origin):
    redis = redis_factory(password="redis-pass-123")
    gw = gateway_factory(conf=gw_conf(redis, storage=dict(redis.storage_conf(),
                                                          password="redis-pass-123")),
                         apis=[token_api("a", "/a/", origin.url)])
    assert get(gw, "/a/", create_key(gw)["key"]).status_code == 200
    bad = gateway_factory(conf=gw_conf(redis, storage=dict(redis.storage_conf(),
                                                           password="wrong")),
                          apis=[token_api("a", "/a/", origin.url)])
    time.sleep(0.5)
    assert requests.get(bad.url("/ready"), timeout=5).status_code == 503
    assert "redis store unreachable" in bad.logs()
    assert "redis-pass-123" not in bad.logs() and "wrong" not in bad.logs().replace("wrong type", "")


@pytest.mark.parametrize("storage,field", [
    ({"enable_cluster": True, "database": 3}, "storage.database"),
    ({"use_ssl": True, "ca_file": "/nonexistent/ca.pem"}, "storage.ca_file"),
    ({"use_ssl": True, "cert_file": "/nonexistent/c.pem", "key_file": "/nonexistent/k.pem"},
     "storage.cert_file"),
    ({"use_ssl": True, "tls_min_version": "1.0"}, "storage.tls_min_version"),
    ({"addrs": ["no-port-here"]}, "storage.addrs"),
])
def test_redis_config_errors_name_the_field(gateway_factory, storage, field):
    s = {"type": "redis", "host": "127.0.0.1", "port": 1}
    s.update(storage)
    gw = gateway_factory(conf={"storage": s, "gatehouse": {"store": {"type": "redis"}}},
                         start=False)
    gw.start(wait=False)
    assert gw.proc.wait(timeout=10) != 0
    assert field in gw.logs() and str(gw.conf_path) in gw.logs()


def test_policies_and_limits_on_redis(redis_factory, gateway_factory, origin, tmp_path):
    redis = redis_factory()
    pol_dir = tmp_path / "pols"
    pol_dir.mkdir()
    (pol_dir / "gold.json").write_text(json.dumps({
        "id": "gold", "org_id": ORG, "rate": 3, "per": 60, "quota_max": -1,
        "access_rights": {"a": {"api_id": "a", "versions": ["Default"],
                                "allowed_urls": [{"url": "/ok", "methods": ["GET"]}]}}}))
    conf = gw_conf(redis, enable_redis_rolling_limiter=True,
                   policies={"policy_source": "file", "policy_path": str(pol_dir)})
    gws = [gateway_factory(conf=conf, apis=[token_api("a", "/a/", origin.url)]) for _ in range(2)]
    r = gws[0].admin("POST", "/tyk/keys/create", {"org_id": ORG, "apply_policies": ["gold"]})
    token = r.json()["key"]
    assert get(gws[1], "/a/nope", token).status_code == 403
    codes = [get(gws[i % 2], "/a/ok", token).status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]


# ---------------------------------------------------------------------------------------------
# Redis Cluster: three masters made here with redis-cli --cluster create.
@pytest.fixture
def redis_cluster(tmp_path):
    import subprocess
    nodes = []
    for i in range(3):
        r = ClusterNode(tmp_path / f"node{i}")
        nodes.append(r.start())
    try:
        addrs = [f"127.0.0.1:{n.port}" for n in nodes]
        subprocess.run(["redis-cli", "--cluster", "create", *addrs, "--cluster-replicas", "0",
                        "--cluster-yes"], check=True, capture_output=True, timeout=30)
        assert wait_for(lambda: all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in nodes),
                        timeout=15)
        yield nodes
    finally:
        for n in nodes:
            n.stop()


class ClusterNode(Redis):
    def args(self):
        if not hasattr(self, "bus_port"):
            from conftest import free_port
            self.bus_port = free_port()
        return super().args() + ["--cluster-enabled", "yes", "--cluster-config-file",
                                 str(self.dir / "nodes.conf"), "--cluster-node-timeout", "2000",
                                 "--cluster-port", str(self.bus_port)]

    def cli(self, *args):
        import subprocess
        return subprocess.run(["redis-cli", "-c", "-p", str(self.port), *args],
                              capture_output=True, text=True, check=True, timeout=10).stdout


def cluster_conf(nodes, **extra):
    c = {"storage": {"type": "redis", "enable_cluster": True,
                     "addrs": [f"127.0.0.1:{n.port}" for n in nodes]},
         "gatehouse": {"store": {"type": "redis"}}}
    c.update(extra)
    return c


def test_cluster_keys_limits_and_invalidation(redis_cluster, gateway_factory, origin):
    nodes = redis_cluster
    gws = [gateway_factory(conf=cluster_conf(nodes, enable_redis_rolling_limiter=True),
                           apis=[token_api("a", "/a/", origin.url)]) for _ in range(3)]
    # Keys spread over the masters; each works through every gateway.
    made = [create_key(gws[i % 3], quota_max=5, quota_renewal_rate=3600) for i in range(12)]
    per_node = [int(n.cli("DBSIZE")) for n in nodes]
    assert sum(1 for c in per_node if c > 0) >= 2, per_node  # really spread over the cluster
    for i, k in enumerate(made):
        assert get(gws[(i + 1) % 3], "/a/", k["key"]).status_code == 200
    # Fleet-wide limits on a cluster: the quota of one key counts exactly across gateways.
    token = made[0]["key"]
    codes = fire(gws, token, 20)
    assert codes.count(200) == 4 and codes.count(403) == 16, codes  # one was used above
    # Listing scans every master.
    lister = gateway_factory(conf=cluster_conf(nodes, hash_keys=True,
                                               enable_hashed_keys_listing=True),
                             apis=[token_api("a", "/a/", origin.url)])
    listed = set(lister.admin("GET", "/tyk/keys").json()["keys"])
    assert {k["key_hash"] for k in made} <= listed
    # Invalidation across gateways works through the cluster's pub/sub.
    kp = "/tyk/keys/" + urllib.parse.quote(made[1]["key"], safe="")
    for g in gws:
        assert get(g, "/a/", made[1]["key"]).status_code == 200
    assert gws[0].admin("DELETE", kp).status_code == 200
    for g in gws[1:]:
        assert wait_for(lambda: get(g, "/a/", made[1]["key"]).json() == DISALLOWED, timeout=1.0)


@pytest.mark.parametrize("limiter", ["enable_redis_rolling_limiter",
                                     "enable_fixed_window_rate_limiter"])
def test_cluster_fleet_wide_rate_limit(redis_cluster, gateway_factory, origin, limiter):
    # The sliding log's MULTI/EXEC, or the fixed window's INCR, goes to the node serving the
    # counter's slot; the quota (another slot, mostly) follows in a second round trip.
    nodes = redis_cluster
    gws = [gateway_factory(conf=cluster_conf(nodes, **{limiter: True}),
                           apis=[token_api("a", "/a/", origin.url)]) for _ in range(3)]
    per = roomy_per()
    token = create_key(gws[0], rate=3, per=per, quota_max=20, quota_renewal_rate=3600)["key"]
    codes = fire(gws, token, 12)
    assert codes.count(200) == 3 and codes.count(429) == 9, codes
    assert origin.count() == 3


def test_cluster_follows_a_moved_slot(redis_cluster, gateway_factory, origin):
    import subprocess
    nodes = redis_cluster
    gw = gateway_factory(conf=cluster_conf(nodes), apis=[token_api("a", "/a/", origin.url)])
    k = create_key(gw, quota_max=100, quota_renewal_rate=3600)
    key = f"apikey-{k['key_hash']}"
    assert get(gw, "/a/", k["key"]).status_code == 200  # the gateway now knows the slot map
    slot = int(nodes[0].cli("CLUSTER", "KEYSLOT", key))
    ids = {n.port: n.cli("CLUSTER", "MYID").strip() for n in nodes}
    src = next(n for n in nodes if subprocess.run(
        ["redis-cli", "-p", str(n.port), "EXISTS", key], capture_output=True,
        text=True).stdout.strip() == "1")
    dst = next(n for n in nodes if n is not src)
    # Move the key's slot from src to dst (the documented manual resharding steps).
    def raw(n, *a):
        return subprocess.run(["redis-cli", "-p", str(n.port), *a], capture_output=True,
                              text=True, check=True).stdout.strip()
    assert raw(dst, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", ids[src.port]) == "OK"
    assert raw(src, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", ids[dst.port]) == "OK"
    # During the migration a request for a key already moved gets ASK.
    raw(src, "MIGRATE", "127.0.0.1", str(dst.port), "", "0", "5000", "KEYS", key)
    kp = "/tyk/keys/" + urllib.parse.quote(k["key"], safe="")
    assert gw.admin("GET", kp).status_code == 200  # read from the store, not a cache: ASK
    assert get(gw, "/a/", k["key"]).status_code == 200
    for n in nodes:
        raw(n, "CLUSTER", "SETSLOT", str(slot), "NODE", ids[dst.port])
    assert raw(dst, "EXISTS", key) == "1"
    # After it: MOVED; the gateway follows and keeps serving the key.
    for _ in range(3):
        assert gw.admin("GET", kp).status_code == 200  # MOVED, then the new owner
        assert get(gw, "/a/", k["key"]).status_code == 200
    # A key changed now is written to, and read from, its new node.
    body = gw.admin("GET", kp).json()
    body["meta_data"] = {"moved": True}
    assert gw.admin("PUT", kp, body).status_code == 200
    assert json.loads(raw(dst, "GET", key))["meta_data"] == {"moved": True}
    assert get(gw, "/a/", k["key"]).status_code == 200


@pytest.mark.parametrize("limiter,moved", [("enable_fixed_window_rate_limiter", "window"),
                                            ("enable_fixed_window_rate_limiter", "quota"),
                                            (None, "quota")])
def test_cluster_limit_counters_follow_ask_exactly(redis_cluster, gateway_factory, origin,
                                                   limiter, moved):
    # A limit counter whose slot is being migrated and which has already moved: its commands get
    # ASK, and the whole batch goes to the importing node after ASKING, as one transaction, so
    # every request is counted once, on one node.
    import subprocess
    nodes = redis_cluster
    conf = cluster_conf(nodes, **({limiter: True} if limiter else {}))
    gw = gateway_factory(conf=conf, apis=[token_api("a", "/a/", origin.url)])
    per = roomy_per()
    k = create_key(gw, rate=1000, per=per, quota_max=100, quota_renewal_rate=3600)
    assert [get(gw, "/a/", k["key"]).status_code for _ in range(3)] == [200] * 3
    key = (f"rate-limit-{k['key_hash']}/{go_window(per)[0]}" if moved == "window"
           else f"quota-{k['key_hash']}")

    def raw(n, *a):
        return subprocess.run(["redis-cli", "-p", str(n.port), *a], capture_output=True,
                              text=True, check=True).stdout.strip()
    def importing(n, *a):  # a command for the importing node, after ASKING on one connection
        out = subprocess.run(["redis-cli", "-p", str(n.port)], input=f"ASKING\n{' '.join(a)}\n",
                             capture_output=True, text=True, check=True).stdout.split("\n")
        assert out[0] == "OK", out
        return out[1].strip()
    src = next(n for n in nodes if raw(n, "EXISTS", key) == "1")
    dst = next(n for n in nodes if n is not src)
    assert raw(src, "GET", key) == "3"
    slot = raw(src, "CLUSTER", "KEYSLOT", key)
    ids = {n.port: raw(n, "CLUSTER", "MYID") for n in nodes}
    assert raw(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[src.port]) == "OK"
    assert raw(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[dst.port]) == "OK"
    raw(src, "MIGRATE", "127.0.0.1", str(dst.port), "", "0", "5000", "KEYS", key)
    assert [get(gw, "/a/", k["key"]).status_code for _ in range(4)] == [200] * 4
    assert importing(dst, "GET", key) == "7"
    assert int(importing(dst, "PTTL", key)) > 0
    for n in nodes:
        raw(n, "CLUSTER", "SETSLOT", slot, "NODE", ids[dst.port])
    assert get(gw, "/a/", k["key"]).status_code == 200
    assert raw(dst, "GET", key) == "8"


def test_a_redis_that_stops_answering_fails_closed_in_time(gateway_factory, origin):
    """A server that accepts and reads but never answers (a hung Redis): requests are refused
    with a 503 after the command timeout, not held forever, and the gateway stays responsive."""
    import socket
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    conns = []

    def accept():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            conns.append(c)  # read nothing, answer nothing

    threading.Thread(target=accept, daemon=True).start()
    try:
        gw = gateway_factory(conf={"storage": {"type": "redis", "host": "127.0.0.1", "port": port},
                                   "gatehouse": {"store": {"type": "redis"}}},
                             apis=[token_api("a", "/a/", origin.url),
                                   keyless_api("open", "/open/", origin.url)])
        t0 = time.time()
        r = get(gw, "/a/", "some-token")
        assert r.status_code == 503 and r.json() == STORE_DOWN
        assert time.time() - t0 < 6
        assert requests.get(gw.url("/ready"), timeout=5).status_code == 503
        assert get(gw, "/open/").status_code == 200
        assert origin.count() == 1
    finally:
        srv.close()
        for c in conns:
            c.close()
