"""Security policies, method/path allow lists, rate limits and quotas on one gateway (embedded
store), end to end, as COMPAT ("Sessions (keys) and policies", "/tyk/policies") and issue 5
describe them: the policies API with Tyk's statuses and messages, every apply rule seen through
real requests, a key created with only apply_policies, policy changes reaching existing keys
after a reload, allow lists matched on the canonical path (every spelling of a forbidden path
refused the same way, nothing proxied), exact rate and quota counts with two workers and
concurrent clients, quota persistence across a restart, X-RateLimit-* headers and the API-wide
rate limit."""
import json
import socket
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import SECRET, keyless_api, parse_one_response, read_to_close

ORG = "default"
DISALLOWED = {"error": "Access to this API has been disallowed"}
RESOURCE_DISALLOWED = {"error": "Access to this resource has been disallowed"}
RATE_EXCEEDED = {"error": "Rate Limit Exceeded"}
API_RATE_EXCEEDED = {"error": "API Rate Limit Exceeded"}
QUOTA_EXCEEDED = {"error": "Quota exceeded"}


def token_api(api_id, listen, target, org_id=ORG, **extra):
    return keyless_api(api_id, listen, target, use_keyless=False, org_id=org_id, **extra)


def policy(pid, *apis, org_id=ORG, urls=None, **fields):
    rights = {}
    for a in apis:
        r = {"api_id": a, "api_name": a, "versions": ["Default"]}
        if urls is not None:
            r["allowed_urls"] = urls
        rights[a] = r
    p = {"id": pid, "name": pid, "org_id": org_id, "rate": 1000, "per": 1, "quota_max": -1,
         "quota_renewal_rate": 3600, "active": True, "access_rights": rights}
    p.update(fields)
    return p


@pytest.fixture
def env(tmp_path, gateway_factory, origin):
    """A gateway with a policy_path and a few token APIs."""
    pol_dir = tmp_path / "policies"
    pol_dir.mkdir()

    def make(policies=(), apis=None, conf=None, start=True):
        for p in policies:
            (pol_dir / f"{p['id']}.json").write_text(json.dumps(p))
        c = {"policies": {"policy_source": "file", "policy_path": str(pol_dir)}}
        c.update(conf or {})
        gw = gateway_factory(conf=c, apis=apis if apis is not None else [
            token_api("a", "/a/", origin.url),
            token_api("b", "/b/", origin.url),
            token_api("c", "/c/", origin.url),
            token_api("x-org", "/x-org/", origin.url, org_id="other-org"),
        ], start=start)
        gw.policy_dir = pol_dir
        return gw

    return make


def key_for(gw, *policies, **fields):
    body = {"org_id": ORG, "apply_policies": list(policies)}
    body.update(fields)
    r = gw.admin("POST", "/tyk/keys/create", body)
    assert r.status_code == 200, r.text
    return r.json()


def get(gw, path, token=None, headers=None):
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = token
    return requests.get(gw.url(path), headers=h, timeout=10)


def parallel(n, fn):
    with ThreadPoolExecutor(max_workers=16) as ex:
        return list(ex.map(lambda i: fn(i), range(n)))


