#!/usr/bin/env bash
# What one keyed keep-alive request costs Gatehouse, nginx and HAProxy, in numbers that do not
# move with the machine's load: user-space instructions (callgrind) and system calls (strace -c).
# Requests per second on a busy 2-core machine wander by ±25 % between runs; these do not.
#
#   bench/peers.sh                        # all three proxies
#   PROXIES="gatehouse nginx" bench/peers.sh
#   GATEHOUSE_BIN=/tmp/old/gatehouse bench/peers.sh
#
# Set-up: the keyed scenario of bench/run.sh with one key: TLS 1.3 towards the client (the same
# ECDSA P-256 certificate for all), a local nginx origin answering `return 200 "ok\n"`, and the
# token checked by each proxy in its own way (Gatehouse: a Tyk Classic auth-token API on the
# embedded store, key hashing on; nginx: a `map` of the token; HAProxy: an ACL pattern file). One
# worker each, the proxy and the origin on CPU 0, ab on CPU 1.
#
# For each proxy, two runs of `ab -k -c10` and one of wrk:
# - under `valgrind --tool=callgrind` (nginx with `master_process off`, so that its one process
#   serves): after WARM requests the counters are zeroed, N requests are made and counted; the
#   total divided by N is the user-space instructions per request (kernel time not included);
# - natively, with `strace -c -f` attached for SYSCALL_N requests: system calls per request by
#   kind, and how many failed (EAGAIN reads, mostly);
# - natively, under `wrk -t1 -c50` for SCHED_S seconds: how the proxy and the origin share CPU 0,
#   per request: the origin's voluntary context switches (how often it ran out of work and slept:
#   1.00 = woken for every request), the proxy's involuntary ones (how often it was pushed aside),
#   and each one's CPU time, user + system (/proc/PID/status and /proc/PID/stat). These move with
#   the machine's load more than the first two, less than requests per second.
# Any failed or non-2xx request aborts the run. Needs valgrind, strace, apache2-utils (ab),
# nginx-light, haproxy, openssl, curl, iproute2, wrk (installed when missing). About four minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

N="${N:-3000}"
WARM="${WARM:-200}"
SYSCALL_N="${SYSCALL_N:-20000}"
SCHED_S="${SCHED_S:-8}"
PROXIES="${PROXIES:-gatehouse nginx haproxy}"
resolve_gatehouse_bin
[[ "$N" =~ ^[1-9][0-9]*$ && "$WARM" =~ ^[1-9][0-9]*$ && "$SYSCALL_N" =~ ^[1-9][0-9]*$ &&
   "$SCHED_S" =~ ^[1-9][0-9]*$ ]] || die "N, WARM, SYSCALL_N and SCHED_S must be positive integers"
for p in $PROXIES; do [[ "$p" =~ ^(gatehouse|nginx|haproxy)$ ]] || die "PROXIES: gatehouse, nginx and/or haproxy"; done

for pair in valgrind:valgrind callgrind_control:valgrind strace:strace ab:apache2-utils \
            nginx:nginx-light haproxy:haproxy openssl:openssl curl:curl ss:iproute2 wrk:wrk; do
  need_pkg "${pair%%:*}" "${pair#*:}"
done
[[ -x /usr/bin/python3 ]] || NEEDED_PKGS+=(python3)
install_needed

begin_run peers
SECRET="$(openssl rand -hex 24)"
CERT="$WORK/cert.pem" KEY="$WORK/key.pem" COMBINED="$WORK/combined.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
  -keyout "$KEY" -out "$CERT" -days 2 -subj "/CN=bench.local" \
  -addext "subjectAltName=DNS:bench.local,IP:127.0.0.1" >/dev/null 2>&1
cat "$CERT" "$KEY" > "$COMBINED"
chmod 600 "$KEY" "$COMBINED"

free_port; ORIGIN_PORT="$REPLY"
mk_nginx_dir "$WORK/origin"
render "$BENCH/nginx-origin.conf.tmpl" "$WORK/origin/nginx.conf" DIR="$WORK/origin" ORIGIN_PORT="$ORIGIN_PORT"
start_on_cpu0 origin "$WORK/origin/stderr.log" nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" \
  -e "$WORK/origin/error.log"
wait_port "$ORIGIN_PORT" origin "$WORK/origin/error.log"

