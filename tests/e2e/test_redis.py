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

from conftest import Pki, keyless_api

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
    ({"enable_cluster": True}, "storage.enable_cluster"),
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