# ---------------------------------------------------------------------------------------------
# The policies API.
def test_policies_api_crud_with_tyks_replies(env):
    gw = env()
    p = policy("gold", "a")
    r = gw.admin("POST", "/tyk/policies", p)
    assert r.status_code == 200 and r.json() == {"key": "gold", "status": "ok", "action": "added"}
    written = json.loads((gw.policy_dir / "gold.json").read_text())
    assert written["id"] == "gold" and written["access_rights"]["a"]["api_id"] == "a"
    # Served only after a reload, as in Tyk.
    r = gw.admin("GET", "/tyk/policies/gold")
    assert r.status_code == 404 and r.json() == {"status": "error", "message": "Policy not found"}
    gw.reload()
    r = gw.admin("GET", "/tyk/policies/gold")
    assert r.status_code == 200 and r.json()["id"] == "gold"
    r = gw.admin("GET", "/tyk/policies")
    assert r.status_code == 200 and [x["id"] for x in r.json()] == ["gold"]
    # Update: the id in the body must match the path.
    r = gw.admin("PUT", "/tyk/policies/gold", dict(p, id="silver"))
    assert r.status_code == 400
    assert r.json() == {"status": "error", "message": "Request ID does not match that in policy! "
                                                      "For Update operations these must match."}
    r = gw.admin("PUT", "/tyk/policies/gold", dict(p, rate=5))
    assert r.status_code == 200 and r.json() == {"key": "gold", "status": "ok",
                                                 "action": "modified"}
    assert json.loads((gw.policy_dir / "gold.json").read_text())["rate"] == 5
    r = gw.admin("PUT", "/tyk/policies", p)
    assert r.status_code == 400 and r.json()["message"] == "Must specify an apiID to update"
    r = gw.admin("DELETE", "/tyk/policies")
    assert r.status_code == 400 and r.json()["message"] == "Must specify an apiID to delete"
    r = gw.admin("DELETE", "/tyk/policies/gold")
    assert r.status_code == 200 and r.json() == {"key": "gold", "status": "ok", "action": "deleted"}
    assert not (gw.policy_dir / "gold.json").exists()
    gw.reload()
    r = gw.admin("DELETE", "/tyk/policies/gold")
    assert r.status_code == 404 and r.json() == {"status": "error", "message": "Policy not found"}
    r = gw.admin("PATCH", "/tyk/policies/gold", p)
    assert r.status_code == 405 and r.json() == {"status": "error",
                                                 "message": "Method not supported"}


@pytest.mark.parametrize("body,status,message", [
    ("{not json", 400, "Request malformed"),
    ("[]", 400, "Request malformed"),
    (json.dumps({"name": "no id", "access_rights": {}}), 400, "Unable to create policy without id."),
    (json.dumps({"id": "../../etc/x", "access_rights": {}}), 400,
     "Invalid Policy ID: Allowed characters: a-z, A-Z, 0-9, ., _, -, ~"),
    (json.dumps({"id": "a b", "access_rights": {}}), 400,
     "Invalid Policy ID: Allowed characters: a-z, A-Z, 0-9, ., _, -, ~"),
    (json.dumps({"id": "p", "rate": "ten"}), 400, "Request malformed"),
    (json.dumps({"id": "p", "access_rights": []}), 400, "Request malformed"),
    (json.dumps({"id": "p", "partitions": "all"}), 400, "Request malformed"),
])
def test_policies_api_bad_input_stores_nothing(env, body, status, message):
    gw = env()
    r = gw.admin("POST", "/tyk/policies", raw=body)
    assert r.status_code == status and r.json() == {"status": "error", "message": message}
    assert list(gw.policy_dir.iterdir()) == []


def test_policy_with_an_invalid_regex_is_refused_with_the_reason(env):
    gw = env()
    r = gw.admin("POST", "/tyk/policies",
                 policy("bad-re", "a", urls=[{"url": "/x/(unclosed", "methods": ["GET"]}]))
    assert r.status_code == 400
    assert r.json()["message"].startswith("Invalid policy: allowed_urls: invalid regular expression")
    assert list(gw.policy_dir.iterdir()) == []


