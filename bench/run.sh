#!/usr/bin/env bash
# Gatehouse vs nginx vs HAProxy, side by side, in one run: same TLS 1.3 ECDSA P-256 listener set-up,
# same local origin, one worker each. See bench/README.md for the method and the knobs.
#
#   bench/run.sh                 # full run: ROUNDS=5 DURATION=10s CONNS=50 KEYS=1000
#   QUICK=1 bench/run.sh         # smoke run: 1 round of 3 s per measurement
#
# Scenarios: (a) keyless keep-alive, (k) keyed keep-alive (KEYS keys created through Gatehouse's
# control API, the same tokens checked by nginx's map and HAProxy's ACL), (b) full handshakes.
#
# Prints a markdown table and writes it to bench/results/latest.md; raw outputs go to
# bench/results/raw/<timestamp>/ (git-ignored).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# ---------------------------------------------------------------------------------------------
# Knobs
ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-50}"
HS_CONNS="${HS_CONNS:-16}"           # ab concurrency in the full-handshake scenario
WARMUP="${WARMUP:-1s}"               # unmeasured wrk run before each keep-alive measurement
PAUSE="${PAUSE:-2}"                  # seconds of rest between two measurements
KEYS="${KEYS:-1000}"                 # keys created for the keyed scenario
COLD_REPS="${COLD_REPS:-3}"          # session cache cold/warm repetitions (a gatehouse restart each)
GATEHOUSE_BIN="${GATEHOUSE_BIN:-build/release/gatehouse}"
if [[ "${QUICK:-0}" == 1 ]]; then
  ROUNDS=1
  DURATION=3s