# The key: made once through Gatehouse's control API (a plain start), kept in its embedded store
# for the measured starts; nginx and HAProxy get the same token in their lists.
GDIR="$WORK/gatehouse.d"
mkdir -p "$GDIR/apps" "$GDIR/policies"
free_port; GPORT="$REPLY"
render "$BENCH/gatehouse.conf.tmpl" "$GDIR/tyk.conf" DIR="$GDIR" PORT="$GPORT" CERT="$CERT" KEY="$KEY" \
  SECRET="$SECRET"
chmod 600 "$GDIR/tyk.conf"
render "$BENCH/gatehouse-api-keyed.json.tmpl" "$GDIR/apps/bench-keyed.json" ORIGIN_PORT="$ORIGIN_PORT"
cp "$GATEHOUSE_BIN" "$WORK/gatehouse"  # a rebuild during the run cannot swap it
(cd "$GDIR" && exec taskset -c 0 "$WORK/gatehouse" --conf "$GDIR/tyk.conf") >"$GDIR/setup.log" 2>&1 &
gpid=$!
PIDS+=("$gpid")
wait_port "$GPORT" gatehouse "$GDIR/setup.log"
TOKEN="$(curl -sk -X POST "https://127.0.0.1:$GPORT/tyk/keys/create" -H "x-tyk-authorization: $SECRET" \
           -d '{"org_id":"default","access_rights":{"bench-keyed":{"api_id":"bench-keyed"}}}' |
         /usr/bin/python3 -c 'import sys, json; print(json.load(sys.stdin)["key"])')" ||
  die "could not create a key (see $GDIR/setup.log)"
kill -TERM "$gpid"; wait "$gpid" 2>/dev/null || true

mkdir -p "$WORK/nginx" "$WORK/haproxy"
mk_nginx_dir "$WORK/nginx"
echo "\"$TOKEN\" 1;" > "$WORK/nginx/tokens.map"
cp "$WORK/nginx/tokens.map" "$WORK/nginx/tokens-policy.map"
echo "$TOKEN" > "$WORK/haproxy/tokens.txt"
cp "$WORK/haproxy/tokens.txt" "$WORK/haproxy/tokens-policy.txt"
free_port; NPORT="$REPLY"
render "$BENCH/nginx-proxy.conf.tmpl" "$WORK/nginx/nginx.conf" DIR="$WORK/nginx" PORT="$NPORT" \
  ORIGIN_PORT="$ORIGIN_PORT" CERT="$CERT" KEY="$KEY"
free_port; HPORT="$REPLY"
render "$BENCH/haproxy.cfg.tmpl" "$WORK/haproxy/haproxy.cfg" PORT="$HPORT" ORIGIN_PORT="$ORIGIN_PORT" \
  COMBINED="$COMBINED" TOKENS="$WORK/haproxy/tokens.txt" POLICY_TOKENS="$WORK/haproxy/tokens-policy.txt"
haproxy -c -q -f "$WORK/haproxy/haproxy.cfg" || die "haproxy rejected its config"

