#!/usr/bin/env bash
# Gatehouse vs nginx vs HAProxy, side by side, in one run: same TLS 1.3 ECDSA P-256 listener set-up,
# same local origin, one worker each. See bench/README.md for the method and the knobs.
#
#   bench/run.sh                 # full run: ROUNDS=5 DURATION=10s CONNS=50 KEYS=1000
#   QUICK=1 bench/run.sh         # smoke run: 1 round of 3 s per measurement
#   SCENARIOS=policy bench/run.sh  # only the policy scenario
#
# Scenarios: (a) keyless keep-alive, (k) keyed keep-alive (KEYS keys created through Gatehouse's
# control API, the same tokens checked by nginx's map and HAProxy's ACL), (p) policy: keyed with a
# policy's rate limit and quota (Gatehouse on its embedded store and on Redis; nginx limit_req,
# HAProxy stick table), (b) full handshakes, (h2) HTTP/2: keyless, h2load with 100 streams per
# connection (each proxy offers h2 in ALPN on the same listener), (idle) memory per 1000 idle TLS
# connections (IDLE_CONNS connections, one keep-alive request each, then idle).
#
# Prints a markdown table and writes it to bench/results/latest.md; raw outputs go to
# bench/results/raw/<timestamp>/ (git-ignored).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
declare -A SNAP

# ---------------------------------------------------------------------------------------------
# Knobs
ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-50}"
HS_CONNS="${HS_CONNS:-16}"           # ab concurrency in the full-handshake scenario
H2_CONNS="${H2_CONNS:-4}"            # h2load connections in the HTTP/2 scenario (100 streams each)
IDLE_CONNS="${IDLE_CONNS:-1000}"     # connections held open in the idle-memory scenario
WARMUP="${WARMUP:-1s}"               # unmeasured wrk run before each keep-alive measurement
PAUSE="${PAUSE:-2}"                  # seconds of rest between two measurements
KEYS="${KEYS:-1000}"                 # keys created for the keyed scenario
COLD_REPS="${COLD_REPS:-3}"          # session cache cold/warm repetitions (a gatehouse restart each)
GATEHOUSE_BIN="${GATEHOUSE_BIN:-build/release/gatehouse}"
REDIS_CPU="${REDIS_CPU:-0}"          # the CPU redis-server runs on in the policy scenario (0 or 1)
REDIS_LIMITER="${REDIS_LIMITER:-rolling}"  # policy scenario on Redis: rolling or fixed (fleet-wide), or gateway
SCENARIOS="${SCENARIOS:-keepalive keyed policy handshake h2 idle}"
if [[ "${QUICK:-0}" == 1 ]]; then
  ROUNDS=1
  DURATION=3s