fi
[[ "$GATEHOUSE_BIN" = /* ]] || GATEHOUSE_BIN="$ROOT/$GATEHOUSE_BIN"

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

# DURATION as whole seconds (wrk takes "10s", ab takes an integer).
to_seconds() {
  local d="$1"
  case "$d" in
    *[0-9]s) echo "${d%s}" ;;
    *[0-9]m) echo $(( ${d%m} * 60 )) ;;
    *[0-9]) echo "$d" ;;
    *) die "cannot read duration '$d' (use e.g. 10s, 2m or 10)" ;;
  esac
}
DUR_S="$(to_seconds "$DURATION")"
WARMUP_S="$(to_seconds "$WARMUP")"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ "$CONNS" =~ ^[1-9][0-9]*$ ]] || die "CONNS must be a positive integer"
[[ "$HS_CONNS" =~ ^[1-9][0-9]*$ ]] || die "HS_CONNS must be a positive integer"
[[ "$KEYS" =~ ^[1-9][0-9]*$ ]] && (( KEYS <= 100000 )) || die "KEYS must be an integer from 1 to 100000"
[[ "$COLD_REPS" =~ ^[1-9][0-9]?$ ]] || die "COLD_REPS must be an integer from 1 to 99"
(( DUR_S >= 1 && DUR_S <= 600 )) || die "DURATION must be between 1 s and 10 min"
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
need taskset util-linux
need ss iproute2
[[ -x /usr/bin/time ]] || missing+=(time)
[[ -x /usr/bin/python3 ]] || missing+=(python3)   # bench/keys.py: key creation, probes, cold/warm
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
kill_tree() {  # SIGTERM a process we started and all its descendants (found by parent pid)
  local p
  for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do kill_tree "$p"; done
  kill -TERM "$1" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local p
  for p in "${CLIENTS[@]}"; do kill_tree "$p"; done
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

STAMP="$(date +%Y%m%d-%H%M%S)"
RAW="$BENCH/results/raw/$STAMP"
mkdir -p "$RAW"

# A free loopback port below the ephemeral range (so client sockets never collide with it).
# Sets REPLY (not echoed: a subshell would lose USED_PORTS).
USED_PORTS=" "
free_port() {
  local p
  for _ in $(seq 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    [[ "$USED_PORTS" == *" $p "* ]] && continue
    if [[ -z "$(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null)" ]]; then
      USED_PORTS+="$p "
      REPLY="$p"
      return 0
    fi
  done
  die "no free port found"
}

wait_port() {
  local port="$1" name="$2" log_file="$3"
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  cat "$log_file" >&2 || true
  die "$name did not listen on 127.0.0.1:$port"
}

render() {  # render TEMPLATE OUT KEY=VALUE...
  local tmpl="$1" out="$2"; shift 2
  local args=() kv
  for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${args[@]}" "$tmpl" > "$out"
  if grep -q '@[A-Z_]*@' "$out"; then die "unrendered placeholder in $out"; fi
}

# start NAME LOGFILE CMD... : start on CPU 0 in the background, remember the pid.
start_on_cpu0() {
  local name="$1" logf="$2"; shift 2
  taskset -c 0 "$@" >"$logf" 2>&1 &
  PIDS+=("$!")
  eval "PID_${name}=$!"
}

# client LIMIT_S OUTFILE CMD... : run a load generator on CPU 1, bounded by a timeout, in the
# background so that a signal reaches our trap at once; returns the generator's exit status.
client() {
  local limit="$1" out="$2" rc=0; shift 2
  taskset -c 1 /usr/bin/time -f '%e %U %S' -o "$WORK/client.time" timeout "$limit" "$@" >"$out" 2>&1 &
  CLIENTS=("$!")
  wait "$!" || rc=$?
  CLIENTS=()
  return "$rc"
}
client_cpu() {  # CPU % of the last load generator over its own run time (100 = one core)
  awk '{ if ($1 > 0) printf "%.0f", 100 * ($2 + $3) / $1; else print "nan" }' "$WORK/client.time" 2>/dev/null || echo nan
}
wait_clients() {  # wait for background generators started by the caller
  CLIENTS=("$@")
  local p
  for p in "$@"; do wait "$p" || true; done
  CLIENTS=()
}

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

mk_nginx_dir() { mkdir -p "$1"/{client_body,proxy,fastcgi,uwsgi,scgi}; }

# ---------------------------------------------------------------------------------------------
# CPU accounting: busy jiffies of CPU 0 / CPU 1 and of a process tree (process + its children,
# so nginx's worker is counted under its master).
cpu_busy() {  # cpu_busy N -> "busy total"
  awk -v c="cpu$1" '$1==c { t=0; for (i=2;i<=NF;i++) t+=$i; print t-$5-$6, t }' /proc/stat
}
tree_jiffies() {  # tree_jiffies PID -> utime+stime of PID and its direct children
  local p sum=0 v
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    v="$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)"
    sum=$(( sum + v ))
  done
  echo "$sum"
}
HZ="$(getconf CLK_TCK)"
sched_ns() {  # sched_ns PID -> nanoseconds on CPU of all the process's threads (/proc/PID/task/*/schedstat)
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}
declare -A SNAP
snap_begin() {
  SNAP[t0]="$(date +%s.%N)"
  read -r SNAP[b0] SNAP[a0] < <(cpu_busy 0)
  read -r SNAP[b1] SNAP[a1] < <(cpu_busy 1)
  SNAP[gw]="$(tree_jiffies "$1")"
  SNAP[or]="$(tree_jiffies "$PID_origin")"
}
snap_end() {  # snap_end PID -> "cpu0% cpu1% proxy% origin% proxy_jiffies"
  local t1 b0 a0 b1 a1 gw or
  t1="$(date +%s.%N)"
  read -r b0 a0 < <(cpu_busy 0)
  read -r b1 a1 < <(cpu_busy 1)
  gw="$(tree_jiffies "$1")"; or="$(tree_jiffies "$PID_origin")"
  awk -v t0="${SNAP[t0]}" -v t1="$t1" -v hz="$HZ" \
      -v db0=$(( b0 - SNAP[b0] )) -v da0=$(( a0 - SNAP[a0] )) \
      -v db1=$(( b1 - SNAP[b1] )) -v da1=$(( a1 - SNAP[a1] )) \
      -v dgw=$(( gw - SNAP[gw] )) -v dor=$(( or - SNAP[or] )) \
      'BEGIN { el = t1 - t0; if (el <= 0) el = 1
               printf "%.0f %.0f %.0f %.0f %d\n", (da0 ? 100*db0/da0 : 0), (da1 ? 100*db1/da1 : 0),
                      100*dgw/hz/el, 100*dor/hz/el, dgw }'
}

# ---------------------------------------------------------------------------------------------
# Origin (shared by all three).
mk_nginx_dir "$WORK/origin"
render "$BENCH/nginx-origin.conf.tmpl" "$WORK/origin/nginx.conf" DIR="$WORK/origin" ORIGIN_PORT="$ORIGIN_PORT"
start_on_cpu0 origin "$WORK/origin/stderr.log" nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log"
wait_port "$ORIGIN_PORT" origin "$WORK/origin/error.log"

