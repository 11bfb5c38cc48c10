#!/usr/bin/python3
"""Helper of bench/run.sh for the keyed scenario: one TLS keep-alive connection, sequential requests.

  keys.py create PORT SECRET API_ID N OUT     create N keys with POST /tyk/keys/create, write the tokens
                                             to OUT (one a line); prints "N seconds keys_per_s"
  keys.py create-policy PORT SECRET POLICY_ID N OUT
                                             the same, each key with "apply_policies": [POLICY_ID]
                                             and no access rights of its own
  keys.py probe PORT PATH TOKEN              prints "valid=STATUS:BODY none=STATUS unknown=STATUS"
  keys.py limits PORT PATH TOKEN N           GET PATH N times with TOKEN; prints the statuses, then
                                             the last 200's X-RateLimit-Limit and -Remaining
                                             (or "-"), e.g. "200,200,429 limit=10 remaining=8"
  keys.py lookup PORT PATH TOKENS            GET PATH once with every token, in order; prints
                                             "requests non200 mean_us p50_us p99_us"

Certificates are not verified (the bench's certificate is self-signed and made at run time).
"""
import http.client
import json
import secrets
import ssl
import sys
import time


def connect(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = http.client.HTTPSConnection("127.0.0.1", int(port), context=ctx, timeout=30)
    c.connect()
    return c


def get(c, path, headers):
    c.request("GET", path, headers={"Host": "bench.local", **headers})
    r = c.getresponse()
    return r.status, r.read()


def create(port, secret, api_id, n, out):
    create_keys(port, secret, {"org_id": "default",
                               "access_rights": {api_id: {"api_id": api_id, "api_name": "bench",
                                                          "versions": ["Default"]}}}, n, out)


def create_policy(port, secret, policy_id, n, out):
    create_keys(port, secret, {"org_id": "default", "apply_policies": [policy_id]}, n, out)


def create_keys(port, secret, fields, n, out):
    n = int(n)
    body = json.dumps(fields)
    hdr = {"Host": "bench.local", "X-Tyk-Authorization": secret, "Content-Type": "application/json"}
    c = connect(port)
    keys = []
    t0 = time.perf_counter()
    for i in range(n):
        c.request("POST", "/tyk/keys/create", body, hdr)
        r = c.getresponse()
        d = r.read()
        if r.status != 200:
            sys.exit(f"keys.py: key {i + 1}: HTTP {r.status}: {d[:200]!r}")
        keys.append(json.loads(d)["key"])
    el = time.perf_counter() - t0
    if len(set(keys)) != n:
        sys.exit("keys.py: the control API returned duplicate keys")
    with open(out, "w") as f:
        f.write("\n".join(keys) + "\n")
    print(f"{n} {el:.3f} {n / el:.1f}")


def probe(port, path, token):
    c = connect(port)
    s1, b1 = get(c, path, {"Authorization": token})
    s2, _ = get(c, path, {})
    s3, _ = get(c, path, {"Authorization": "bench-unknown-" + secrets.token_hex(16)})
    print(f"valid={s1}:{b1.decode(errors='replace').strip() or '-'} none={s2} unknown={s3}")


def limits(port, path, token, n):
    c = connect(port)
    codes, lim, rem = [], "-", "-"
    for _ in range(int(n)):
        c.request("GET", path, headers={"Host": "bench.local", "Authorization": token})
        r = c.getresponse()
        r.read()
        codes.append(str(r.status))
        if r.status == 200:
            lim = r.getheader("X-RateLimit-Limit", "-")
            rem = r.getheader("X-RateLimit-Remaining", "-")
    print(f"{','.join(codes)} limit={lim} remaining={rem}")


def lookup(port, path, tokens_file):
    with open(tokens_file) as f:
        tokens = [t for t in f.read().split("\n") if t]
    c = connect(port)
    lat, bad = [], 0
    for t in tokens:
        t0 = time.perf_counter()
        s, _ = get(c, path, {"Authorization": t})
        lat.append(time.perf_counter() - t0)
        bad += s != 200
    lat.sort()
    n = len(lat)
    print(f"{n} {bad} {1e6 * sum(lat) / n:.1f} {1e6 * lat[n // 2]:.1f} {1e6 * lat[min(n - 1, int(n * 0.99))]:.1f}")


if __name__ == "__main__":
    cmds = {"create": create, "create-policy": create_policy, "probe": probe, "limits": limits,
            "lookup": lookup}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])
