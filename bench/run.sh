#!/usr/bin/env bash
# Gatehouse vs nginx vs HAProxy, side by side, in one run: same TLS 1.3 ECDSA P-256 listener set-up,
# same local origin, one worker each. See bench/README.md for the method and the knobs.
#
#   bench/run.sh                 # full run: ROUNDS=5 DURATION=10s CONNS=50
#   QUICK=1 bench/run.sh         # smoke run: 1 round of 3 s per measurement
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
HS_CLIENTS="${HS_CLIENTS:-16}"       # parallel `openssl s_time -new` clients (handshake scenario)
WARMUP="${WARMUP:-1s}"               # unmeasured wrk run before each keep-alive measurement
PAUSE="${PAUSE:-2}"                  # seconds of rest between two measurements
GATEHOUSE_BIN="${GATEHOUSE_BIN:-build/release/gatehouse}"
if [[ "${QUICK:-0}" == 1 ]]; then
  ROUNDS=1
  DURATION=3s
fi
[[ "$GATEHOUSE_BIN" = /* ]] || GATEHOUSE_BIN="$ROOT/$GATEHOUSE_BIN"

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

# DURATION as whole seconds (wrk takes "10s", s_time takes an integer).
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
[[ "$HS_CLIENTS" =~ ^[1-9][0-9]*$ ]] || die "HS_CLIENTS must be a positive integer"
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
need taskset util-linux
need ss iproute2
if (( ${#missing[@]} )); then
  log "installing missing packages: ${missing[*]}"
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${missing[*]}"
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
NCPU="$(nproc --all)"
(( NCPU >= 2 )) || die "needs at least 2 CPUs (gateway+origin on CPU 0, load generator on CPU 1)"

# ---------------------------------------------------------------------------------------------
# Temp dir, process bookkeeping, clean-up.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")"
PIDS=()      # servers, stopped at exit
CLIENTS=()   # load generators currently running
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local p
  for p in "${CLIENTS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
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
USED_PORTS=" "
free_port() {
  local p
  for _ in $(seq 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    [[ "$USED_PORTS" == *" $p "* ]] && continue
    if [[ -z "$(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null)" ]]; then
      USED_PORTS+="$p "
      echo "$p"
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
  taskset -c 1 timeout "$limit" "$@" >"$out" 2>&1 &
  CLIENTS=("$!")
  wait "$!" || rc=$?
  CLIENTS=()
  return "$rc"
}
wait_clients() {  # wait for background generators started by the caller
  CLIENTS=("$@")
  local p
  for p in "$@"; do wait "$p" || true; done
  CLIENTS=()
}

# `openssl s_time -www PAGE` sends "GET PAGE HTTP/1.0\r\n\r\n": an HTTP/1.0 request without a Host
# header, which Gatehouse answers with 400. PAGE is sent verbatim, so it carries a complete
# HTTP/1.1 request line and headers, and the trailing " HTTP/1.0" becomes the value of a harmless
# last header. On the wire: GET / HTTP/1.1, Host, Connection: close, X-Bench: HTTP/1.0.
HS_PAGE=$'/ HTTP/1.1\r\nHost: bench.local\r\nConnection: close\r\nX-Bench:'
HS_REQ="GET ${HS_PAGE} HTTP/1.0"$'\r\n\r\n'

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

# A private copy of the binary: a rebuild during the run cannot swap it under us.
cp "$GATEHOUSE_BIN" "$WORK/gatehouse"
GH_SHA="$(sha256sum "$WORK/gatehouse" | cut -c1-12)"

ORIGIN_PORT="$(free_port)"
declare -A PORT
PORT[gatehouse]="$(free_port)"
PORT[nginx]="$(free_port)"
PORT[haproxy]="$(free_port)"
PROBE_PORT="$(free_port)"
PROXIES=(gatehouse nginx haproxy)

mk_nginx_dir() { mkdir -p "$1"/{client_body,proxy,fastcgi,uwsgi,scgi}; }

# ---------------------------------------------------------------------------------------------
# Origin (shared by all three).
mk_nginx_dir "$WORK/origin"
render "$BENCH/nginx-origin.conf.tmpl" "$WORK/origin/nginx.conf" DIR="$WORK/origin" ORIGIN_PORT="$ORIGIN_PORT"
start_on_cpu0 origin "$WORK/origin/stderr.log" nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log"
wait_port "$ORIGIN_PORT" origin "$WORK/origin/error.log"

# Gatehouse.
mkdir -p "$WORK/gatehouse.d/apps"
render "$BENCH/gatehouse.conf.tmpl" "$WORK/gatehouse.d/tyk.conf" DIR="$WORK/gatehouse.d" PORT="${PORT[gatehouse]}" CERT="$CERT" KEY="$KEY"
render "$BENCH/gatehouse-api.json.tmpl" "$WORK/gatehouse.d/apps/bench.json" ORIGIN_PORT="$ORIGIN_PORT"
(cd "$WORK/gatehouse.d" && "$WORK/gatehouse" validate --conf "$WORK/gatehouse.d/tyk.conf" >/dev/null 2>&1) \
  || log "warning: 'gatehouse validate' did not pass (starting anyway)"
pushd "$WORK/gatehouse.d" >/dev/null
start_on_cpu0 gatehouse "$WORK/gatehouse.d/stderr.log" "$WORK/gatehouse" --conf "$WORK/gatehouse.d/tyk.conf"
popd >/dev/null
wait_port "${PORT[gatehouse]}" gatehouse "$WORK/gatehouse.d/stderr.log"

# nginx proxy.
mk_nginx_dir "$WORK/nginx"
render "$BENCH/nginx-proxy.conf.tmpl" "$WORK/nginx/nginx.conf" DIR="$WORK/nginx" PORT="${PORT[nginx]}" \
  ORIGIN_PORT="$ORIGIN_PORT" CERT="$CERT" KEY="$KEY"
start_on_cpu0 nginx "$WORK/nginx/stderr.log" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
wait_port "${PORT[nginx]}" nginx "$WORK/nginx/error.log"

# HAProxy.
mkdir -p "$WORK/haproxy"
render "$BENCH/haproxy.cfg.tmpl" "$WORK/haproxy/haproxy.cfg" PORT="${PORT[haproxy]}" ORIGIN_PORT="$ORIGIN_PORT" COMBINED="$COMBINED"
haproxy -c -q -f "$WORK/haproxy/haproxy.cfg" || die "haproxy rejected its config"
start_on_cpu0 haproxy "$WORK/haproxy/stderr.log" haproxy -db -f "$WORK/haproxy/haproxy.cfg"
wait_port "${PORT[haproxy]}" haproxy "$WORK/haproxy/stderr.log"

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
declare -A SNAP
snap_begin() {
  SNAP[t0]="$(date +%s.%N)"
  read -r SNAP[b0] SNAP[a0] < <(cpu_busy 0)
  read -r SNAP[b1] SNAP[a1] < <(cpu_busy 1)
  SNAP[gw]="$(tree_jiffies "$1")"
  SNAP[or]="$(tree_jiffies "$PID_origin")"
}
snap_end() {  # snap_end PID -> "cpu0% cpu1% gateway% origin%"
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
               printf "%.0f %.0f %.0f %.0f\n", (da0 ? 100*db0/da0 : 0), (da1 ? 100*db1/da1 : 0),
                      100*dgw/hz/el, 100*dor/hz/el }'
}

# ---------------------------------------------------------------------------------------------
# Pre-flight checks: every proxy answers 200 "ok" through the origin; same TLS parameters;
# each issues session tickets (so a client that resumes would not measure full handshakes);
# the handshake load generator really makes a full handshake per connection.
PRE="$RAW/preflight.txt"
: > "$PRE"
for name in "${PROXIES[@]}"; do
  port="${PORT[$name]}"
  body="$(wrk -t1 -c1 -d1s "https://127.0.0.1:$port/" 2>&1 | grep -E 'Non-2xx|Socket errors' || true)"
  [[ -z "$body" ]] || die "$name: wrk smoke test failed: $body"
  resp="$(printf '%s' "$HS_REQ" | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$port" 2>/dev/null | tr -d '\r' || true)"
  [[ "$(head -1 <<<"$resp")" == "HTTP/1."?" 200 "* && "$(tail -1 <<<"$resp")" == ok ]] \
    || die "$name: the handshake scenario's request did not get 200 ok: $(head -1 <<<"$resp")"
  info="$(printf '%s' "$HS_REQ" | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
          -servername bench.local -sess_out "$WORK/$name.sess" -ign_eof 2>&1 || true)"
  proto="$(grep -oE '^(New|Reused), [^,]+, Cipher is [A-Z0-9_]+' <<<"$info" | head -1)"
  tempkey="$(grep -oE 'Server Temp Key: [^,]+' <<<"$info" | head -1 | sed 's/Server Temp Key: //')"
  sigtype="$(grep -oE 'Peer signature type: .*' <<<"$info" | head -1 | sed 's/Peer signature type: //')"
  again="$(printf '%s' "$HS_REQ" | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
          -servername bench.local -sess_in "$WORK/$name.sess" -ign_eof 2>&1 || true)"
  if grep -q '^Reused, TLSv1.3' <<<"$again"; then tickets="issues tickets (resumption works)"; else tickets="no resumption"; fi
  pid_var="PID_$name"
  threads="$(ls "/proc/${!pid_var}/task" | wc -l)"
  echo "$name: ${proto#New, } | key exchange $tempkey | signature $sigtype | $tickets | $threads thread(s) in the main process" >> "$PRE"
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
probe_clients=()
for _ in 1 2 3 4; do
  taskset -c 1 timeout 20 openssl s_time -connect "127.0.0.1:$PROBE_PORT" -new -www "$HS_PAGE" -time 1 >/dev/null 2>&1 &
  probe_clients+=("$!"); CLIENTS+=("$!")
done
wait_clients "${probe_clients[@]}"
read -r st_full st_resumed < <(count_reuse)
: > "$WORK/probe/probe.log"
client 20 /dev/null wrk -t1 -c4 -d1s -H 'Connection: close' "https://127.0.0.1:$PROBE_PORT/" || true
read -r wrk_full wrk_resumed < <(count_reuse)
kill -TERM "$PROBE_PID" 2>/dev/null || true
wait "$PROBE_PID" 2>/dev/null || true
{
  echo "handshake check (nginx probe, \$ssl_session_reused): openssl s_time -new: $st_full full / $st_resumed resumed;"\
       "wrk -H 'Connection: close': $wrk_full full / $wrk_resumed resumed"
} >> "$PRE"
(( st_full > 0 && st_resumed == 0 )) || die "openssl s_time -new resumed sessions ($st_resumed); handshake scenario would be wrong"
log "pre-flight:"; sed 's/^/    /' "$PRE" >&2

# ---------------------------------------------------------------------------------------------
# Measurements.
RESULTS="$RAW/results.tsv"   # scenario proxy round value p99_ms errors cpu0 cpu1 gw origin
printf 'scenario\tproxy\tround\tvalue\tp99_ms\terrors\tcpu0\tcpu1\tgateway_cpu\torigin_cpu\n' > "$RESULTS"

pid_of() { local v="PID_$1"; echo "${!v}"; }

to_ms() {  # wrk latency "812.00us" / "1.23ms" / "1.01s" -> milliseconds
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else printf "nan" }'
}

run_keepalive() {
  local name="$1" round="$2" port="${PORT[$1]}" pid out cpu rps p99 errs
  pid="$(pid_of "$name")"
  out="$RAW/keepalive-$name-r$round.txt"
  client $(( WARMUP_S + 30 )) /dev/null wrk -t1 -c"$CONNS" -d"$WARMUP" "https://127.0.0.1:$port/" || true
  sleep 0.5
  snap_begin "$pid"
  client $(( DUR_S + 60 )) "$out" wrk -t1 -c"$CONNS" -d"$DURATION" --latency "https://127.0.0.1:$port/" \
    || log "warning: wrk exited non-zero for $name (see $out)"
  cpu="$(snap_end "$pid")"
  rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
  p99="$(to_ms "$(awk '$1=="99%" {print $2}' "$out")")"
  errs="$(awk '/Socket errors:/ { gsub(/,/, ""); s += $4 + $6 + $8 + $10 } /Non-2xx/ { s += $NF } END { print s + 0 }' "$out")"
  [[ -n "$rps" ]] || { rps=0; log "warning: no result from wrk for $name (see $out)"; }
  printf 'keepalive\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rps" "$p99" "$errs" "${cpu// /$'\t'}" >> "$RESULTS"
  log "keep-alive  r$round $(printf '%-9s' "$name") ${rps} req/s  p99 ${p99} ms  errors ${errs}  cpu0/cpu1/gw/origin % ${cpu}"
}

run_handshake() {
  local name="$1" round="$2" port="${PORT[$1]}" pid base i cpu t0 t1 total errs rate mean
  pid="$(pid_of "$name")"
  base="$RAW/handshake-$name-r$round"
  local hs_pids=()
  snap_begin "$pid"
  t0="$(date +%s.%N)"
  for (( i = 1; i <= HS_CLIENTS; i++ )); do
    taskset -c 1 timeout $(( DUR_S + 60 )) openssl s_time -connect "127.0.0.1:$port" -new -www "$HS_PAGE" -time "$DUR_S" \
      > "$base.$i.txt" 2>&1 &
    hs_pids+=("$!"); CLIENTS+=("$!")
  done
  wait_clients "${hs_pids[@]}"
  t1="$(date +%s.%N)"
  cpu="$(snap_end "$pid")"
  total="$(cat "$base".*.txt | awk '/connections in [0-9.]+s;/ { s += $1 } END { print s + 0 }')"
  # s_time stops at the first failed connection and says why; count the clients that did.
  errs="$( (grep -lE 'ERROR|Unable|error' "$base".*.txt 2>/dev/null || true) | wc -l)"
  read -r rate mean < <(awk -v n="$total" -v t0="$t0" -v t1="$t1" -v c="$HS_CLIENTS" \
    'BEGIN { el = t1 - t0; r = n / el; printf "%.1f %.3f\n", r, (r > 0 ? 1000 * c / r : 0) }')
  printf 'handshake\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rate" "$mean" "$errs" "${cpu// /$'\t'}" >> "$RESULTS"
  log "handshakes  r$round $(printf '%-9s' "$name") ${rate} conn/s  mean ${mean} ms/conn  failed clients ${errs}  cpu0/cpu1/gw/origin % ${cpu}"
}

log "ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS HS_CLIENTS=$HS_CLIENTS gatehouse=$GATEHOUSE_BIN ($GH_SHA)"
log "ports: origin $ORIGIN_PORT, gatehouse ${PORT[gatehouse]}, nginx ${PORT[nginx]}, haproxy ${PORT[haproxy]}"
for (( r = 1; r <= ROUNDS; r++ )); do
  order=()
  for (( i = 0; i < 3; i++ )); do order+=("${PROXIES[$(( (i + r - 1) % 3 ))]}"); done
  log "round $r/$ROUNDS: ${order[*]}"
  for name in "${order[@]}"; do
    run_keepalive "$name" "$r"
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
median() {  # median SCENARIO PROXY COLUMN  (columns: 4 value, 5 p99/mean, 6 errors, 7.. cpu)
  awk -F'\t' -v s="$1" -v p="$2" -v c="$3" 'NR > 1 && $1 == s && $2 == p { print $c }' "$RESULTS" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
           if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
range() {
  awk -F'\t' -v s="$1" -v p="$2" -v c="$3" 'NR > 1 && $1 == s && $2 == p { print $c }' "$RESULTS" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR > 1) printf " (%s–%s)", v[1], v[NR] }'
}
sumcol() {
  awk -F'\t' -v s="$1" -v p="$2" -v c="$3" 'NR > 1 && $1 == s && $2 == p { t += $c } END { print t + 0 }' "$RESULTS"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "nan" || b == "nan") print "n/a"; else printf "%.2f×", a / b }'; }
fmt() { awk -v v="$1" -v d="$2" 'BEGIN { if (v == "nan") print "n/a"; else printf "%.*f", d, v }'; }

declare -A M
for s in keepalive handshake; do
  for p in "${PROXIES[@]}"; do
    for c in 4 5 7 8 9 10; do M[$s,$p,$c]="$(median "$s" "$p" "$c")"; done
    M[$s,$p,err]="$(sumcol "$s" "$p" 6)"
  done
done

cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
nginx_v="$(nginx -v 2>&1 | sed 's/.*nginx\///')"
haproxy_v="$(haproxy -v 2>/dev/null | awk 'NR==1 { print $3 }')"
wrk_v="$( (wrk -v 2>&1 || true) | awk 'NR==1 { print $2 }')"
openssl_v="$(openssl version | awk '{ print $2 }')"
gh_commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$ROOT" status --porcelain -- src 2>/dev/null)" ]]; then gh_commit+=" + local changes"; fi

row() {  # row LABEL SCENARIO COLUMN DECIMALS
  local s="$2" c="$3" d="$4" g n h
  g="${M[$s,gatehouse,$c]}"; n="${M[$s,nginx,$c]}"; h="${M[$s,haproxy,$c]}"
  printf '| %s | %s%s | %s%s | %s%s | %s | %s |\n' "$1" \
    "$(fmt "$g" "$d")" "$(range "$s" gatehouse "$c")" "$(fmt "$n" "$d")" "$(range "$s" nginx "$c")" \
    "$(fmt "$h" "$d")" "$(range "$s" haproxy "$c")" "$(ratio "$g" "$n")" "$(ratio "$g" "$h")"
}
cpurow() {
  local s="$1" p="$2"
  printf '| %s | %s | %s | %s | %s | %s |\n' "$3" "$p" "${M[$s,$p,7]}" "${M[$s,$p,9]}" "${M[$s,$p,10]}" "${M[$s,$p,8]}"
}

ka_rps_ok="$(awk -v g="${M[keepalive,gatehouse,4]}" -v n="${M[keepalive,nginx,4]}" 'BEGIN { print (g >= n ? "yes" : "no") }')"
ka_p99_ok="$(awk -v g="${M[keepalive,gatehouse,5]}" -v n="${M[keepalive,nginx,5]}" 'BEGIN { print (g <= 1.2 * n ? "yes" : "no") }')"

REPORT="$RAW/table.md"
{
  echo "## Gatehouse vs nginx vs HAProxy ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "Medians of $ROUNDS interleaved round(s) (min–max in brackets), ${DURATION} per measurement." \
       "One worker each, TLS 1.3, ECDSA P-256 certificate, same origin (nginx, \`return 200 \"ok\\n\"\`)." \
       "Gateway and origin on CPU 0, load generator on CPU 1."
  echo
  echo "| scenario | gatehouse | nginx | haproxy | gatehouse/nginx | gatehouse/haproxy |"
  echo "|---|---|---|---|---|---|"
  row "keep-alive req/s (wrk -t1 -c$CONNS)" keepalive 4 0
  row "keep-alive p99 ms" keepalive 5 2
  row "full handshakes/s (openssl s_time -new, $HS_CLIENTS clients)" handshake 4 0
  row "full handshake + request, mean ms per connection" handshake 5 2
  echo
  echo "Errors: keep-alive (socket errors + non-2xx, all rounds) gatehouse ${M[keepalive,gatehouse,err]}," \
       "nginx ${M[keepalive,nginx,err]}, haproxy ${M[keepalive,haproxy,err]}; handshake clients that stopped on" \
       "an error: gatehouse ${M[handshake,gatehouse,err]}, nginx ${M[handshake,nginx,err]}, haproxy ${M[handshake,haproxy,err]}."
  echo
  echo "Issue bar (keep-alive, vs nginx): req/s ≥ 1.0×: **$ka_rps_ok**; p99 ≤ 1.2×: **$ka_p99_ok**."
  echo
  echo "CPU during the measurement (median %, 100 = one core; CPU 0 = gateway + origin, CPU 1 = load generator):"
  echo
  echo "| scenario | proxy | CPU 0 busy | proxy process | origin | CPU 1 busy |"
  echo "|---|---|---|---|---|---|"
  for p in "${PROXIES[@]}"; do cpurow keepalive "$p" keep-alive; done
  for p in "${PROXIES[@]}"; do cpurow handshake "$p" handshakes; done
  echo
  echo "Pre-flight:"
  echo
  sed 's/^/- /' "$PRE"
  echo
  echo "Versions: gatehouse $gh_commit (binary sha256 $GH_SHA), nginx $nginx_v, HAProxy $haproxy_v, wrk $wrk_v," \
       "OpenSSL $openssl_v; $NCPU × $cpu_model; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Command: \`$( [[ "${QUICK:-0}" == 1 ]] && echo "QUICK=1 " )ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS HS_CLIENTS=$HS_CLIENTS bench/run.sh\`;" \
       "raw outputs: \`bench/results/raw/$STAMP/\`."
} > "$REPORT"

cp "$REPORT" "$BENCH/results/latest.md"
echo
cat "$REPORT"