# start_proxy NAME WRAPPER... : the proxy in the background on CPU 0 (under WRAPPER, if any);
# sets PROXY_PID and PROXY_PORT.
start_proxy() {
  local name="$1"; shift
  case "$name" in
    gatehouse) PROXY_PORT="$GPORT"
      (cd "$GDIR" && exec taskset -c 0 "$@" "$WORK/gatehouse" --conf "$GDIR/tyk.conf") >"$WORK/$name.log" 2>&1 & ;;
    nginx) PROXY_PORT="$NPORT"
      taskset -c 0 "$@" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" \
        -g 'master_process off;' >"$WORK/$name.log" 2>&1 & ;;
    haproxy) PROXY_PORT="$HPORT"
      taskset -c 0 "$@" haproxy -db -f "$WORK/haproxy/haproxy.cfg" >"$WORK/$name.log" 2>&1 & ;;
  esac
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  local url="https://127.0.0.1:$PROXY_PORT/keyed/"
  for _ in $(seq 600); do  # valgrind starts slowly
    [[ "$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: $TOKEN" "$url")" == 200 ]] && return 0
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.2
  done
  die "$name: GET /keyed/ with the token never answered 200 (see $WORK/$name.log)"
}
stop_proxy() { kill -TERM "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; }
load() { ab_keyed "$1" "$2" "https://127.0.0.1:$PROXY_PORT/keyed/" "$TOKEN"; }  # load N OUTFILE
# sched_snap PID -> "voluntary involuntary cpu_jiffies" of PID and its direct children (the
# origin: its master, idle, and its worker)
sched_snap() { echo "$(switches "$1") $(tree_jiffies "$1")"; }

OUT="$RAW/summary.txt"
: > "$OUT"
declare -A INSTR SYS SCHED
for name in $PROXIES; do
  # User-space instructions.
  cg="$RAW/callgrind-$name.out"
  start_proxy "$name" valgrind --tool=callgrind --callgrind-out-file="$cg"
  load "$WARM" "$RAW/ab-warm-$name.txt"
  callgrind_control -z "$PROXY_PID" >/dev/null 2>&1
  load "$N" "$RAW/ab-callgrind-$name.txt"
  callgrind_control -d "$PROXY_PID" >/dev/null 2>&1
  stop_proxy
  total="$(callgrind_total "$cg.1")"
  INSTR[$name]=$(( total / N ))
  # System calls.
  start_proxy "$name"
  load "$WARM" "$RAW/ab-warm-$name.txt"
  st="$RAW/strace-$name.txt"
  strace -c -f -p "$PROXY_PID" -o "$st" 2>/dev/null &
  spid=$!
  sleep 0.5
  load "$SYSCALL_N" "$RAW/ab-strace-$name.txt"
  kill -INT "$spid"; wait "$spid" 2>/dev/null || true
  # Context switches and CPU under wrk (nginx's master is out of the way with master_process off).
  wout="$RAW/wrk-$name.txt"
  client 30 /dev/null wrk -t1 -c50 -d2s -H "Authorization: $TOKEN" "https://127.0.0.1:$PROXY_PORT/keyed/" || true
  read -r pv0 pn0 pj0 < <(sched_snap "$PROXY_PID"); read -r ov0 on0 oj0 < <(sched_snap "$PID_origin")
  client $(( SCHED_S + 30 )) "$wout" wrk -t1 -c50 -d"${SCHED_S}s" -H "Authorization: $TOKEN" \
    "https://127.0.0.1:$PROXY_PORT/keyed/" || die "$name: wrk failed (see $wout)"
  read -r pv1 pn1 pj1 < <(sched_snap "$PROXY_PID"); read -r ov1 on1 oj1 < <(sched_snap "$PID_origin")
  ! grep -qE 'Non-2xx|Socket errors' "$wout" || die "$name: wrk saw errors or non-2xx answers (see $wout)"
  wn="$(awk '/ requests in / { print $1; exit }' "$wout")"
  SCHED[$name]="$(awk -v n="$wn" -v hz="$HZ" -v ov=$(( ov1 - ov0 )) -v pn=$(( pn1 - pn0 )) \
                      -v oj=$(( oj1 - oj0 )) -v pj=$(( pj1 - pj0 )) -v rps="$(awk '/^Requests\/sec/ { print $2 }' "$wout")" 'BEGIN {
    printf "origin slept %.2f, proxy pushed aside %.2f per request; CPU per request: proxy %.1f µs, origin %.1f µs (wrk -t1 -c50, %.0f req/s)",
           ov / n, pn / n, pj * 1e6 / hz / n, oj * 1e6 / hz / n, rps }')"
  stop_proxy
  SYS[$name]="$(awk -v n="$SYSCALL_N" '
    $NF == "total" { printf "%.2f", $4 / n; exit }' "$st")"
  detail="$(awk -v n="$SYSCALL_N" '
    NR > 2 && $NF != "total" && $4 ~ /^[0-9]+$/ {
      err = ($5 ~ /^[0-9]+$/) ? $5 : 0
      if ($4 / n >= 0.01) printf "%s%s %.2f%s", (k++ ? ", " : ""), $NF, $4 / n, (err / n >= 0.01 ? sprintf(" (%.2f failed)", err / n) : "")
    }' "$st")"
  line="$name: ${INSTR[$name]} user-space instructions per request ($N requests, ab -k -c10);"
  line+=" ${SYS[$name]} system calls per request ($SYSCALL_N requests: $detail); ${SCHED[$name]}"
  echo "$line" | tee -a "$OUT"
done
if [[ -n "${INSTR[gatehouse]:-}" ]]; then
  for name in nginx haproxy; do
    [[ -n "${INSTR[$name]:-}" ]] || continue
    echo "gatehouse / $name: instructions $(ratio "${INSTR[gatehouse]}" "${INSTR[$name]}"), system calls $(ratio "${SYS[gatehouse]}" "${SYS[$name]}")" |
      tee -a "$OUT"
  done
fi
log "binary $GATEHOUSE_BIN (sha256 $(sha256sum "$GATEHOUSE_BIN" | cut -c1-12)), $(nginx -v 2>&1 | sed 's|.*/||'), haproxy $(haproxy -v | awk 'NR == 1 { print $3 }'); raw outputs in ${RAW#"$ROOT"/}/"