# Gatehouse: the keyless API on "/" and the keyed one on "/keyed/" (auth token in Authorization).
mkdir -p "$WORK/gatehouse.d/apps"
render "$BENCH/gatehouse.conf.tmpl" "$WORK/gatehouse.d/tyk.conf" DIR="$WORK/gatehouse.d" PORT="${PORT[gatehouse]}" \
  CERT="$CERT" KEY="$KEY" SECRET="$SECRET"
chmod 600 "$WORK/gatehouse.d/tyk.conf"
render "$BENCH/gatehouse-api.json.tmpl" "$WORK/gatehouse.d/apps/bench.json" ORIGIN_PORT="$ORIGIN_PORT"
render "$BENCH/gatehouse-api-keyed.json.tmpl" "$WORK/gatehouse.d/apps/bench-keyed.json" ORIGIN_PORT="$ORIGIN_PORT"
(cd "$WORK/gatehouse.d" && "$WORK/gatehouse" validate --conf "$WORK/gatehouse.d/tyk.conf" >/dev/null 2>&1) \
  || log "warning: 'gatehouse validate' did not pass (starting anyway)"
GH_STARTS=0
start_gatehouse() {
  GH_STARTS=$(( GH_STARTS + 1 ))
  GH_LOG="$WORK/gatehouse.d/stderr-$GH_STARTS.log"
  pushd "$WORK/gatehouse.d" >/dev/null
  start_on_cpu0 gatehouse "$GH_LOG" "$WORK/gatehouse" --conf "$WORK/gatehouse.d/tyk.conf"
  popd >/dev/null
  wait_port "${PORT[gatehouse]}" gatehouse "$GH_LOG"
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

# Keyed scenario, part 1: create the keys through Gatehouse's control API (sequential, over one
# TLS keep-alive connection, client on CPU 1), then restart Gatehouse (the keys must survive it)
# and time one pass over all the tokens with the session cache cold and one with it warm.
TOKENS="$WORK/tokens.txt"
KEYPY=(/usr/bin/python3 "$BENCH/keys.py")
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

# The same tokens for nginx (a map include) and HAProxy (an ACL pattern file).
mkdir -p "$WORK/nginx" "$WORK/haproxy"
awk '{ printf "\"%s\" 1;\n", $0 }' "$TOKENS" > "$WORK/nginx/tokens.map"
cp "$TOKENS" "$WORK/haproxy/tokens.txt"

# nginx proxy.
mk_nginx_dir "$WORK/nginx"
render "$BENCH/nginx-proxy.conf.tmpl" "$WORK/nginx/nginx.conf" DIR="$WORK/nginx" PORT="${PORT[nginx]}" \
  ORIGIN_PORT="$ORIGIN_PORT" CERT="$CERT" KEY="$KEY"
start_on_cpu0 nginx "$WORK/nginx/stderr.log" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
wait_port "${PORT[nginx]}" nginx "$WORK/nginx/error.log"

# HAProxy.
mkdir -p "$WORK/haproxy"
render "$BENCH/haproxy.cfg.tmpl" "$WORK/haproxy/haproxy.cfg" PORT="${PORT[haproxy]}" ORIGIN_PORT="$ORIGIN_PORT" \
  COMBINED="$COMBINED" TOKENS="$WORK/haproxy/tokens.txt"
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
done

# Keyed: a valid token gets 200 "ok" from the origin, none and an unknown one get 401/403, and a
# short run of the keyed wrk script gets no non-2xx.
LUA="$BENCH/wrk-keyed.lua"
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
: > "$WORK/probe/probe.log"
client 30 "$WORK/probe/ab.txt" ab -r -c 4 -t 1 -n 20000 -s 10 "https://127.0.0.1:$PROBE_PORT/" || true
read -r ab_full ab_resumed < <(count_reuse)
: > "$WORK/probe/probe.log"
client 20 /dev/null wrk -t1 -c4 -d1s -H 'Connection: close' "https://127.0.0.1:$PROBE_PORT/" || true
read -r wrk_full wrk_resumed < <(count_reuse)
# Does the keyed wrk script send every token? The probe logs each /keyed/ request's Authorization.
: > "$WORK/probe/auth.log"
client 20 /dev/null wrk -t1 -c4 -d1s -s "$LUA" "https://127.0.0.1:$PROBE_PORT/keyed/" -- "$TOKENS" || true
rot_n="$(wc -l < "$WORK/probe/auth.log")"
rot_distinct="$(sort -u "$WORK/probe/auth.log" | wc -l)"
rot_foreign="$(sort -u "$WORK/probe/auth.log" | comm -23 - <(sort -u "$TOKENS") | wc -l)"
kill -TERM "$PROBE_PID" 2>/dev/null || true
wait "$PROBE_PID" 2>/dev/null || true
echo "handshake check (nginx \$ssl_session_reused per connection): ab: $ab_full full, $ab_resumed resumed;" \
     "wrk -H 'Connection: close' (not used): $wrk_full full, $wrk_resumed resumed" >> "$PRE"
echo "token rotation check (the keyed wrk script against the probe, which logs each Authorization header):" \
     "$rot_n requests, $rot_distinct distinct tokens of $KEYS, $rot_foreign not in the key list" >> "$PRE"
(( rot_n >= KEYS && rot_distinct == KEYS && rot_foreign == 0 )) \
  || die "the keyed wrk script did not rotate through the $KEYS tokens ($rot_n requests, $rot_distinct distinct, $rot_foreign foreign)"
(( ab_full > 0 && ab_resumed == 0 )) || die "ab resumed TLS sessions ($ab_resumed of $(( ab_full + ab_resumed ))); the handshake scenario would not measure full handshakes"
log "pre-flight:"; sed 's/^/    /' "$PRE" >&2

# ---------------------------------------------------------------------------------------------
# Measurements.
RESULTS="$RAW/results.tsv"
printf 'scenario\tproxy\tround\treq_per_s\tp99_ms\terrors\tcpu0_pct\tcpu1_pct\tproxy_pct\torigin_pct\tproxy_us_per_req\tloadgen_pct\tnon2xx\n' > "$RESULTS"

pid_of() { local v="PID_$1"; echo "${!v}"; }
per_request_us() {  # per_request_us JIFFIES COUNT -> CPU microseconds of the proxy per request
  awk -v j="$1" -v n="$2" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.1f", j * 1e6 / hz / n; else print "nan" }'
}

to_ms() {  # wrk latency "812.00us" / "1.23ms" / "1.01s" -> milliseconds
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else printf "nan" }'
}