fi
[[ "$GATEHOUSE_BIN" = /* ]] || GATEHOUSE_BIN="$ROOT/$GATEHOUSE_BIN"


DUR_S="$(to_seconds "$DURATION")"
WARMUP_S="$(to_seconds "$WARMUP")"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ "$CONNS" =~ ^[1-9][0-9]*$ ]] || die "CONNS must be a positive integer"
[[ "$HS_CONNS" =~ ^[1-9][0-9]*$ ]] || die "HS_CONNS must be a positive integer"
[[ "$KEYS" =~ ^[1-9][0-9]*$ ]] && (( KEYS <= 100000 )) || die "KEYS must be an integer from 1 to 100000"
[[ "$COLD_REPS" =~ ^[1-9][0-9]?$ ]] || die "COLD_REPS must be an integer from 1 to 99"
(( DUR_S >= 1 && DUR_S <= 600 )) || die "DURATION must be between 1 s and 10 min"
[[ "$REDIS_CPU" == 0 || "$REDIS_CPU" == 1 ]] || die "REDIS_CPU must be 0 or 1"
[[ "$REDIS_LIMITER" =~ ^(rolling|fixed|gateway)$ ]] || die "REDIS_LIMITER must be rolling, fixed or gateway"
declare -A WANT
for s in ${SCENARIOS//,/ }; do
  case "$s" in
    keepalive|keyless) WANT[keepalive]=1 ;;
    keyed|policy|handshake|h2|idle) WANT[$s]=1 ;;
    *) die "unknown scenario '$s' in SCENARIOS (use keepalive, keyed, policy, handshake, h2, idle)" ;;
  esac
done
(( ${#WANT[@]} )) || die "SCENARIOS selects no scenario"
want() { [[ -n "${WANT[$1]:-}" ]]; }
SCENARIOS=""
for s in keepalive keyed policy handshake h2 idle; do want "$s" && SCENARIOS+="${SCENARIOS:+ }$s"; done
[[ -x "$GATEHOUSE_BIN" ]] || die "no gatehouse binary at $GATEHOUSE_BIN (build the release preset, or set GATEHOUSE_BIN)"

# ---------------------------------------------------------------------------------------------
# Packages (Debian), installed only when missing.
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need nginx nginx-light
need haproxy haproxy
need wrk wrk
need openssl openssl
need ab apache2-utils
need h2load nghttp2-client
need curl curl
need taskset util-linux
need ss iproute2
[[ -x /usr/bin/time ]] || missing+=(time)
[[ -x /usr/bin/python3 ]] || missing+=(python3)   # bench/keys.py: key creation, probes, cold/warm
if want policy; then
  need redis-server redis-server
  need redis-cli redis-tools
fi
if (( ${#missing[@]} )); then
  log "installing missing packages: ${missing[*]}"
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${missing[*]}"
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
NCPU="$(nproc --all)"
(( NCPU >= 2 )) && taskset -c 0 true 2>/dev/null && taskset -c 1 true 2>/dev/null \
  || die "needs CPUs 0 and 1 (proxy + origin on CPU 0, load generator on CPU 1)"

# ---------------------------------------------------------------------------------------------
# Temp dir, process bookkeeping, clean-up.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")"
PIDS=()      # servers, stopped at exit
CLIENTS=()   # load generators currently running
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

STAMP="$(date +%Y%m%d-%H%M%S)"
RAW="$BENCH/results/raw/$STAMP"
mkdir -p "$RAW"


# ---------------------------------------------------------------------------------------------
# Certificate: ECDSA P-256, self-signed, made now, never committed.
PKI="$WORK/pki"
mkdir -p "$PKI"
CERT="$PKI/cert.pem"; KEY="$PKI/key.pem"; COMBINED="$PKI/combined.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
  -keyout "$KEY" -out "$CERT" -days 2 -subj "/CN=bench.local" \
  -addext "subjectAltName=DNS:bench.local,IP:127.0.0.1" >/dev/null 2>&1
chmod 600 "$KEY"
cat "$CERT" "$KEY" > "$COMBINED"
chmod 600 "$COMBINED"

# The control API secret (the keyed scenario creates its keys through it): random, per run.
SECRET="$(openssl rand -hex 24)"

# A private copy of the binary: a rebuild during the run cannot swap it under us.
cp "$GATEHOUSE_BIN" "$WORK/gatehouse"
GH_SHA="$(sha256sum "$WORK/gatehouse" | cut -c1-12)"

PROXIES=(gatehouse nginx haproxy)
declare -A PORT
free_port; ORIGIN_PORT="$REPLY"
for name in "${PROXIES[@]}"; do free_port; PORT[$name]="$REPLY"; done
free_port; PROBE_PORT="$REPLY"
# The policy scenario adds a second Gatehouse, on a Redis store, and the Redis server.
POLICY_PROXIES=(gatehouse gatehouse_redis nginx haproxy)
free_port; PORT[gatehouse_redis]="$REPLY"
free_port; REDIS_PORT="$REPLY"


# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# Origin (shared by all three).
mk_nginx_dir "$WORK/origin"
render "$BENCH/nginx-origin.conf.tmpl" "$WORK/origin/nginx.conf" DIR="$WORK/origin" ORIGIN_PORT="$ORIGIN_PORT"
start_on_cpu0 origin "$WORK/origin/stderr.log" nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log"
wait_port "$ORIGIN_PORT" origin "$WORK/origin/error.log"

# Gatehouse: the keyless API on "/", the keyed one on "/keyed/" (auth token in Authorization) and,
# for the policy scenario, "/policy/" (auth token; its keys get access only through the bench
# policy, whose rate limit and quota are high enough never to trigger). The policies folder is in
# the config in every run (empty unless the policy scenario runs).
POLICY_ID=bench-policy
POLICY_RATE=1000000          # per POLICY_PER seconds, per key: never reached
POLICY_PER=1
POLICY_QUOTA=1000000000      # per quota_renewal_rate (3600 s), per key: never reached
LOW_POLICY_ID=bench-policy-low   # pre-flight only: 2 requests per 60 s, so the 3rd one gets 429
mkdir -p "$WORK/gatehouse.d/apps" "$WORK/gatehouse.d/policies"
render "$BENCH/gatehouse.conf.tmpl" "$WORK/gatehouse.d/tyk.conf" DIR="$WORK/gatehouse.d" PORT="${PORT[gatehouse]}" \
  CERT="$CERT" KEY="$KEY" SECRET="$SECRET"
chmod 600 "$WORK/gatehouse.d/tyk.conf"
render "$BENCH/gatehouse-api.json.tmpl" "$WORK/gatehouse.d/apps/bench.json" ORIGIN_PORT="$ORIGIN_PORT"
render "$BENCH/gatehouse-api-keyed.json.tmpl" "$WORK/gatehouse.d/apps/bench-keyed.json" ORIGIN_PORT="$ORIGIN_PORT"
policy_files() {  # policy_files DIR: the policy API and the two policies into a gatehouse dir
  render "$BENCH/gatehouse-api-policy.json.tmpl" "$1/apps/bench-policy.json" ORIGIN_PORT="$ORIGIN_PORT"
  render "$BENCH/gatehouse-policy.json.tmpl" "$1/policies/$POLICY_ID.json" ID="$POLICY_ID" \
    RATE="$POLICY_RATE" PER="$POLICY_PER" QUOTA_MAX="$POLICY_QUOTA"
  render "$BENCH/gatehouse-policy.json.tmpl" "$1/policies/$LOW_POLICY_ID.json" ID="$LOW_POLICY_ID" \
    RATE=2 PER=60 QUOTA_MAX="$POLICY_QUOTA"
}
want policy && policy_files "$WORK/gatehouse.d"
(cd "$WORK/gatehouse.d" && "$WORK/gatehouse" validate --conf "$WORK/gatehouse.d/tyk.conf" >/dev/null 2>&1) \
  || log "warning: 'gatehouse validate' did not pass (starting anyway)"
GH_STARTS=0
start_gatehouse() {  # start_gatehouse [NAME]: NAME gatehouse (embedded store, default) or gatehouse_redis
  local name="${1:-gatehouse}"
  GH_STARTS=$(( GH_STARTS + 1 ))
  GH_LOG="$WORK/$name.d/stderr-$GH_STARTS.log"
  pushd "$WORK/$name.d" >/dev/null
  start_on_cpu0 "$name" "$GH_LOG" "$WORK/gatehouse" --conf "$WORK/$name.d/tyk.conf"
  popd >/dev/null
  wait_port "${PORT[$name]}" "$name" "$GH_LOG"
}
stop_gatehouse() {  # SIGTERM, wait (at most 5 s, then SIGKILL), forget the pid
  local old="$PID_gatehouse" p keep=()
  kill -TERM "$old" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$old" 2>/dev/null || true
  wait "$old" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [[ "$p" == "$old" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
start_gatehouse

# Policy scenario: Redis (Debian's redis-server, no persistence, on CPU 0 with the proxies, or on
# CPU 1 with the load generator when REDIS_CPU=1: a fleet's Redis runs on a host of its own) and
# a second Gatehouse on it, with the policy API only. REDIS_LIMITER=rolling (the default): the rate
# limit and the quota are counted in Redis (enable_redis_rolling_limiter: one MULTI/EXEC round trip
# per request for both, exact across a fleet). REDIS_LIMITER=fixed: enable_fixed_window_rate_limiter,
# the rate limit in fixed windows in Redis (INCR and PEXPIRE) and the quota (INCR and PTTL), one
# round trip, no transaction, exact per window across a fleet. REDIS_LIMITER=gateway: Tyk's
# default set-up, the rate limit counted by the gateway itself and the quota in Redis (INCR and
# PTTL, one round trip).
rcli() { taskset -c 1 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
if want policy; then
  mkdir -p "$WORK/redis"
  start_on_cpu0 redis "$WORK/redis/stdout.log" taskset -c "$REDIS_CPU" redis-server --bind 127.0.0.1 \
    --port "$REDIS_PORT" --save "" --appendonly no --protected-mode no --dir "$WORK/redis"
  wait_port "$REDIS_PORT" redis "$WORK/redis/stdout.log"
  for _ in $(seq 50); do [[ "$(rcli PING 2>/dev/null)" == PONG ]] && break; sleep 0.1; done
  [[ "$(rcli PING 2>/dev/null)" == PONG ]] || die "redis-server does not answer PING"
  mkdir -p "$WORK/gatehouse_redis.d/apps" "$WORK/gatehouse_redis.d/policies"
  render "$BENCH/gatehouse-redis.conf.tmpl" "$WORK/gatehouse_redis.d/tyk.conf" DIR="$WORK/gatehouse_redis.d" \
    PORT="${PORT[gatehouse_redis]}" REDIS_PORT="$REDIS_PORT" CERT="$CERT" KEY="$KEY" SECRET="$SECRET"
  if [[ "$REDIS_LIMITER" == fixed ]]; then
    sed -i 's/"enable_redis_rolling_limiter": true,/"enable_fixed_window_rate_limiter": true,/' \
      "$WORK/gatehouse_redis.d/tyk.conf"
  elif [[ "$REDIS_LIMITER" == gateway ]]; then
    sed -i '/"enable_redis_rolling_limiter": true,/d' "$WORK/gatehouse_redis.d/tyk.conf"
  fi
  chmod 600 "$WORK/gatehouse_redis.d/tyk.conf"
  policy_files "$WORK/gatehouse_redis.d"
  start_gatehouse gatehouse_redis
fi

# Keyed scenario, part 1: create the keys through Gatehouse's control API (sequential, over one
# TLS keep-alive connection, client on CPU 1), then restart Gatehouse (the keys must survive it)
# and time one pass over all the tokens with the session cache cold and one with it warm.
TOKENS="$WORK/tokens.txt"
KEYPY=(/usr/bin/python3 "$BENCH/keys.py")
KEY_CREATE="not measured (keyed scenario not selected)"
COLD_WARM="not measured (keyed scenario not selected)"
if want keyed; then
log "creating $KEYS keys through POST /tyk/keys/create"
snap_begin "$PID_gatehouse"
sched0="$(sched_ns "$PID_gatehouse")"
client $(( KEYS / 5 + 60 )) "$WORK/keys-create.txt" "${KEYPY[@]}" create "${PORT[gatehouse]}" "$SECRET" bench-keyed "$KEYS" "$TOKENS" \
  || die "key creation failed: $(tail -3 "$WORK/keys-create.txt")"
sched1="$(sched_ns "$PID_gatehouse")"
cpu="$(snap_end "$PID_gatehouse")"
kc_client="$(client_cpu)"
read -r kc_n kc_s kc_rate < "$WORK/keys-create.txt"
[[ "$kc_n" == "$KEYS" && "$(sort -u "$TOKENS" | wc -l)" == "$KEYS" ]] || die "expected $KEYS distinct tokens in $TOKENS"
kc_ms="$(awk -v n="$kc_n" -v s="$kc_s" 'BEGIN { printf "%.2f", 1000 * s / n }')"
kc_us="$(awk -v a="$sched0" -v b="$sched1" -v n="$kc_n" 'BEGIN { printf "%.0f", (b - a) / 1000 / n }')"
KEY_CREATE="$kc_rate keys/s ($kc_n keys in $kc_s s, $kc_ms ms per key; gatehouse CPU $kc_us µs per key; CPU 0 busy ${cpu%% *} %, client $kc_client % of CPU 1)"
log "key creation: $KEY_CREATE"
cp "$WORK/keys-create.txt" "$RAW/keys-create.txt"

COLDWARM="$RAW/coldwarm.tsv"
printf 'rep\tpass\trequests\tnon200\tmean_us\tp50_us\tp99_us\tgatehouse_cpu_us_per_req\n' > "$COLDWARM"
UNKNOWN_TOKEN="$WORK/unknown-token.txt"
echo "bench-unknown-token-$(openssl rand -hex 16)" > "$UNKNOWN_TOKEN"
for (( rep = 1; rep <= COLD_REPS; rep++ )); do
  stop_gatehouse
  start_gatehouse
  # One request with an unknown token first: it opens the worker's store connection and the
  # client's TLS connection is made, but it caches no session.
  client 30 /dev/null "${KEYPY[@]}" lookup "${PORT[gatehouse]}" /keyed/ "$UNKNOWN_TOKEN" || true
  for pass in cold warm; do
    s0="$(sched_ns "$PID_gatehouse")"
    client $(( KEYS / 50 + 60 )) "$WORK/lookup.txt" "${KEYPY[@]}" lookup "${PORT[gatehouse]}" /keyed/ "$TOKENS" \
      || die "lookup pass failed: $(tail -3 "$WORK/lookup.txt")"
    s1="$(sched_ns "$PID_gatehouse")"
    read -r lk_n lk_bad lk_mean lk_p50 lk_p99 < "$WORK/lookup.txt"
    (( lk_bad == 0 )) || die "$lk_bad of $lk_n keyed requests did not get 200 after a gatehouse restart ($pass pass)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$pass" "$lk_n" "$lk_bad" "$lk_mean" "$lk_p50" "$lk_p99" \
      "$(awk -v a="$s0" -v b="$s1" -v n="$lk_n" 'BEGIN { printf "%.1f", (b - a) / 1000 / n }')" >> "$COLDWARM"
  done
done
cw() {  # cw PASS COLUMN -> median over the repetitions
  awk -F'\t' -v p="$1" -v c="$2" 'NR > 1 && $2 == p { print $c }' "$COLDWARM" | sort -g \
    | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
COLD_WARM="one connection, each of the $KEYS tokens once per pass, median of $COLD_REPS repetition(s):"
COLD_WARM+=" latency per request p50 $(cw cold 6) µs cold vs $(cw warm 6) µs warm (mean $(cw cold 5) vs $(cw warm 5) µs);"
COLD_WARM+=" gatehouse CPU per request $(cw cold 8) µs cold vs $(cw warm 8) µs warm"
log "session cache: $COLD_WARM"
fi  # want keyed

# Policy scenario: KEYS keys on each Gatehouse, created with "apply_policies": [POLICY_ID] (the
# embedded store's and the Redis store's keys are different keys, hence different tokens). nginx and
# HAProxy check the embedded Gatehouse's tokens.
POLICY_TOKENS="$WORK/tokens-policy.txt"
REDIS_TOKENS="$WORK/tokens-policy-redis.txt"
declare -A TOKFILE=([gatehouse]="$POLICY_TOKENS" [gatehouse_redis]="$REDIS_TOKENS" [nginx]="$POLICY_TOKENS" [haproxy]="$POLICY_TOKENS")
POLICY_CREATE=""
label_of() { case "$1" in gatehouse_redis) echo "gatehouse (Redis store)" ;; gatehouse) echo "gatehouse (embedded store)" ;; *) echo "$1" ;; esac; }
if want policy; then
  for name in gatehouse gatehouse_redis; do
    log "creating $KEYS keys with policy $POLICY_ID on $name"
    client $(( KEYS / 5 + 60 )) "$WORK/keys-create-policy.txt" "${KEYPY[@]}" create-policy "${PORT[$name]}" "$SECRET" \
      "$POLICY_ID" "$KEYS" "${TOKFILE[$name]}" || die "$name: policy key creation failed: $(tail -3 "$WORK/keys-create-policy.txt")"
    read -r pc_n pc_s pc_rate < "$WORK/keys-create-policy.txt"
    [[ "$pc_n" == "$KEYS" && "$(sort -u "${TOKFILE[$name]}" | wc -l)" == "$KEYS" ]] \
      || die "$name: expected $KEYS distinct tokens in ${TOKFILE[$name]}"
    cat "$WORK/keys-create-policy.txt" > "$RAW/keys-create-policy-$name.txt"
    POLICY_CREATE+="${POLICY_CREATE:+; }$(label_of "$name") $pc_rate keys/s ($pc_n keys in $pc_s s)"
  done
  log "policy key creation: $POLICY_CREATE"
fi

# The same tokens for nginx (a map include) and HAProxy (an ACL pattern file).
# The policy scenario's tokens likewise (separate files). A scenario not selected gets empty files.
mkdir -p "$WORK/nginx" "$WORK/haproxy"
: > "$WORK/nginx/tokens.map"; : > "$WORK/haproxy/tokens.txt"
: > "$WORK/nginx/tokens-policy.map"; : > "$WORK/haproxy/tokens-policy.txt"
if want keyed; then
  awk '{ printf "\"%s\" 1;\n", $0 }' "$TOKENS" > "$WORK/nginx/tokens.map"
  cp "$TOKENS" "$WORK/haproxy/tokens.txt"
fi
if want policy; then
  awk '{ printf "\"%s\" 1;\n", $0 }' "$POLICY_TOKENS" > "$WORK/nginx/tokens-policy.map"
  cp "$POLICY_TOKENS" "$WORK/haproxy/tokens-policy.txt"
fi

# nginx proxy.
mk_nginx_dir "$WORK/nginx"
render "$BENCH/nginx-proxy.conf.tmpl" "$WORK/nginx/nginx.conf" DIR="$WORK/nginx" PORT="${PORT[nginx]}" \
  ORIGIN_PORT="$ORIGIN_PORT" CERT="$CERT" KEY="$KEY"
start_on_cpu0 nginx "$WORK/nginx/stderr.log" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
wait_port "${PORT[nginx]}" nginx "$WORK/nginx/error.log"

# HAProxy.
mkdir -p "$WORK/haproxy"
render "$BENCH/haproxy.cfg.tmpl" "$WORK/haproxy/haproxy.cfg" PORT="${PORT[haproxy]}" ORIGIN_PORT="$ORIGIN_PORT" \
  COMBINED="$COMBINED" TOKENS="$WORK/haproxy/tokens.txt" POLICY_TOKENS="$WORK/haproxy/tokens-policy.txt"
haproxy -c -q -f "$WORK/haproxy/haproxy.cfg" || die "haproxy rejected its config"
start_on_cpu0 haproxy "$WORK/haproxy/stderr.log" haproxy -db -f "$WORK/haproxy/haproxy.cfg"
wait_port "${PORT[haproxy]}" haproxy "$WORK/haproxy/stderr.log"

# ---------------------------------------------------------------------------------------------
# Pre-flight checks: every proxy answers 200 "ok" through the origin; same TLS parameters;
# each issues session tickets (so a client that resumes would not measure full handshakes);
# the handshake load generator really makes a full handshake per connection.
PRE="$RAW/preflight.txt"
: > "$PRE"
REQ=$'GET / HTTP/1.1\r\nHost: bench.local\r\nConnection: close\r\n\r\n'
for name in "${PROXIES[@]}"; do
  port="${PORT[$name]}"
  client 20 "$WORK/pre-wrk.txt" wrk -t1 -c2 -d1s "https://127.0.0.1:$port/" || true
  grep -q '^Requests/sec' "$WORK/pre-wrk.txt" && ! grep -qE 'Non-2xx|Socket errors' "$WORK/pre-wrk.txt" \
    || die "$name: keep-alive smoke test failed: $(cat "$WORK/pre-wrk.txt")"
  client 30 "$WORK/pre-ab.txt" ab -r -n 200 -c 4 -s 10 "https://127.0.0.1:$port/" || true
  ab_done="$(awk '/^Complete requests:/ { print $3 }' "$WORK/pre-ab.txt")"
  ab_bad="$(awk '/^Failed requests:/ { s += $3 } /^Non-2xx responses:/ { s += $3 } END { print s + 0 }' "$WORK/pre-ab.txt")"
  ab_hs="$(grep -c 'SSL handshake failed' "$WORK/pre-ab.txt" || true)"
  [[ -n "$ab_done" ]] && (( ab_done > ab_bad )) || die "$name: ab smoke test failed: $(cat "$WORK/pre-ab.txt")"
  resp="$(printf '%s' "$REQ" | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$port" 2>/dev/null | tr -d '\r' || true)"
  [[ "$(head -1 <<<"$resp")" == "HTTP/1.1 200 "* && "$(tail -1 <<<"$resp")" == ok ]] \
    || die "$name: GET / did not get 200 ok from the origin: $(head -1 <<<"$resp")"
  info="$(printf '%s' "$REQ" | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
          -servername bench.local -sess_out "$WORK/$name.sess" -ign_eof 2>&1 || true)"
  proto="$(grep -oE '^(New|Reused), [^,]+, Cipher is [A-Z0-9_]+' <<<"$info" | head -1)"
  tempkey="$(grep -oE 'Server Temp Key: [^,]+' <<<"$info" | head -1 | sed 's/Server Temp Key: //')"
  sigtype="$(grep -oE 'Peer signature type: .*' <<<"$info" | head -1 | sed 's/Peer signature type: //')"
  again="$(printf '%s' "$REQ" | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
          -servername bench.local -sess_in "$WORK/$name.sess" -ign_eof 2>&1 || true)"
  if grep -q '^Reused, TLSv1.3' <<<"$again"; then tickets="issues session tickets, resumption works"; else tickets="no resumption"; fi
  pid_var="PID_$name"
  threads="$(ls "/proc/${!pid_var}/task" | wc -l)"
  echo "$name: ${proto#New, }, key exchange $tempkey, signature $sigtype; $tickets; $threads thread(s);" \
       "ab smoke test (200 new connections, 4 at a time): $ab_bad failed ($ab_hs 'SSL handshake failed')" >> "$PRE"
  if want h2; then
    h2v="$(curl -sk --http2 -o "$WORK/h2body.txt" -w '%{http_version} %{http_code}' --max-time 5 "https://127.0.0.1:$port/" || true)"
    [[ "$h2v" == "2 200" && "$(cat "$WORK/h2body.txt")" == ok ]] || die "$name: GET / over HTTP/2 got: $h2v"
    client 30 "$WORK/pre-h2.txt" h2load -n 2000 -c 2 -m 100 "https://127.0.0.1:$port/" || true
    grep -q "2000 succeeded, 0 failed, 0 errored" "$WORK/pre-h2.txt" && grep -q "2000 2xx" "$WORK/pre-h2.txt" \
      || die "$name: h2load smoke test failed: $(cat "$WORK/pre-h2.txt")"
    echo "$name (HTTP/2): ALPN h2, GET / $h2v ok; h2load smoke test (2000 requests, 2 connections × 100 streams): 0 failed, 2000 2xx" >> "$PRE"
  fi
done

# Keyed: a valid token gets 200 "ok" from the origin, none and an unknown one get 401/403, and a
# short run of the keyed wrk script gets no non-2xx.
LUA="$BENCH/wrk-keyed.lua"
if want keyed; then
valid_token="$(sed -n "$(( (KEYS + 1) / 2 ))p" "$TOKENS")"
for name in "${PROXIES[@]}"; do
  port="${PORT[$name]}"
  client 30 "$WORK/probe-keyed.txt" "${KEYPY[@]}" probe "$port" /keyed/ "$valid_token" \
    || die "$name: keyed probe failed: $(tail -3 "$WORK/probe-keyed.txt")"
  read -r pv pn pu < "$WORK/probe-keyed.txt"
  [[ "$pv" == "valid=200:ok" ]] || die "$name: GET /keyed/ with a valid token did not get 200 ok: $pv"
  [[ "$pn" == none=40[13] ]] || die "$name: GET /keyed/ without a token did not get 401/403: $pn"
  [[ "$pu" == unknown=40[13] ]] || die "$name: GET /keyed/ with an unknown token did not get 401/403: $pu"
  client 20 "$WORK/pre-wrk.txt" wrk -t1 -c2 -d1s -s "$LUA" "https://127.0.0.1:$port/keyed/" -- "$TOKENS" || true
  grep -q '^Requests/sec' "$WORK/pre-wrk.txt" && ! grep -qE 'Non-2xx|Socket errors' "$WORK/pre-wrk.txt" \
    || die "$name: keyed keep-alive smoke test failed: $(cat "$WORK/pre-wrk.txt")"
  kw_n="$(awk '/ requests in / { print $1; exit }' "$WORK/pre-wrk.txt")"
  echo "$name keyed (/keyed/, $KEYS tokens): valid token ${pv#valid=}, no token ${pn#none=}, unknown token ${pu#unknown=};" \
       "keyed wrk smoke test (1 s, 2 connections, $kw_n requests): 0 non-2xx" >> "$PRE"
done
fi  # want keyed

# Policy: the same probes on /policy/ for all four (Gatehouse on each store, nginx, HAProxy), each
# with its own token list; and, on both Gatehouses, proof that the limits run: the quota counts (the
# X-RateLimit-* headers show the policy's quota_max and a remaining count below it), a key with
# the low-rate policy (2 per 60 s) gets 429 on its 3rd request, and on Redis one transaction per
# request does both (MULTI/EXEC with ZADD and INCR in Redis's command counters, no script).
redis_stats() {  # -> "all script round_trips reads" cumulative counters of the Redis server
  # all: every command Redis ran (INFO excluded); script: EVALSHA + EVAL calls; round_trips: the
  # batches Gatehouse sent, counted from above: one per limit batch (MULTI with the rolling
  # limiter; INCR+PEXPIRE and INCR+PTTL, pipelined, with REDIS_LIMITER=fixed; INCR, pipelined with
  # its PTTL, with REDIS_LIMITER=gateway), one per script call and
  # one per other command (GET of a session, and the follow-ups ZREM, DECR, EXPIRE a refusal or a
  # new quota period needs, each counted as one); reads: socket reads Redis processed (pipelined
  # commands share one).
  rcli INFO all | tr -d '\r' | awk -F'[:=,]' -v limiter="$REDIS_LIMITER" '
    /^cmdstat_/ { cmd = substr($1, 9); if (cmd == "info") next; c[cmd] = $3; all += $3 }
    /^total_reads_processed:/ { reads = $2 }
    END {
      script = c["evalsha"] + c["eval"]
      batch = limiter == "rolling" ? "multi exec zremrangebyscore zcard zadd pexpire zrange incr pttl" : \
              limiter == "fixed" ? "incr pexpire pttl" : "incr pttl"
      split(batch, tx, " ")
      in_tx = 0; for (k in tx) in_tx += c[tx[k]]
      batches = limiter == "rolling" ? c["multi"] : limiter == "fixed" ? c["pexpire"] : c["incr"]
      printf "%d %d %d %d\n", all, script, batches + script + (all - script - in_tx), reads }'
}
cmdcalls() {  # cmdcalls CMD... -> how often Redis ran each command so far (space-separated)
  rcli INFO commandstats | tr -d '\r' | awk -F'[:=,]' -v want="$*" 'BEGIN { n = split(want, w, " ") }
    /^cmdstat_/ { c[substr($1, 9)] = $3 }
    END { for (i = 1; i <= n; i++) printf "%d%s", c[w[i]], (i < n ? " " : "\n") }'
}
if want policy; then
  for name in "${POLICY_PROXIES[@]}"; do
    port="${PORT[$name]}" tf="${TOKFILE[$name]}"
    pvalid="$(sed -n "$(( (KEYS + 1) / 2 ))p" "$tf")"
    client 30 "$WORK/probe-policy.txt" "${KEYPY[@]}" probe "$port" /policy/ "$pvalid" \
      || die "$name: policy probe failed: $(tail -3 "$WORK/probe-policy.txt")"
    read -r pv pn pu < "$WORK/probe-policy.txt"
    [[ "$pv" == "valid=200:ok" ]] || die "$name: GET /policy/ with a valid token did not get 200 ok: $pv"
    [[ "$pn" == none=40[13] ]] || die "$name: GET /policy/ without a token did not get 401/403: $pn"
    [[ "$pu" == unknown=40[13] ]] || die "$name: GET /policy/ with an unknown token did not get 401/403: $pu"
    extra=""
    if [[ "$name" == gatehouse* ]]; then
      [[ "$name" == gatehouse_redis ]] && read -r e0 v0 m0 z0 i0 x0 < <(cmdcalls evalsha eval multi zadd incr pexpire)
      client 30 "$WORK/limits.txt" "${KEYPY[@]}" limits "$port" /policy/ "$pvalid" 3 || die "$name: limits probe failed"
      read -r lcodes llim lrem < "$WORK/limits.txt"
      [[ "$lcodes" == 200,200,200 && "$llim" == "limit=$POLICY_QUOTA" && "${lrem#remaining=}" =~ ^[0-9]+$ ]] \
        && (( ${lrem#remaining=} < POLICY_QUOTA - 3 )) \
        || die "$name: the quota does not count on /policy/: $(cat "$WORK/limits.txt")"
      extra="; quota counts (3 requests: $lcodes, X-RateLimit-Limit ${llim#limit=}, remaining ${lrem#remaining=})"
      if [[ "$name" == gatehouse_redis ]]; then
        read -r e1 v1 m1 z1 i1 x1 < <(cmdcalls evalsha eval multi zadd incr pexpire)
        if [[ "$REDIS_LIMITER" == rolling ]]; then
          (( e1 + v1 - e0 - v0 == 0 && m1 - m0 == 3 && z1 - z0 == 3 && i1 - i0 == 3 )) \
            || die "$name: expected 3 transactions with 3 ZADD and 3 INCR (no script) in Redis for 3 requests, got $(( m1 - m0 )), $(( z1 - z0 )), $(( i1 - i0 )) (scripts $(( e1 + v1 - e0 - v0 )))"
          extra+="; in Redis: 3 MULTI/EXEC transactions, 3 ZADD (rate), 3 INCR (quota), no script, for these 3 requests"
        elif [[ "$REDIS_LIMITER" == fixed ]]; then
          (( e1 + v1 - e0 - v0 == 0 && m1 - m0 == 0 && z1 - z0 == 0 && i1 - i0 == 6 && x1 - x0 == 3 )) \
            || die "$name: expected 6 INCR and 3 PEXPIRE (no transaction, ZADD or script) in Redis for 3 requests, got $(( i1 - i0 )) INCR, $(( x1 - x0 )) PEXPIRE, $(( m1 - m0 )) MULTI, $(( z1 - z0 )) ZADD, $(( e1 + v1 - e0 - v0 )) scripts"
          extra+="; in Redis: 6 INCR (3 fixed-window counts, 3 quota), 3 PEXPIRE, no transaction, sorted set or script, for these 3 requests"
        else
          (( e1 + v1 - e0 - v0 == 0 && m1 - m0 == 0 && z1 - z0 == 0 && i1 - i0 == 3 )) \
            || die "$name: expected 3 INCR and no transaction, ZADD or script in Redis for 3 requests, got $(( i1 - i0 )) INCR, $(( m1 - m0 )) MULTI, $(( z1 - z0 )) ZADD, $(( e1 + v1 - e0 - v0 )) scripts"
          extra+="; in Redis: 3 INCR (quota), no transaction, sorted set or script, for these 3 requests"
        fi
      fi
      client 30 "$WORK/low-key.txt" "${KEYPY[@]}" create-policy "$port" "$SECRET" "$LOW_POLICY_ID" 1 "$WORK/low-token.txt" \
        || die "$name: could not create a key with $LOW_POLICY_ID"
      client 30 "$WORK/limits.txt" "${KEYPY[@]}" limits "$port" /policy/ "$(cat "$WORK/low-token.txt")" 3 || die "$name: limits probe failed"
      read -r lcodes _ < "$WORK/limits.txt"
      [[ "$lcodes" == 200,200,429 ]] || die "$name: a key with $LOW_POLICY_ID (2 per 60 s) got $lcodes, expected 200,200,429"
      extra+="; a key with the 2-per-60-s policy: $lcodes"
    fi
    client 20 "$WORK/pre-wrk.txt" wrk -t1 -c2 -d1s -s "$LUA" "https://127.0.0.1:$port/policy/" -- "$tf" || true
    grep -q '^Requests/sec' "$WORK/pre-wrk.txt" && ! grep -qE 'Non-2xx|Socket errors' "$WORK/pre-wrk.txt" \
      || die "$name: policy keep-alive smoke test failed: $(cat "$WORK/pre-wrk.txt")"
    kw_n="$(awk '/ requests in / { print $1; exit }' "$WORK/pre-wrk.txt")"
    echo "$(label_of "$name") policy (/policy/, $KEYS tokens): valid token ${pv#valid=}, no token ${pn#none=}," \
         "unknown token ${pu#unknown=}$extra; policy wrk smoke test (1 s, 2 connections, $kw_n requests): 0 non-2xx" >> "$PRE"
  done
fi

# Does the handshake generator resume? A throw-away nginx logs $ssl_session_reused per connection.
mk_nginx_dir "$WORK/probe"
render "$BENCH/nginx-probe.conf.tmpl" "$WORK/probe/nginx.conf" DIR="$WORK/probe" PORT="$PROBE_PORT" CERT="$CERT" KEY="$KEY"
taskset -c 0 nginx -p "$WORK/probe" -c "$WORK/probe/nginx.conf" -e "$WORK/probe/error.log" >"$WORK/probe/stderr.log" 2>&1 &
PROBE_PID=$!
PIDS+=("$PROBE_PID")
wait_port "$PROBE_PORT" probe "$WORK/probe/error.log"
count_reuse() {  # -> "full resumed"
  awk '$1=="." {f++} $1=="r" {r++} END {printf "%d %d\n", f, r}' "$WORK/probe/probe.log"
}
if want handshake; then
  : > "$WORK/probe/probe.log"
  client 30 "$WORK/probe/ab.txt" ab -r -c 4 -t 1 -n 20000 -s 10 "https://127.0.0.1:$PROBE_PORT/" || true
  read -r ab_full ab_resumed < <(count_reuse)
  : > "$WORK/probe/probe.log"
  client 20 /dev/null wrk -t1 -c4 -d1s -H 'Connection: close' "https://127.0.0.1:$PROBE_PORT/" || true
  read -r wrk_full wrk_resumed < <(count_reuse)
  echo "handshake check (nginx \$ssl_session_reused per connection): ab: $ab_full full, $ab_resumed resumed;" \
       "wrk -H 'Connection: close' (not used): $wrk_full full, $wrk_resumed resumed" >> "$PRE"
  (( ab_full > 0 && ab_resumed == 0 )) || die "ab resumed TLS sessions ($ab_resumed of $(( ab_full + ab_resumed ))); the handshake scenario would not measure full handshakes"
fi
# Does the keyed wrk script send every token? The probe logs each /keyed/ request's Authorization.
rotation_check() {  # rotation_check TOKENS_FILE WHAT
  : > "$WORK/probe/auth.log"
  client 20 /dev/null wrk -t1 -c4 -d1s -s "$LUA" "https://127.0.0.1:$PROBE_PORT/keyed/" -- "$1" || true
  rot_n="$(wc -l < "$WORK/probe/auth.log")"
  rot_distinct="$(sort -u "$WORK/probe/auth.log" | wc -l)"
  rot_foreign="$(sort -u "$WORK/probe/auth.log" | comm -23 - <(sort -u "$1") | wc -l)"
  echo "token rotation check, $2 (the keyed wrk script against the probe, which logs each Authorization header):" \
       "$rot_n requests, $rot_distinct distinct tokens of $KEYS, $rot_foreign not in the key list" >> "$PRE"
  (( rot_n >= KEYS && rot_distinct == KEYS && rot_foreign == 0 )) \
    || die "the keyed wrk script did not rotate through the $KEYS tokens of $1 ($rot_n requests, $rot_distinct distinct, $rot_foreign foreign)"
}
want keyed && rotation_check "$TOKENS" "keyed tokens"
if want policy; then
  rotation_check "$POLICY_TOKENS" "policy tokens (embedded store)"
  rotation_check "$REDIS_TOKENS" "policy tokens (Redis store)"
fi
kill -TERM "$PROBE_PID" 2>/dev/null || true
wait "$PROBE_PID" 2>/dev/null || true
log "pre-flight:"; sed 's/^/    /' "$PRE" >&2

# ---------------------------------------------------------------------------------------------
# Measurements.
RESULTS="$RAW/results.tsv"
printf 'scenario\tproxy\tround\treq_per_s\tp99_ms\terrors\tcpu0_pct\tcpu1_pct\tproxy_pct\torigin_pct\tproxy_us_per_req\tloadgen_pct\tnon2xx\tredis_pct\tredis_us_per_req\tredis_client_cmds_per_req\tredis_script_calls_per_req\tredis_all_cmds_per_req\tredis_reads_per_req\tproxy_plus_redis_us_per_req\torigin_wakeups_per_req\n' > "$RESULTS"
NAN6=$'nan\tnan\tnan\tnan\tnan\tnan\tnan'   # columns 14-20 of a measurement without Redis

pid_of() { local v="PID_$1"; echo "${!v}"; }
per_request_us() {  # per_request_us JIFFIES COUNT -> CPU microseconds of the proxy per request
  awk -v j="$1" -v n="$2" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.1f", j * 1e6 / hz / n; else print "nan" }'
}


# run_keepalive SCENARIO NAME ROUND: SCENARIO "keepalive" (keyless, GET /), "keyed" (GET /keyed/,
# every request with the next token in Authorization, from bench/wrk-keyed.lua) or "policy" (the
# same on /policy/ with the proxy's policy tokens; Redis's counters and CPU are read around it).
run_keepalive() {
  local scen="$1" name="$2" round="$3" port="${PORT[$2]}" pid out cpu rps p99 errs non2xx count us lg label
  local target=() rx="$NAN6" r0=() r1=() rj0 rj1 rt0 rt1 ow0 ow1 ow
  if [[ "$scen" == keyed ]]; then
    target=(-s "$LUA" "https://127.0.0.1:$port/keyed/" -- "$TOKENS"); label="keyed     "
  elif [[ "$scen" == policy ]]; then
    target=(-s "$LUA" "https://127.0.0.1:$port/policy/" -- "${TOKFILE[$name]}"); label="policy    "
  else
    target=("https://127.0.0.1:$port/"); label="keep-alive"
  fi
  pid="$(pid_of "$name")"
  out="$RAW/$scen-$name-r$round.txt"
  client $(( WARMUP_S + 30 )) /dev/null wrk -t1 -c"$CONNS" -d"$WARMUP" "${target[@]}" || true
  sleep 0.5
  if [[ "$scen" == policy ]]; then read -r -a r0 < <(redis_stats); rj0="$(tree_jiffies "$PID_redis")"; rt0="$(date +%s.%N)"; fi
  read -r ow0 _ < <(switches "$PID_origin")
  snap_begin "$pid"
  client $(( DUR_S + 60 )) "$out" wrk -t1 -c"$CONNS" -d"$DURATION" --latency "${target[@]}" \
    || log "warning: wrk exited non-zero for $name (see $out)"
  cpu="$(snap_end "$pid")"
  read -r ow1 _ < <(switches "$PID_origin")
  if [[ "$scen" == policy ]]; then rj1="$(tree_jiffies "$PID_redis")"; rt1="$(date +%s.%N)"; read -r -a r1 < <(redis_stats); fi
  read -r rps p99 errs non2xx count < <(wrk_result "$out")
  [[ "$count" != 0 ]] || log "warning: no result from wrk for $name (see $out)"
  us="$(per_request_us "${cpu##* }" "$count")"
  lg="$(client_cpu)"
  if [[ "$scen" == policy ]]; then
    # Redis: CPU % over the measurement, CPU per request, and its counters per request (the
    # second redis_stats call's own socket read is taken off).
    rx="$(awk -v j="$(( rj1 - rj0 ))" -v n="$count" -v hz="$HZ" -v el="$(awk -v a="$rt0" -v b="$rt1" 'BEGIN { print b - a }')" \
              -v us="$us" -v a="$(( r1[0] - r0[0] ))" -v sc="$(( r1[1] - r0[1] ))" -v cl="$(( r1[2] - r0[2] ))" \
              -v rd="$(( r1[3] - r0[3] - 1 ))" 'BEGIN {
        if (n <= 0 || el <= 0) { print "nan\tnan\tnan\tnan\tnan\tnan\tnan"; exit }
        rus = j * 1e6 / hz / n
        printf "%.0f\t%.1f\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f\n", 100 * j / hz / el, rus, cl / n, sc / n, a / n, rd / n, us + rus }')"
  fi
  # The origin's wake-ups per request: how many requests it finds waiting each time it runs.
  ow="$(per_request $(( ow1 - ow0 )) "$count")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$name" "$round" "$rps" "$p99" "$errs" "$(tr ' ' '\t' <<<"${cpu% *}")" "$us" "$lg" "$non2xx" "$rx" "$ow" >> "$RESULTS"
  local rlog=""
  [[ "$scen" == policy ]] && rlog="  redis CPU/req/client cmds/script calls/all cmds/reads per req $(cut -f2-6 <<<"$rx" | tr '\t' '/')"
  log "$label  r$round $(printf '%-15s' "$name") ${rps} req/s  p99 ${p99} ms  errors ${errs}  proxy ${us} us CPU/req  cpu0/cpu1/proxy/origin/loadgen % ${cpu% *} $lg  origin wake-ups/req $ow$rlog"
}

run_handshake() {
  local name="$1" round="$2" port="${PORT[$1]}" pid out cpu rps p99 errs non2xx count us lg
  pid="$(pid_of "$name")"
  out="$RAW/handshake-$name-r$round.txt"
  snap_begin "$pid"
  # -t: run for DURATION; -n: a cap far above what one core can do (ab sizes its table by it);
  # -r: a reset connection is counted, not fatal.
  client $(( DUR_S + 60 )) "$out" ab -r -c "$HS_CONNS" -t "$DUR_S" -n $(( DUR_S * 20000 )) -s 10 "https://127.0.0.1:$port/" \
    || log "warning: ab exited non-zero for $name (see $out)"
  cpu="$(snap_end "$pid")"
  # ab counts failed requests among the complete ones; the rate here counts only the good ones.
  count="$(awk '/^Complete requests:/ { print $3 }' "$out")"
  errs="$(awk '/^Failed requests:/ { s += $3 } /^Non-2xx responses:/ { s += $3 } END { print s + 0 }' "$out")"
  non2xx="$(awk '/^Non-2xx responses:/ { s += $3 } END { print s + 0 }' "$out")"
  rps="$(awk -v e="$errs" '/^Complete requests:/ { n = $3 } /^Time taken for tests:/ { t = $5 }
                           END { if (t > 0) printf "%.1f", (n - e) / t }' "$out")"
  p99="$(awk '$1 == "99%" { print $2 }' "$out")"
  [[ -n "$rps" && -n "$count" ]] || { rps=0; count=0; p99=nan; log "warning: no result from ab for $name (see $out)"; }
  (( count < DUR_S * 20000 )) || log "warning: ab reached its request cap for $name; raise -n"
  us="$(per_request_us "${cpu##* }" "$count")"
  lg="$(client_cpu)"
  printf 'handshake\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rps" "${p99:-nan}" "$errs" "$(tr ' ' '\t' <<<"${cpu% *}")" "$us" "$lg" "$non2xx" "$NAN6"$'\t'nan >> "$RESULTS"
  log "handshakes  r$round $(printf '%-9s' "$name") ${rps} conn/s  p99 ${p99} ms  errors ${errs}  proxy ${us} us CPU/conn  cpu0/cpu1/proxy/origin/loadgen % ${cpu% *} $lg"
}

# run_h2 NAME ROUND: HTTP/2, keyless GET /, h2load with H2_CONNS connections of 100 streams each
# (after a one-second warm-up). h2load reports no percentiles: the p99 column stays empty.
run_h2() {
  local name="$1" round="$2" port="${PORT[$1]}" pid out cpu rps errs non2xx count us lg
  pid="$(pid_of "$name")"
  out="$RAW/h2-$name-r$round.txt"
  snap_begin "$pid"
  client $(( DUR_S + 60 )) "$out" h2load -c "$H2_CONNS" -m 100 -D "$DUR_S" --warm-up-time=1 \
    "https://127.0.0.1:$port/" || log "warning: h2load exited non-zero for $name (see $out)"
  cpu="$(snap_end "$pid")"
  rps="$(awk '/^finished in/ { gsub(/,/, ""); print $4; exit }' "$out")"
  count="$(awk '/^requests:/ { print $8; exit }' "$out")"
  errs="$(awk '/^requests:/ { print $10 + $12 + $14; exit }' "$out")"
  non2xx="$(awk '/^status codes:/ { print $5 + $7 + $9; exit }' "$out")"
  [[ -n "$rps" && -n "$count" ]] || { rps=0; count=0; log "warning: no result from h2load for $name (see $out)"; }
  errs=$(( ${errs:-0} + ${non2xx:-0} ))
  # The warm-up second is not in h2load's count but is in the CPU snapshot: counted out.
  us="$(per_request_us "${cpu##* }" "$(awk -v n="$count" -v d="$DUR_S" 'BEGIN { printf "%d", n * (d + 1) / d }')")"
  lg="$(client_cpu)"
  printf 'h2\t%s\t%s\t%s\tnan\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rps" "$errs" "$(tr ' ' '\t' <<<"${cpu% *}")" "$us" "$lg" "${non2xx:-0}" "$NAN6"$'\t'nan >> "$RESULTS"
  log "h2          r$round $(printf '%-9s' "$name") ${rps} req/s  errors ${errs}  proxy ${us} us CPU/req  cpu0/cpu1/proxy/origin/loadgen % ${cpu% *} $lg"
}

# run_idle NAME ROUND: resident memory of the proxy's processes (nginx: master and worker) before
# and while IDLE_CONNS TLS connections are open and idle (each served one keep-alive request);
# the difference, per 1000 connections, in KiB, goes in the req/s column of the "idle" rows.
rss_kb() {  # rss_kb PID -> VmRSS of PID and its direct children, KiB
  local p sum=0 v
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    v="$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)"
    sum=$(( sum + ${v:-0} ))
  done
  echo "$sum"
}
run_idle() {
  local name="$1" round="$2" port="${PORT[$1]}" pid out before after ready kib
  pid="$(pid_of "$name")"
  out="$RAW/idle-$name-r$round.txt"
  before="$(rss_kb "$pid")"
  taskset -c 1 /usr/bin/python3 "$BENCH/idle_conns.py" "$port" "$IDLE_CONNS" 6 > "$out" 2>&1 &
  local gen=$!
  for _ in $(seq 600); do grep -q '^ready' "$out" && break; kill -0 "$gen" 2>/dev/null || break; sleep 0.1; done
  sleep 1
  after="$(rss_kb "$pid")"
  ready="$(awk '/^ready/ { print $2 }' "$out")"
  wait "$gen" || log "warning: idle_conns.py failed for $name (see $out)"
  [[ "${ready:-0}" == "$IDLE_CONNS" ]] || log "warning: only ${ready:-0} of $IDLE_CONNS idle connections got 200 from $name"
  kib="$(awk -v a="$after" -v b="$before" -v n="${ready:-0}" 'BEGIN { if (n > 0) printf "%.0f", (a - b) * 1000 / n; else print "nan" }')"
  printf 'idle\t%s\t%s\t%s\tnan\t%s\tnan\tnan\tnan\tnan\tnan\tnan\t0\t%s\n' "$name" "$round" "$kib" \
    "$(( IDLE_CONNS - ${ready:-0} ))" "$NAN6"$'\t'nan >> "$RESULTS"
  log "idle        r$round $(printf '%-9s' "$name") ${kib} KiB per 1000 idle TLS connections (RSS $before -> $after KiB, ${ready:-0} connections)"
  sleep 2  # the connections close
}

log "SCENARIOS='$SCENARIOS' ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS HS_CONNS=$HS_CONNS KEYS=$KEYS gatehouse=$GATEHOUSE_BIN ($GH_SHA)"
log "ports: origin $ORIGIN_PORT, gatehouse ${PORT[gatehouse]}, nginx ${PORT[nginx]}, haproxy ${PORT[haproxy]}$(want policy && echo ", gatehouse_redis ${PORT[gatehouse_redis]}, redis $REDIS_PORT")"
for (( r = 1; r <= ROUNDS; r++ )); do
  order=() porder=()
  for (( i = 0; i < 3; i++ )); do order+=("${PROXIES[$(( (i + r - 1) % 3 ))]}"); done
  for (( i = 0; i < 4; i++ )); do porder+=("${POLICY_PROXIES[$(( (i + r - 1) % 4 ))]}"); done
  log "round $r/$ROUNDS: ${order[*]}$(want policy && echo "; policy: ${porder[*]}")"
  if want keepalive; then
    for name in "${order[@]}"; do
      run_keepalive keepalive "$name" "$r"
      sleep "$PAUSE"
    done
  fi
  if want keyed; then
    for name in "${order[@]}"; do
      run_keepalive keyed "$name" "$r"
      sleep "$PAUSE"
    done
  fi
  if want policy; then
    for name in "${porder[@]}"; do
      run_keepalive policy "$name" "$r"
      sleep "$PAUSE"
    done
  fi
  if want handshake; then
    for name in "${order[@]}"; do
      run_handshake "$name" "$r"
      sleep "$PAUSE"
    done
  fi
  if want h2; then
    for name in "${order[@]}"; do
      run_h2 "$name" "$r"
      sleep "$PAUSE"
    done
  fi
  if want idle; then
    for name in "${order[@]}"; do run_idle "$name" "$r"; done
  fi
done

# The processes must have survived the whole run.
survivors=(origin "${PROXIES[@]}")
want policy && survivors+=(gatehouse_redis redis)
for name in "${survivors[@]}"; do
  kill -0 "$(pid_of "$name")" 2>/dev/null || die "$name died during the run (logs in $WORK, KEEP_TMP=1 keeps them)"
done

# ---------------------------------------------------------------------------------------------
# Report.
# results.tsv columns: 1 scenario, 2 proxy, 3 round, 4 req/s, 5 p99 ms, 6 errors, 7 CPU 0 %,
# 8 CPU 1 %, 9 proxy process %, 10 origin %, 11 proxy CPU us per request, 12 load generator %,
# 13 non-2xx responses (wrk: status >= 400; ab: "Non-2xx responses"); policy scenario only (nan
# otherwise): 14 Redis %, 15 Redis CPU us per request, 16 Redis commands sent by clients per request,
# 17 EVALSHA+EVAL per request, 18 all commands Redis ran per request (inside scripts too),
# 19 Redis socket reads per request, 20 proxy + Redis CPU us per request.

declare -A M
for s in keepalive keyed policy handshake h2 idle; do
  plist=("${PROXIES[@]}")
  [[ "$s" == policy ]] && plist=("${POLICY_PROXIES[@]}")
  for p in "${plist[@]}"; do
    for c in 4 5 7 8 9 10 11 12 14 15 16 17 18 19 20 21; do M[$s,$p,$c]="$(median "$s" "$p" "$c")"; done
    M[$s,$p,err]="$(sumcol "$s" "$p" 6)"
    M[$s,$p,non2xx]="$(sumcol "$s" "$p" 13)"
  done
done

row() {  # row LABEL SCENARIO COLUMN DECIMALS [GATEHOUSE_NAME [OTHERS_COLUMN]]
  local s="$2" c="$3" d="$4" gn="${5:-gatehouse}" oc="${6:-$3}" g n h
  g="${M[$s,$gn,$c]}"; n="${M[$s,nginx,$oc]}"; h="${M[$s,haproxy,$oc]}"
  printf '| %s | %s%s | %s%s | %s%s | %s | %s |\n' "$1" \
    "$(fmt "$g" "$d")" "$(range "$s" "$gn" "$c" "$d")" "$(fmt "$n" "$d")" "$(range "$s" nginx "$oc" "$d")" \
    "$(fmt "$h" "$d")" "$(range "$s" haproxy "$oc" "$d")" "$(ratio "$g" "$n")" "$(ratio "$g" "$h")"
}
row1() {  # row1 LABEL SCENARIO COLUMN DECIMALS GATEHOUSE_NAME: a figure only Gatehouse has
  printf '| %s | %s%s | – | – | – | – |\n' "$1" "$(fmt "${M[$2,$5,$3]}" "$4")" "$(range "$2" "$5" "$3" "$4")"
}
bound() {  # bound CPU0 PROXY ORIGIN CPU1 LOADGEN [REDIS]: which side ran out of CPU
  awk -v c0="$1" -v px="$2" -v og="$3" -v c1="$4" -v lg="$5" -v rd="${6:-nan}" 'BEGIN {
    s0 = (c0 >= 90); s1 = (c1 >= 90)
    if (s0 && s1) r = "both cores busy"
    else if (s0) r = (rd == "nan" ? "CPU 0 (proxy + origin)" : "CPU 0 (proxy + origin + Redis)")
    else if (s1) r = "CPU 1 (load generator)"
    else r = "neither core saturated"
    n0 = c0 - px - og - (rd == "nan" ? 0 : rd); n1 = c1 - lg
    if (n0 >= 10 || n1 >= 10) r = r sprintf("; other load: CPU 0 %d%%, CPU 1 %d%%", n0 < 0 ? 0 : n0, n1 < 0 ? 0 : n1)
    print r }'
}
cpurow() {
  local s="$1" p="$2" rd ow lbl="$2"
  [[ "$s" == policy ]] && lbl="$(label_of "$p")"
  rd="$(fmt "${M[$s,$p,14]}" 0)"; [[ "$rd" == n/a ]] && rd="–"
  ow="$(fmt "${M[$s,$p,21]}" 2)"; [[ "$ow" == n/a ]] && ow="–"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$3" "$lbl" "${M[$s,$p,7]}" "${M[$s,$p,9]}" "${M[$s,$p,10]}" \
    "$ow" "$rd" "${M[$s,$p,8]}" "${M[$s,$p,12]}" \
    "$(bound "${M[$s,$p,7]}" "${M[$s,$p,9]}" "${M[$s,$p,10]}" "${M[$s,$p,8]}" "${M[$s,$p,12]}" "${M[$s,$p,14]}")"
}

cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
nginx_v="$(nginx -v 2>&1 | sed 's/.*nginx\///')"
haproxy_v="$( (haproxy -v 2>/dev/null || true) | awk 'NR==1 { print $3 }')"
wrk_v="$( (wrk -v 2>&1 || true) | awk 'NR==1 { print $2 }')"
ab_v="$( (ab -V 2>&1 || true) | awk 'NR==1 { print $5 }')"
openssl_v="$(openssl version | awk '{ print $2 }')"
gh_commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$ROOT" status --porcelain -- src CMakeLists.txt 2>/dev/null || true)" ]]; then
  gh_commit+=" + uncommitted changes"
fi

ka_rps_ok="$(yesno "${M[keepalive,gatehouse,4]} >= ${M[keepalive,nginx,4]}")"
ka_p99_ok="$(yesno "${M[keepalive,gatehouse,5]} <= 1.2 * ${M[keepalive,nginx,5]}")"
kd_rps_ok="$(yesno "${M[keyed,gatehouse,4]} >= 1.2 * ${M[keyed,nginx,4]}")"
kd_p99_ok="$(yesno "${M[keyed,gatehouse,5]} <= ${M[keyed,nginx,5]}")"
kd_non2xx=0 po_non2xx=0
want keyed && kd_non2xx=$(( M[keyed,gatehouse,non2xx] + M[keyed,nginx,non2xx] + M[keyed,haproxy,non2xx] ))
want policy && po_non2xx=$(( M[policy,gatehouse,non2xx] + M[policy,gatehouse_redis,non2xx] + M[policy,nginx,non2xx] + M[policy,haproxy,non2xx] ))
po_emb_ok="$(yesno "${M[policy,gatehouse,4]} >= 1.2 * ${M[policy,nginx,4]}")"
po_red_ok="$(yesno "${M[policy,gatehouse_redis,4]} >= 0.8 * ${M[policy,nginx,4]}")"
key_cost() {  # keyed minus keyless median proxy CPU per request
  awk -v a="${M[keyed,$1,11]}" -v b="${M[keepalive,$1,11]}" 'BEGIN { if (a == "nan" || b == "nan") print "n/a"; else printf "%+.1f µs", a - b }'
}
cmd="ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS HS_CONNS=$HS_CONNS KEYS=$KEYS bench/run.sh"
[[ "${QUICK:-0}" == 1 ]] && cmd="QUICK=1 bench/run.sh"
[[ "$SCENARIOS" == "keepalive keyed policy handshake h2 idle" ]] || cmd="SCENARIOS='$SCENARIOS' $cmd"
[[ "$GATEHOUSE_BIN" == "$ROOT/build/release/gatehouse" ]] || cmd="GATEHOUSE_BIN=$GATEHOUSE_BIN $cmd"
[[ "$REDIS_CPU" == 0 ]] || cmd="REDIS_CPU=$REDIS_CPU $cmd"
[[ "$REDIS_LIMITER" == rolling ]] || cmd="REDIS_LIMITER=$REDIS_LIMITER $cmd"

REPORT="$RAW/table.md"
{
  echo "## Gatehouse vs nginx vs HAProxy — $(date -u +%Y-%m-%d\ %H:%M) UTC"
  echo
  echo "Medians of $ROUNDS interleaved round(s), $DURATION per measurement (min–max over the rounds in" \
       "brackets); scenarios: $SCENARIOS. One worker each, TLS 1.3, the same ECDSA P-256 certificate, the same origin (one nginx" \
       "worker, \`return 200 \"ok\\n\"\`). Proxy and origin pinned to CPU 0, load generator to CPU 1."
  if want keyed; then
    echo "Keyed: $KEYS keys created through Gatehouse's control API (a Tyk Classic auth-token API on \`/keyed/\`);" \
         "nginx checks the same tokens with a \`map\`, HAProxy with an ACL pattern file; wrk sends the next token" \
         "in \`Authorization\` on every request."
  fi
  if want policy; then
    if [[ "$REDIS_LIMITER" == rolling ]]; then
      redis_mode="\`enable_redis_rolling_limiter\`: rate limit and quota counted in Redis, one MULTI/EXEC round trip per request"
    elif [[ "$REDIS_LIMITER" == fixed ]]; then
      redis_mode="\`enable_fixed_window_rate_limiter\`: rate limit (fixed windows: INCR and PEXPIRE) and quota (INCR and PTTL) counted in Redis, one round trip per request, no transaction"
    else
      redis_mode="Tyk's default limiter set-up: the rate limit counted by the gateway, the quota in Redis (INCR and PTTL), one round trip per request"
    fi
    echo "Policy: $KEYS keys created with \`\"apply_policies\": [\"$POLICY_ID\"]\` (rate $POLICY_RATE per $POLICY_PER s," \
         "quota $POLICY_QUOTA per 3600 s, never reached) on \`/policy/\`, on Gatehouse's embedded store (rate limit and quota" \
         "counted in the gateway) and on a Redis store (Debian's redis-server on CPU $REDIS_CPU, $redis_mode);" \
         "nginx adds \`limit_req\` (per token," \
         "${POLICY_RATE}r/s) to the token \`map\`, HAProxy a stick table per token (\`http_req_rate(1s)\`, \`http_req_cnt\`) with" \
         "deny rules above never-reached thresholds. In the policy rows the gatehouse column is the embedded store or the" \
         "Redis store as labelled; nginx and haproxy are the same measurements in both."
  fi
  echo
  echo "| scenario | gatehouse | nginx | haproxy | gatehouse/nginx | gatehouse/haproxy |"
  echo "|---|---|---|---|---|---|"
  if want keepalive; then
    row "keep-alive: req/s (wrk -t1 -c$CONNS) ↑" keepalive 4 0
    row "keep-alive: p99 latency, ms ↓" keepalive 5 2
    row "keep-alive: proxy CPU per request, µs ↓" keepalive 11 1
  fi
  if want keyed; then
    row "keyed keep-alive: req/s (wrk -t1 -c$CONNS, $KEYS tokens in rotation) ↑" keyed 4 0
    row "keyed keep-alive: p99 latency, ms ↓" keyed 5 2
    row "keyed keep-alive: proxy CPU per request, µs ↓" keyed 11 1
  fi
  if want policy; then
    row "policy, embedded store: req/s (wrk -t1 -c$CONNS, $KEYS tokens in rotation) ↑" policy 4 0 gatehouse
    row "policy, embedded store: p99 latency, ms ↓" policy 5 2 gatehouse
    row "policy, embedded store: proxy CPU per request, µs ↓" policy 11 1 gatehouse
    row "policy, Redis store: req/s ↑" policy 4 0 gatehouse_redis
    row "policy, Redis store: p99 latency, ms ↓" policy 5 2 gatehouse_redis
    row "policy, Redis store: proxy CPU per request (gatehouse only), µs ↓" policy 11 1 gatehouse_redis
    row "policy, Redis store: gatehouse + Redis CPU per request, µs ↓" policy 20 1 gatehouse_redis 11
    row1 "policy, Redis store: Redis round trips per request" policy 16 3 gatehouse_redis
  fi
  if want handshake; then
    row "full handshakes: conn/s (ab -c$HS_CONNS, one request per connection) ↑" handshake 4 0
    row "full handshakes: p99 connect+handshake+request, ms ↓" handshake 5 0
    row "full handshakes: proxy CPU per connection, µs ↓" handshake 11 0
  fi
  if want h2; then
    row "HTTP/2: req/s (h2load -c$H2_CONNS -m100, keyless) ↑" h2 4 0
    row "HTTP/2: proxy CPU per request, µs ↓" h2 11 1
  fi
  if want idle; then
    row "memory per 1000 idle TLS connections (RSS growth, one request each), KiB ↓" idle 4 0
  fi
  echo
  hs_lg_bound="$(yesno "${M[handshake,gatehouse,8]} >= 90 && ${M[handshake,nginx,8]} >= 90 && ${M[handshake,haproxy,8]} >= 90 && ${M[handshake,gatehouse,7]} < 90 && ${M[handshake,nginx,7]} < 90 && ${M[handshake,haproxy,7]} < 90")"
  if want handshake && [[ "$hs_lg_bound" == yes ]]; then
    echo "In the full-handshake scenario CPU 1 (the load generator's core) was saturated and CPU 0 was not:" \
         "an OpenSSL 3.0 client handshake costs more CPU than the proxy's side of it, so the conn/s row is" \
         "a floor set by the client; compare the proxies by their CPU per connection."
    echo
  fi
  if want keepalive; then
    echo "Issue bar (keep-alive vs nginx): req/s ≥ 1.0×: **$ka_rps_ok**; p99 ≤ 1.2×: **$ka_p99_ok**."
    echo
  fi
  if want idle; then
    echo "Issue 8 bar (memory per 1000 idle TLS connections vs nginx): ≤ 0.5×:" \
         "**$(yesno "${M[idle,gatehouse,4]} <= 0.5 * ${M[idle,nginx,4]}")** ($(ratio "${M[idle,gatehouse,4]}" "${M[idle,nginx,4]}"))."
    echo
  fi
  if want h2; then
    echo "Issue 8 bar (HTTP/2, h2load 100 streams, vs HAProxy): req/s ≥ 1.2×:" \
         "**$(yesno "${M[h2,gatehouse,4]} >= 1.2 * ${M[h2,haproxy,4]}")** ($(ratio "${M[h2,gatehouse,4]}" "${M[h2,haproxy,4]}"))."
    echo
  fi
  if want keyed; then
    echo "Issue 4 bar (keyed keep-alive vs nginx): req/s ≥ 1.2×: **$kd_rps_ok**; p99 ≤ 1.0×: **$kd_p99_ok**."
    echo
  fi
  if want policy; then
    echo "Issue 5 bar (policy vs nginx \`limit_req\`): embedded store req/s ≥ 1.2×: **$po_emb_ok**" \
         "($(ratio "${M[policy,gatehouse,4]}" "${M[policy,nginx,4]}")); Redis store req/s ≥ 0.8×: **$po_red_ok**" \
         "($(ratio "${M[policy,gatehouse_redis,4]}" "${M[policy,nginx,4]}"))."
    echo
    echo "Redis per request in the Redis-store runs (medians; \`INFO commandstats\` and \`INFO stats\` before and after" \
         "each measured wrk run, divided by the requests wrk counted): $(fmt "${M[policy,gatehouse_redis,16]}" 3)" \
         "round trips (limit batches: MULTI/EXEC transactions, INCR+PEXPIRE+INCR+PTTL with REDIS_LIMITER=fixed, or INCR+PTTL pairs with REDIS_LIMITER=gateway; script calls; other commands), with" \
         "$(fmt "${M[policy,gatehouse_redis,17]}" 3) EVALSHA/EVAL; $(fmt "${M[policy,gatehouse_redis,18]}" 2) commands run by Redis in all" \
         "(MULTI and EXEC included); $(fmt "${M[policy,gatehouse_redis,19]}" 3) socket reads by Redis" \
         "(commands pipelined on one connection share a read); Redis CPU $(fmt "${M[policy,gatehouse_redis,15]}" 1) µs" \
         "per request. During the other proxies' policy runs Redis got $(fmt "${M[policy,gatehouse,16]}" 3) (embedded)," \
         "$(fmt "${M[policy,nginx,16]}" 3) (nginx), $(fmt "${M[policy,haproxy,16]}" 3) (haproxy) commands per request."
    echo
    echo "Policy key creation (\`POST /tyk/keys/create\` with \`apply_policies\`, sequential): $POLICY_CREATE."
    echo
  fi
  if want keyed; then
    echo "Key creation through the control API (\`POST /tyk/keys/create\`, sequential over one TLS keep-alive" \
         "connection, Python http.client on CPU 1): $KEY_CREATE."
    echo
    echo "Session cache, cold (first pass just after a gatehouse restart) vs warm (second pass): $COLD_WARM."
    echo
  fi
  if want keepalive && want keyed; then
    echo "Cost of the key check (keyed minus keyless proxy CPU per request, medians):" \
         "gatehouse $(key_cost gatehouse), nginx $(key_cost nginx), haproxy $(key_cost haproxy)."
    echo
  fi
  errs_line="Errors over all rounds (keep-alive, keyed, policy: socket errors + non-2xx; handshakes: ab failed + non-2xx; h2: h2load failed/errored/timed out + non-2xx):"
  for p in "${POLICY_PROXIES[@]}"; do
    parts=""
    for sc in $SCENARIOS; do
      [[ "$sc" != policy && "$p" == gatehouse_redis ]] && continue
      parts+="${parts:+, }$sc ${M[$sc,$p,err]}"
    done
    [[ -n "$parts" ]] && errs_line+=" $(label_of "$p"): $parts;"
  done
  echo "${errs_line%;}."
  if want keyed || want policy; then
    echo "Non-2xx in the keyed and policy runs (every token is valid and no limit is reached, so this must be 0):" \
         "keyed $kd_non2xx, policy $po_non2xx."
  fi
  echo
  echo "CPU during the measurements (median %, 100 = one full core), and how often the origin went to sleep per request (its voluntary context switches: 1.00 = it wakes for every request; fewer = it finds several waiting):"
  echo
  echo "| scenario | proxy | CPU 0 busy | proxy process | origin | origin wake-ups per request | Redis | CPU 1 busy | load generator | saturated |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  if want keepalive; then for p in "${PROXIES[@]}"; do cpurow keepalive "$p" keep-alive; done; fi
  if want keyed; then for p in "${PROXIES[@]}"; do cpurow keyed "$p" "keyed keep-alive"; done; fi
  if want policy; then for p in "${POLICY_PROXIES[@]}"; do cpurow policy "$p" "policy"; done; fi
  if want handshake; then for p in "${PROXIES[@]}"; do cpurow handshake "$p" "full handshakes"; done; fi
  if want h2; then for p in "${PROXIES[@]}"; do cpurow h2 "$p" "HTTP/2"; done; fi
  echo
  echo "Pre-flight checks:"
  echo
  sed 's/^/- /' "$PRE"
  echo
  redis_v=""
  want policy && redis_v=", Redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
  echo "Gatehouse $gh_commit (binary sha256 $GH_SHA…), nginx $nginx_v, HAProxy $haproxy_v$redis_v, wrk $wrk_v," \
       "ab $ab_v, OpenSSL $openssl_v; $NCPU × $cpu_model; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)." \
       "Command: \`$cmd\`. Raw outputs: \`bench/results/raw/$STAMP/\`."
} > "$REPORT"

cp "$REPORT" "$BENCH/results/latest.md"
echo
cat "$REPORT"
(( kd_non2xx == 0 )) || die "check failed: $kd_non2xx non-2xx responses in the keyed runs, where every token is valid (see $RAW/keyed-*.txt)"
(( po_non2xx == 0 )) || die "check failed: $po_non2xx non-2xx responses in the policy runs, where every token is valid and no limit is reached (see $RAW/policy-*.txt)"