def test_policies_api_needs_the_secret(env):
    gw = env()
    r = gw.admin("GET", "/tyk/policies", secret="wrong")
    assert r.status_code == 403
    r = gw.admin("POST", "/tyk/policies", policy("p", "a"), secret=None)
    assert r.status_code == 403
    assert list(gw.policy_dir.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Keys under policies.
def test_key_created_with_only_apply_policies_works(env, origin):
    gw = env([policy("pa", "a")])
    k = key_for(gw, "pa")
    assert get(gw, "/a/x", k["key"]).status_code == 200
    r = get(gw, "/b/x", k["key"])
    assert r.status_code == 403 and r.json() == DISALLOWED
    # The stored key shows the rights its policy gave it.
    r = gw.admin("GET", "/tyk/keys/" + urllib.parse.quote(k["key"], safe=""))
    assert r.status_code == 200 and set(r.json()["access_rights"]) == {"a"}
    assert r.json()["apply_policies"] == ["pa"]


def test_create_with_an_unknown_policy_is_refused(env):
    gw = env([policy("pa", "a")])
    r = gw.admin("POST", "/tyk/keys/create", {"org_id": ORG, "apply_policies": ["nope"]})
    assert r.status_code == 500
    assert r.json() == {"status": "error",
                        "message": "Failed to create key - policy not found: \"nope\""}


def test_policy_change_reaches_existing_keys_after_reload(env, origin):
    gw = env([policy("pa", "a")])
    token = key_for(gw, "pa")["key"]
    assert get(gw, "/a/", token).status_code == 200
    assert get(gw, "/b/", token).status_code == 403
    # The policy now grants b and no longer a: the key is not saved again.
    r = gw.admin("PUT", "/tyk/policies/pa", policy("pa", "b"))
    assert r.status_code == 200
    assert get(gw, "/a/", token).status_code == 200  # not before the reload
    gw.reload()
    assert get(gw, "/a/", token).json() == DISALLOWED
    assert get(gw, "/b/", token).status_code == 200
    # A deleted policy leaves its keys with nothing: refused as unknown keys.
    assert gw.admin("DELETE", "/tyk/policies/pa").status_code == 200
    gw.reload()
    r = get(gw, "/b/", token)
    assert r.status_code == 403 and r.json() == DISALLOWED


def test_inactive_policy_deactivates_its_keys(env):
    gw = env([policy("pa", "a")])
    token = key_for(gw, "pa")["key"]
    assert get(gw, "/a/", token).status_code == 200
    assert gw.admin("PUT", "/tyk/policies/pa", policy("pa", "a", is_inactive=True)).status_code == 200
    gw.reload()
    r = get(gw, "/a/", token)
    assert r.status_code == 403 and r.json() == {"error": "Key is inactive, please renew"}


def test_policy_of_another_org_is_refused(env, origin):
    gw = env([policy("foreign", "a", org_id="other-org"), policy("pa", "a")])
    # At creation Tyk has no API to compare orgs with; the key's own org is compared.
    r = gw.admin("POST", "/tyk/keys/create", {"org_id": ORG, "apply_policies": ["foreign"]})
    assert r.status_code == 500
    assert "different organisation" in r.json()["message"]
    # A key of the right org whose policy is of the API's org, on an API of another org.
    token = key_for(gw, "pa")["key"]
    r = get(gw, "/x-org/", token)
    assert r.status_code == 403 and r.json() == DISALLOWED


def test_acl_union_and_partitions(env, origin):
    gw = env([
        policy("acl-a", "a", partitions={"acl": True}, quota_max=1, rate=1, per=1000),
        policy("acl-b", "b", partitions={"acl": True}),
        policy("quota", "a", "b", partitions={"quota": True}, quota_max=3,
               quota_renewal_rate=3600),
        policy("rate", "a", "b", partitions={"rate_limit": True}, rate=100, per=1),
    ])
    r = gw.admin("POST", "/tyk/keys/preview",
                 {"org_id": ORG, "apply_policies": ["acl-a", "acl-b", "quota", "rate"]})
    assert r.status_code == 200, r.text
    s = r.json()
    assert set(s["access_rights"]) == {"a", "b"}
    for api in ("a", "b"):
        lim = s["access_rights"][api]["limit"]
        assert lim["quota_max"] == 3 and lim["rate"] == 100 and lim["per"] == 1
    # Quota and rate partitions alone grant nothing.
    r = gw.admin("POST", "/tyk/keys/create", {"org_id": ORG, "apply_policies": ["quota", "rate"]})
    assert r.status_code == 500
    assert r.json()["message"] == "Failed to create key - key has no valid policies to be applied"
    # The ACL policies' own quota and rate are not used (the partitions say where they come from).
    token = key_for(gw, "acl-a", "acl-b", "quota", "rate")["key"]
    codes = [get(gw, "/a/", token).status_code for _ in range(3)]
    assert codes == [200, 200, 200]


def test_larger_quota_and_more_generous_rate_win(env):
    gw = env([policy("slow", "a", rate=100, per=60, quota_max=10),
              policy("fast", "a", rate=10, per=1, quota_max=5),
              policy("unlimited", "a", quota_max=-1)])
    s = gw.admin("POST", "/tyk/keys/preview", {"org_id": ORG,
                                               "apply_policies": ["slow", "fast"]}).json()
    lim = s["access_rights"]["a"]["limit"]
    assert (lim["rate"], lim["per"], lim["quota_max"]) == (10, 1, 10)
    s = gw.admin("POST", "/tyk/keys/preview", {"org_id": ORG,
                                               "apply_policies": ["slow", "unlimited"]}).json()
    assert s["access_rights"]["a"]["limit"]["quota_max"] == -1


def test_per_api_and_partitioned_policies_do_not_mix(env):
    gw = env([policy("per", "a", partitions={"per_api": True}),
              policy("part", "b", partitions={"acl": True})])
    r = gw.admin("POST", "/tyk/keys/create", {"org_id": ORG, "apply_policies": ["per", "part"]})
    assert r.status_code == 500
    assert r.json()["message"] == ("Failed to create key - cannot apply multiple policies when "
                                   "some have per_api set and some are partitioned")


def test_preview_and_set_policies_of_a_key(env, origin):
    gw = env([policy("pa", "a"), policy("pb", "b")])
    r = gw.admin("POST", "/tyk/keys/preview", raw="{broken")
    assert r.status_code == 500 and r.json()["message"] == "Unmarshalling failed"
    k = key_for(gw, "pa")
    token, khash = k["key"], k["key_hash"]
    assert get(gw, "/b/", token).status_code == 403
    r = gw.admin("POST", "/tyk/keys/policy/" + khash, {"apply_policies": ["pb"]})
    assert r.status_code == 200 and r.json() == {"key": khash, "status": "ok", "action": "updated"}
    assert get(gw, "/b/", token).status_code == 200
    assert get(gw, "/a/", token).status_code == 403
    r = gw.admin("POST", "/tyk/keys/policy/" + "0" * 16, {"apply_policies": ["pb"]})
    assert r.status_code == 404 and r.json()["message"] == "Key not found"
    r = gw.admin("POST", "/tyk/keys/policy/" + khash, raw="nope")
    assert r.status_code == 400 and r.json()["message"] == "Couldn't decode instruction"
    r = gw.admin("GET", "/tyk/keys/policy/" + khash)
    assert r.status_code == 405


# ---------------------------------------------------------------------------------------------
# Allow lists: method and path, every spelling.
def raw_get(gw, path: bytes, token: str, method=b"GET"):
    req = (method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " +
           token.encode() + b"\r\nConnection: close\r\n\r\n")
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    try:
        s.sendall(req)
        buf = read_to_close(s)
    finally:
        s.close()
    return parse_one_response(buf, until_close=True)[0]


BYPASSES = [
    b"/a/admin", b"/a//admin", b"/a/./admin", b"/a/public/../admin", b"/a/public/%2e%2e/admin",
    b"/a/public/%2E%2E/admin", b"/a/public/.%2e/admin", b"/a/public%2f..%2fadmin",
    b"/a/public/..;/admin", b"/a/public/%5c..%5cadmin", b"/a/%61dmin", b"/a/%2561dmin",
    b"/a/public/%252e%252e/admin", b"/a/admin%00", b"/a/;x/admin", b"/a///admin",
    b"/a/public/..%2fadmin",
]


def test_allowed_urls_refuse_every_spelling_of_a_forbidden_path(env, origin):
    urls = [{"url": "/public/{id}", "methods": ["GET"]}, {"url": "/status$", "methods": ["GET"]}]
    gw = env([policy("pa", "a", urls=urls)])
    token = key_for(gw, "pa")["key"]
    # Positive controls: allowed paths pass, listen path included or not.
    for ok in (b"/a/public/1", b"/a/public/1/detail", b"/a/status", b"/a/public/%31"):
        r = raw_get(gw, ok, token)
        assert r.status == 200, (ok, r.status, r.body)
    assert origin.count() == 4
    origin.clear()
    bodies = set()
    for p in BYPASSES:
        r = raw_get(gw, p, token)
        assert r.status == 403, (p, r.status, r.body)
        assert json.loads(r.body) == RESOURCE_DISALLOWED, p
        bodies.add(r.body)
    assert len(bodies) == 1  # one answer for every spelling
    # The method must be listed too, and the suffix anchor holds.
    assert raw_get(gw, b"/a/public/1", token, method=b"DELETE").status == 403
    assert raw_get(gw, b"/a/status/x", token).status == 403
    assert origin.count() == 0  # nothing refused reached the upstream


def test_allowed_urls_are_united_across_policies(env, origin):
    gw = env([policy("p1", "a", urls=[{"url": "/users", "methods": ["GET"]}]),
              policy("p2", "a", urls=[{"url": "/users", "methods": ["POST"]},
                                      {"url": "/orders", "methods": ["GET"]}])])
    token = key_for(gw, "p1", "p2")["key"]
    h = {"Authorization": token}
    assert requests.get(gw.url("/a/users"), headers=h, timeout=5).status_code == 200
    assert requests.post(gw.url("/a/users"), headers=h, data=b"x", timeout=5).status_code == 200
    assert requests.get(gw.url("/a/orders"), headers=h, timeout=5).status_code == 200
    r = requests.post(gw.url("/a/orders"), headers=h, data=b"x", timeout=5)
    assert r.status_code == 403 and r.json() == RESOURCE_DISALLOWED


def test_key_own_allowed_urls_without_policies(env, origin):
    gw = env()
    r = gw.admin("POST", "/tyk/keys/create", {
        "org_id": ORG, "access_rights": {"a": {"api_id": "a", "versions": ["Default"],
                                               "allowed_urls": [{"url": "/ok",
                                                                 "methods": ["GET"]}]}}})
    token = r.json()["key"]
    assert get(gw, "/a/ok", token).status_code == 200
    assert get(gw, "/a/nope", token).json() == RESOURCE_DISALLOWED


# ---------------------------------------------------------------------------------------------
# Rate limits and quotas: exact with two workers and concurrent clients.
def test_rate_limit_is_exact_under_concurrency(env, origin):
    gw = env([policy("pr", "a", rate=7, per=60)])
    token = key_for(gw, "pr")["key"]
    res = parallel(40, lambda i: get(gw, "/a/", token))
    codes = [r.status_code for r in res]
    assert codes.count(200) == 7, codes
    assert codes.count(429) == 33
    assert all(r.json() == RATE_EXCEEDED for r in res if r.status_code == 429)
    assert origin.count() == 7


def test_quota_is_exact_under_concurrency_and_survives_restart(env, origin):
    gw = env([policy("pq", "a", quota_max=9, quota_renewal_rate=3600)])
    k = key_for(gw, "pq")
    token = k["key"]
    res = parallel(30, lambda i: get(gw, "/a/", token))
    codes = [r.status_code for r in res]
    assert codes.count(200) == 9, codes
    assert codes.count(403) == 21
    assert all(r.json() == QUOTA_EXCEEDED for r in res if r.status_code == 403)
    assert origin.count() == 9
    ok = [r for r in res if r.status_code == 200]
    assert sorted(int(r.headers["X-RateLimit-Remaining"]) for r in ok) == list(range(9))
    assert all(r.headers["X-RateLimit-Limit"] == "9" for r in ok)
    resets = {int(r.headers["X-RateLimit-Reset"]) for r in ok}
    assert len(resets) == 1 and resets.pop() > 1_700_000_000
    # The key shows the live remaining quota.
    kp = "/tyk/keys/" + urllib.parse.quote(token, safe="")
    assert gw.admin("GET", kp).json()["quota_remaining"] == 0
    # A restart keeps the count.
    assert gw.stop() == 0
    gw.start()
    r = get(gw, "/a/", token)
    assert r.status_code == 403 and r.json() == QUOTA_EXCEEDED
    # Saving the key with suppress_reset keeps it; saving it plainly starts a new period.
    body = gw.admin("GET", kp).json()
    assert gw.admin("PUT", kp + "?suppress_reset=1", body).status_code == 200
    assert get(gw, "/a/", token).status_code == 403
    assert gw.admin("PUT", kp, body).status_code == 200
    assert get(gw, "/a/", token).status_code == 200
    assert gw.admin("GET", kp).json()["quota_remaining"] == 8


def test_rate_limited_requests_use_no_quota(env, origin):
    gw = env([policy("prq", "a", rate=2, per=60, quota_max=5)])
    token = key_for(gw, "prq")["key"]
    codes = [get(gw, "/a/", token).status_code for _ in range(6)]
    assert codes == [200, 200, 429, 429, 429, 429]
    kp = "/tyk/keys/" + urllib.parse.quote(token, safe="")
    assert gw.admin("GET", kp).json()["quota_remaining"] == 3


def test_throttling_waits_and_retries_before_refusing(env, origin):
    """Tyk's throttle_interval / throttle_retry_limit: a request over the rate limit waits and is
    checked again instead of being refused at once; refused when the retries run out."""
    gw = env([policy("thr", "a", rate=2, per=1, quota_max=10, throttle_interval=0.3,
                     throttle_retry_limit=8),
              policy("thr-short", "b", rate=1, per=60, throttle_interval=0.1,
                     throttle_retry_limit=2)])
    token = key_for(gw, "thr")["key"]
    # Five requests at once against 2 per second: all admitted, the later ones after waiting for
    # the window to move on.
    res = parallel(5, lambda i: get(gw, "/a/", token))
    assert [r.status_code for r in res] == [200] * 5, [r.text for r in res]
    assert origin.count() == 5
    # Each admitted request used the quota once (the waits did not count).
    kp = "/tyk/keys/" + urllib.parse.quote(token, safe="")
    assert gw.admin("GET", kp).json()["quota_remaining"] == 5
    # A window that does not move within the retries: refused after them, with Tyk's error.
    origin.clear()
    short = key_for(gw, "thr-short")["key"]
    assert get(gw, "/b/", short).status_code == 200
    start = time.monotonic()
    r = get(gw, "/b/", short)
    waited = time.monotonic() - start
    assert r.status_code == 429 and r.json() == RATE_EXCEEDED
    assert waited >= 0.2, waited  # two retries 0.1 s apart happened first
    assert origin.count() == 1
    # A key's own throttle fields (no policy) work the same.
    r = gw.admin("POST", "/tyk/keys/create", {
        "org_id": ORG, "rate": 1, "per": 1, "quota_max": -1, "throttle_interval": 0.25,
        "throttle_retry_limit": 10,
        "access_rights": {"c": {"api_id": "c", "api_name": "c", "versions": ["Default"]}}})
    assert r.status_code == 200, r.text
    own = r.json()["key"]
    assert [get(gw, "/c/", own).status_code for _ in range(3)] == [200, 200, 200]


def test_several_acl_policies_count_per_api(env, origin):
    gw = env([policy("pa", "a", rate=2, per=60), policy("pb", "b", rate=3, per=60)])
    token = key_for(gw, "pa", "pb")["key"]
    a = [get(gw, "/a/", token).status_code for _ in range(4)]
    b = [get(gw, "/b/", token).status_code for _ in range(4)]
    assert a == [200, 200, 429, 429]
    assert b == [200, 200, 200, 429]


def test_one_policy_shares_one_counter_across_its_apis(env, origin):
    gw = env([policy("pab", "a", "b", rate=3, per=60)])
    token = key_for(gw, "pab")["key"]
    codes = [get(gw, p, token).status_code for p in ("/a/", "/b/", "/a/", "/b/")]
    assert codes == [200, 200, 200, 429]


def test_per_api_policy_limits(env, origin):
    p = policy("per", "a", "b", partitions={"per_api": True}, rate=1, per=60)
    p["access_rights"]["a"]["limit"] = {"rate": 3, "per": 60, "quota_max": -1}
    gw = env([p])
    token = key_for(gw, "per")["key"]
    assert [get(gw, "/a/", token).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert [get(gw, "/b/", token).status_code for _ in range(2)] == [200, 429]


def test_key_rate_limit_without_policies_and_headers_mode(env, origin):
    gw = env(conf={"rate_limit_response_headers": "rate_limits"})
    r = gw.admin("POST", "/tyk/keys/create", {"org_id": ORG, "rate": 2, "per": 60,
                                              "quota_max": -1,
                                              "access_rights": {"a": {"api_id": "a"}}})
    token = r.json()["key"]
    rs = [get(gw, "/a/", token) for _ in range(3)]
    assert [r.status_code for r in rs] == [200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in rs] == ["1", "0", "0"]
    assert all(r.headers["X-RateLimit-Limit"] == "2" for r in rs)
    assert rs[2].json() == RATE_EXCEEDED


def test_fixed_window_rate_limiter_counts_in_clock_aligned_windows(env, origin):
    # enable_fixed_window_rate_limiter: Tyk's windows, multiples of `per` from Go's zero time
    # (for per=2: from each even unix second). The count starts afresh at each boundary, where
    # the sliding log (the default) would still hold admissions made a second before. The
    # API-wide global_rate_limit counts in the same windows.
    gw = env(conf={"enable_fixed_window_rate_limiter": True,
                   "rate_limit_response_headers": "rate_limits"},
             apis=[token_api("a", "/a/", origin.url),
                   keyless_api("open", "/open/", origin.url,
                               global_rate_limit={"rate": 2, "per": 2})])
    r = gw.admin("POST", "/tyk/keys/create", {"org_id": ORG, "rate": 3, "per": 2,
                                              "quota_max": -1,
                                              "access_rights": {"a": {"api_id": "a"}}})
    token = r.json()["key"]
    for _ in range(5):
        time.sleep(2 - time.time() % 2 + 1.0)  # the second half of a window
        boundary = int(time.time()) // 2 * 2 + 2
        rs = [get(gw, "/a/", token) for _ in range(4)]
        opened = [get(gw, "/open/").status_code for _ in range(3)]
        if time.time() < boundary - 0.1:
            break  # all of them fell in one window (else try the next one)
    assert [r.status_code for r in rs] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in rs] == ["2", "1", "0", "0"]
    assert rs[3].headers["X-RateLimit-Reset"] == str(boundary)
    assert rs[3].json() == RATE_EXCEEDED
    assert opened == [200, 200, 429]
    time.sleep(max(0.0, boundary + 0.05 - time.time()))
    # About a second after those admissions: a new window, a new count.
    codes = [get(gw, "/a/", token).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert [get(gw, "/open/").status_code for _ in range(3)] == [200, 200, 429]
    assert origin.count() == 10


def test_api_wide_rate_limit(env, origin):
    gw = env(apis=[keyless_api("open", "/open/", origin.url,
                               global_rate_limit={"rate": 4, "per": 60})])
    res = parallel(12, lambda i: get(gw, "/open/"))
    codes = [r.status_code for r in res]
    assert codes.count(200) == 4 and codes.count(429) == 8
    assert all(r.json() == API_RATE_EXCEEDED for r in res if r.status_code == 429)
    assert origin.count() == 4


def test_quota_renews_after_its_period(env, origin):
    import time
    gw = env([policy("short", "a", quota_max=2, quota_renewal_rate=2)])
    token = key_for(gw, "short")["key"]
    assert [get(gw, "/a/", token).status_code for _ in range(3)] == [200, 200, 403]
    time.sleep(2.2)
    assert get(gw, "/a/", token).status_code == 200


def oas_keyless(api_id, listen, target, rate_limit):
    return {
        "openapi": "3.0.3", "info": {"title": api_id, "version": "1.0.0"}, "paths": {},
        "x-tyk-api-gateway": {
            "info": {"id": api_id, "orgId": ORG, "name": api_id, "state": {"active": True}},
            "upstream": {"url": target, "rateLimit": rate_limit},
            "server": {"listenPath": {"value": listen, "strip": True}},
        },
    }


def test_oas_api_rate_limit(env, origin):
    gw = env(apis=[oas_keyless("oas-rl", "/oas-rl/", origin.url,
                               {"enabled": True, "rate": 3, "per": "1m"}),
                   oas_keyless("oas-off", "/oas-off/", origin.url,
                               {"enabled": False, "rate": 1, "per": "1m"})])
    codes = [get(gw, "/oas-rl/").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert get(gw, "/oas-rl/").json() == API_RATE_EXCEEDED
    assert [get(gw, "/oas-off/").status_code for _ in range(3)] == [200, 200, 200]


def test_oas_rate_limit_with_a_bad_duration_is_refused(env, origin):
    gw = env(apis=[])
    api = oas_keyless("oas-bad", "/oas-bad/", origin.url, {"enabled": True, "rate": 3,
                                                            "per": "soon"})
    r = gw.admin("POST", "/tyk/apis/oas", api)
    assert r.status_code == 400
    assert "rateLimit.per" in r.json()["message"]


def test_api_can_switch_off_rate_limits_and_quotas(env, origin):
    gw = env([policy("tight", "nolimits", "a", rate=1, per=60, quota_max=1)],
             apis=[token_api("nolimits", "/nolimits/", origin.url, disable_rate_limit=True,
                             disable_quota=True, global_rate_limit={"rate": 1, "per": 60}),
                   token_api("a", "/a/", origin.url)])
    token = key_for(gw, "tight")["key"]
    assert [get(gw, "/nolimits/", token).status_code for _ in range(4)] == [200] * 4
    assert [get(gw, "/a/", token).status_code for _ in range(2)] == [200, 429]