# run_keepalive SCENARIO NAME ROUND: SCENARIO "keepalive" (keyless, GET /) or "keyed" (GET /keyed/,
# every request with the next token in Authorization, from bench/wrk-keyed.lua).
run_keepalive() {
  local scen="$1" name="$2" round="$3" port="${PORT[$2]}" pid out cpu rps p99 errs non2xx count us lg label
  local target=()
  if [[ "$scen" == keyed ]]; then
    target=(-s "$LUA" "https://127.0.0.1:$port/keyed/" -- "$TOKENS"); label="keyed     "
  else
    target=("https://127.0.0.1:$port/"); label="keep-alive"
  fi
  pid="$(pid_of "$name")"
  out="$RAW/$scen-$name-r$round.txt"
  client $(( WARMUP_S + 30 )) /dev/null wrk -t1 -c"$CONNS" -d"$WARMUP" "${target[@]}" || true
  sleep 0.5
  snap_begin "$pid"
  client $(( DUR_S + 60 )) "$out" wrk -t1 -c"$CONNS" -d"$DURATION" --latency "${target[@]}" \
    || log "warning: wrk exited non-zero for $name (see $out)"
  cpu="$(snap_end "$pid")"
  rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
  p99="$(to_ms "$(awk '$1=="99%" {print $2}' "$out")")"
  errs="$(awk '/Socket errors:/ { gsub(/,/, ""); s += $4 + $6 + $8 + $10 } /Non-2xx/ { s += $NF } END { print s + 0 }' "$out")"
  non2xx="$(awk '/Non-2xx/ { s += $NF } END { print s + 0 }' "$out")"
  count="$(awk '/ requests in / { print $1; exit }' "$out")"
  [[ -n "$rps" && -n "$count" ]] || { rps=0; count=0; log "warning: no result from wrk for $name (see $out)"; }
  us="$(per_request_us "${cpu##* }" "$count")"
  lg="$(client_cpu)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$name" "$round" "$rps" "$p99" "$errs" "$(tr ' ' '\t' <<<"${cpu% *}")" "$us" "$lg" "$non2xx" >> "$RESULTS"
  log "$label  r$round $(printf '%-9s' "$name") ${rps} req/s  p99 ${p99} ms  errors ${errs}  proxy ${us} us CPU/req  cpu0/cpu1/proxy/origin/loadgen % ${cpu% *} $lg"
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
  printf 'handshake\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rps" "${p99:-nan}" "$errs" "$(tr ' ' '\t' <<<"${cpu% *}")" "$us" "$lg" "$non2xx" >> "$RESULTS"
  log "handshakes  r$round $(printf '%-9s' "$name") ${rps} conn/s  p99 ${p99} ms  errors ${errs}  proxy ${us} us CPU/conn  cpu0/cpu1/proxy/origin/loadgen % ${cpu% *} $lg"
}

log "ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS HS_CONNS=$HS_CONNS KEYS=$KEYS gatehouse=$GATEHOUSE_BIN ($GH_SHA)"
log "ports: origin $ORIGIN_PORT, gatehouse ${PORT[gatehouse]}, nginx ${PORT[nginx]}, haproxy ${PORT[haproxy]}"
for (( r = 1; r <= ROUNDS; r++ )); do
  order=()
  for (( i = 0; i < 3; i++ )); do order+=("${PROXIES[$(( (i + r - 1) % 3 ))]}"); done
  log "round $r/$ROUNDS: ${order[*]}"
  for name in "${order[@]}"; do
    run_keepalive keepalive "$name" "$r"
    sleep "$PAUSE"
  done
  for name in "${order[@]}"; do
    run_keepalive keyed "$name" "$r"
    sleep "$PAUSE"
  done
  for name in "${order[@]}"; do
    run_handshake "$name" "$r"
    sleep "$PAUSE"
  done
done

# The processes must have survived the whole run.
for name in origin "${PROXIES[@]}"; do
  kill -0 "$(pid_of "$name")" 2>/dev/null || die "$name died during the run (logs in $WORK, KEEP_TMP=1 keeps them)"
done

# ---------------------------------------------------------------------------------------------
# Report.
# results.tsv columns: 1 scenario, 2 proxy, 3 round, 4 req/s, 5 p99 ms, 6 errors, 7 CPU 0 %,
# 8 CPU 1 %, 9 proxy process %, 10 origin %, 11 proxy CPU us per request, 12 load generator %,
# 13 non-2xx responses (wrk: status >= 400; ab: "Non-2xx responses").
column_of() {
  awk -F'\t' -v s="$1" -v p="$2" -v c="$3" 'NR > 1 && $1 == s && $2 == p && $c != "nan" { print $c }' "$RESULTS" | sort -g
}
median() {
  column_of "$@" | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
                         if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
range() {  # " (min–max)" when there is more than one round
  column_of "$1" "$2" "$3" | awk -v d="$4" '{ v[NR] = $1 } END { if (NR > 1) printf " (%.*f–%.*f)", d, v[1], d, v[NR] }'
}
sumcol() {
  awk -F'\t' -v s="$1" -v p="$2" -v c="$3" 'NR > 1 && $1 == s && $2 == p { t += $c } END { print t + 0 }' "$RESULTS"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b + 0 == 0) print "n/a"; else printf "%.2f×", a / b }'; }
fmt() { awk -v v="$1" -v d="$2" 'BEGIN { if (v == "nan") print "n/a"; else printf "%.*f", d, v }'; }

declare -A M
for s in keepalive keyed handshake; do
  for p in "${PROXIES[@]}"; do
    for c in 4 5 7 8 9 10 11 12; do M[$s,$p,$c]="$(median "$s" "$p" "$c")"; done
    M[$s,$p,err]="$(sumcol "$s" "$p" 6)"
    M[$s,$p,non2xx]="$(sumcol "$s" "$p" 13)"
  done
done

row() {  # row LABEL SCENARIO COLUMN DECIMALS
  local s="$2" c="$3" d="$4" g n h
  g="${M[$s,gatehouse,$c]}"; n="${M[$s,nginx,$c]}"; h="${M[$s,haproxy,$c]}"
  printf '| %s | %s%s | %s%s | %s%s | %s | %s |\n' "$1" \
    "$(fmt "$g" "$d")" "$(range "$s" gatehouse "$c" "$d")" "$(fmt "$n" "$d")" "$(range "$s" nginx "$c" "$d")" \
    "$(fmt "$h" "$d")" "$(range "$s" haproxy "$c" "$d")" "$(ratio "$g" "$n")" "$(ratio "$g" "$h")"
}
bound() {  # bound CPU0 PROXY ORIGIN CPU1 LOADGEN: which side ran out of CPU
  awk -v c0="$1" -v px="$2" -v og="$3" -v c1="$4" -v lg="$5" 'BEGIN {
    s0 = (c0 >= 90); s1 = (c1 >= 90)
    if (s0 && s1) r = "both cores busy"
    else if (s0) r = "CPU 0 (proxy + origin)"
    else if (s1) r = "CPU 1 (load generator)"
    else r = "neither core saturated"
    n0 = c0 - px - og; n1 = c1 - lg
    if (n0 >= 10 || n1 >= 10) r = r sprintf("; other load: CPU 0 %d%%, CPU 1 %d%%", n0 < 0 ? 0 : n0, n1 < 0 ? 0 : n1)
    print r }'
}
cpurow() {
  local s="$1" p="$2"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$3" "$p" "${M[$s,$p,7]}" "${M[$s,$p,9]}" "${M[$s,$p,10]}" \
    "${M[$s,$p,8]}" "${M[$s,$p,12]}" \
    "$(bound "${M[$s,$p,7]}" "${M[$s,$p,9]}" "${M[$s,$p,10]}" "${M[$s,$p,8]}" "${M[$s,$p,12]}")"
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

yesno() { awk "BEGIN { print ($1) ? \"yes\" : \"no\" }"; }
ka_rps_ok="$(yesno "${M[keepalive,gatehouse,4]} >= ${M[keepalive,nginx,4]}")"
ka_p99_ok="$(yesno "${M[keepalive,gatehouse,5]} <= 1.2 * ${M[keepalive,nginx,5]}")"
kd_rps_ok="$(yesno "${M[keyed,gatehouse,4]} >= 1.2 * ${M[keyed,nginx,4]}")"
kd_p99_ok="$(yesno "${M[keyed,gatehouse,5]} <= ${M[keyed,nginx,5]}")"
kd_non2xx=$(( M[keyed,gatehouse,non2xx] + M[keyed,nginx,non2xx] + M[keyed,haproxy,non2xx] ))
key_cost() {  # keyed minus keyless median proxy CPU per request
  awk -v a="${M[keyed,$1,11]}" -v b="${M[keepalive,$1,11]}" 'BEGIN { if (a == "nan" || b == "nan") print "n/a"; else printf "%+.1f µs", a - b }'
}
cmd="ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS HS_CONNS=$HS_CONNS KEYS=$KEYS bench/run.sh"
[[ "${QUICK:-0}" == 1 ]] && cmd="QUICK=1 bench/run.sh"
[[ "$GATEHOUSE_BIN" == "$ROOT/build/release/gatehouse" ]] || cmd="GATEHOUSE_BIN=$GATEHOUSE_BIN $cmd"

REPORT="$RAW/table.md"
{
  echo "## Gatehouse vs nginx vs HAProxy — $(date -u +%Y-%m-%d\ %H:%M) UTC"
  echo
  echo "Medians of $ROUNDS interleaved round(s), $DURATION per measurement (min–max over the rounds in" \
       "brackets). One worker each, TLS 1.3, the same ECDSA P-256 certificate, the same origin (one nginx" \
       "worker, \`return 200 \"ok\\n\"\`). Proxy and origin pinned to CPU 0, load generator to CPU 1." \
       "Keyed: $KEYS keys created through Gatehouse's control API (a Tyk Classic auth-token API on \`/keyed/\`);" \
       "nginx checks the same tokens with a \`map\`, HAProxy with an ACL pattern file; wrk sends the next token" \
       "in \`Authorization\` on every request."
  echo
  echo "| scenario | gatehouse | nginx | haproxy | gatehouse/nginx | gatehouse/haproxy |"
  echo "|---|---|---|---|---|---|"
  row "keep-alive: req/s (wrk -t1 -c$CONNS) ↑" keepalive 4 0
  row "keep-alive: p99 latency, ms ↓" keepalive 5 2
  row "keep-alive: proxy CPU per request, µs ↓" keepalive 11 1
  row "keyed keep-alive: req/s (wrk -t1 -c$CONNS, $KEYS tokens in rotation) ↑" keyed 4 0
  row "keyed keep-alive: p99 latency, ms ↓" keyed 5 2
  row "keyed keep-alive: proxy CPU per request, µs ↓" keyed 11 1
  row "full handshakes: conn/s (ab -c$HS_CONNS, one request per connection) ↑" handshake 4 0
  row "full handshakes: p99 connect+handshake+request, ms ↓" handshake 5 0
  row "full handshakes: proxy CPU per connection, µs ↓" handshake 11 0
  echo
  hs_lg_bound="$(yesno "${M[handshake,gatehouse,8]} >= 90 && ${M[handshake,nginx,8]} >= 90 && ${M[handshake,haproxy,8]} >= 90 && ${M[handshake,gatehouse,7]} < 90 && ${M[handshake,nginx,7]} < 90 && ${M[handshake,haproxy,7]} < 90")"
  if [[ "$hs_lg_bound" == yes ]]; then
    echo "In the full-handshake scenario CPU 1 (the load generator's core) was saturated and CPU 0 was not:" \
         "an OpenSSL 3.0 client handshake costs more CPU than the proxy's side of it, so the conn/s row is" \
         "a floor set by the client; compare the proxies by their CPU per connection."
    echo
  fi
  echo "Issue bar (keep-alive vs nginx): req/s ≥ 1.0×: **$ka_rps_ok**; p99 ≤ 1.2×: **$ka_p99_ok**."
  echo
  echo "Issue 4 bar (keyed keep-alive vs nginx): req/s ≥ 1.2×: **$kd_rps_ok**; p99 ≤ 1.0×: **$kd_p99_ok**."
  echo
  echo "Key creation through the control API (\`POST /tyk/keys/create\`, sequential over one TLS keep-alive" \
       "connection, Python http.client on CPU 1): $KEY_CREATE."
  echo
  echo "Session cache, cold (first pass just after a gatehouse restart) vs warm (second pass): $COLD_WARM."
  echo
  echo "Cost of the key check (keyed minus keyless proxy CPU per request, medians):" \
       "gatehouse $(key_cost gatehouse), nginx $(key_cost nginx), haproxy $(key_cost haproxy)."
  echo
  echo "Errors over all rounds (keep-alive / keyed: socket errors + non-2xx; handshakes: ab failed + non-2xx):" \
       "gatehouse ${M[keepalive,gatehouse,err]} / ${M[keyed,gatehouse,err]} / ${M[handshake,gatehouse,err]}," \
       "nginx ${M[keepalive,nginx,err]} / ${M[keyed,nginx,err]} / ${M[handshake,nginx,err]}," \
       "haproxy ${M[keepalive,haproxy,err]} / ${M[keyed,haproxy,err]} / ${M[handshake,haproxy,err]}." \
       "Non-2xx in the keyed runs (every token is valid, so this must be 0):" \
       "gatehouse ${M[keyed,gatehouse,non2xx]}, nginx ${M[keyed,nginx,non2xx]}, haproxy ${M[keyed,haproxy,non2xx]}."
  echo
  echo "CPU during the measurements (median %, 100 = one full core):"
  echo
  echo "| scenario | proxy | CPU 0 busy | proxy process | origin | CPU 1 busy | load generator | saturated |"
  echo "|---|---|---|---|---|---|---|---|"
  for p in "${PROXIES[@]}"; do cpurow keepalive "$p" keep-alive; done
  for p in "${PROXIES[@]}"; do cpurow keyed "$p" "keyed keep-alive"; done
  for p in "${PROXIES[@]}"; do cpurow handshake "$p" "full handshakes"; done
  echo
  echo "Pre-flight checks:"
  echo
  sed 's/^/- /' "$PRE"
  echo
  echo "Gatehouse $gh_commit (binary sha256 $GH_SHA…), nginx $nginx_v, HAProxy $haproxy_v, wrk $wrk_v," \
       "ab $ab_v, OpenSSL $openssl_v; $NCPU × $cpu_model; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)." \
       "Command: \`$cmd\`. Raw outputs: \`bench/results/raw/$STAMP/\`."
} > "$REPORT"

cp "$REPORT" "$BENCH/results/latest.md"
echo
cat "$REPORT"
(( kd_non2xx == 0 )) || die "check failed: $kd_non2xx non-2xx responses in the keyed runs, where every token is valid (see $RAW/keyed-*.txt)"
