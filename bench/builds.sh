#!/usr/bin/env bash
# Two or more Gatehouse builds side by side (and HAProxy or nginx, as a yardstick) in front of
# one local origin, keyless keep-alive proxying, rounds interleaved. For a change that moves
# scheduling rather than instructions: besides requests per second it reports, per request, how
# often the origin slept (its voluntary context switches), how often the proxy was pushed aside
# (its involuntary ones) and the CPU time of each.
#
#   bench/builds.sh /tmp/before/gatehouse build/release/gatehouse
#   PEERS="haproxy nginx" ROUNDS=7 bench/builds.sh A B   # default PEERS=haproxy, ROUNDS=5
#   ORIGIN=plain bench/builds.sh A B                     # http:// origin (default: https://)
#
# TLS 1.3 towards the client (bench/mtls_load without a client certificate, 50 connections, on
# CPU 1); the proxies and the origin (nginx, one worker) on CPU 0. With the TLS origin every
# proxy verifies its certificate against a CA made for the run, as in bench/tls.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-8s}"
CONNS="${CONNS:-50}"
PEERS="${PEERS:-haproxy}"
ORIGIN="${ORIGIN:-tls}"
(( $# >= 1 )) || die "usage: bench/builds.sh GATEHOUSE_BINARY [GATEHOUSE_BINARY...]"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ && "$CONNS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS and CONNS must be positive integers"
[[ "$ORIGIN" == tls || "$ORIGIN" == plain ]] || die "ORIGIN must be tls or plain"
DUR_S="$(to_seconds "$DURATION")"
for p in $PEERS; do [[ "$p" == haproxy || "$p" == nginx ]] || die "PEERS: haproxy and/or nginx"; done
BINS=()
for b in "$@"; do
  [[ "$b" = /* ]] || b="$ROOT/$b"
  [[ -x "$b" ]] || die "no gatehouse binary at $b"
  BINS+=("$b")
done
for pair in nginx:nginx-light haproxy:haproxy openssl:openssl g++:g++ taskset:util-linux ss:iproute2; do
  need_pkg "${pair%%:*}" "${pair#*:}"
done
[[ -f /usr/include/openssl/ssl.h ]] || NEEDED_PKGS+=(libssl-dev)
install_needed
taskset -c 0 true 2>/dev/null && taskset -c 1 true 2>/dev/null || die "needs CPUs 0 and 1"

begin_run builds
g++ -O2 -std=c++17 -o "$WORK/mtls_load" "$BENCH/mtls_load.cpp" -lssl -lcrypto
PKI="$WORK/pki"
mkdir -p "$PKI"
mkca ca "Gatehouse Bench CA"
mkleaf server ca $'subjectAltName=DNS:bench.local,IP:127.0.0.1,DNS:127.0.0.1\nextendedKeyUsage=serverAuth'
cat "$PKI/server.pem" "$PKI/server.key" > "$PKI/combined.pem"
chmod 600 "$PKI"/*.key "$PKI/combined.pem"
CA="$PKI/ca.pem"; CERT="$PKI/server.pem"; KEY="$PKI/server.key"

free_port; OPORT="$REPLY"
mk_nginx_dir "$WORK/origin"
if [[ "$ORIGIN" == tls ]]; then
  render "$BENCH/nginx-origin-tls.conf.tmpl" "$WORK/origin/nginx.conf" DIR="$WORK/origin" PORT="$OPORT" \
    CERT="$CERT" KEY="$KEY" H2=""
  SCHEME=https
else
  render "$BENCH/nginx-origin.conf.tmpl" "$WORK/origin/nginx.conf" DIR="$WORK/origin" ORIGIN_PORT="$OPORT"
  SCHEME=http
fi
start_on_cpu0 origin "$WORK/origin/stderr.log" nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log"
wait_port "$OPORT" origin "$WORK/origin/error.log"

# The contestants: gatehouse-1..N (the binaries, in the order given), then the peers.
NAMES=() PORTS=() PROCS=()
i=0
for b in "${BINS[@]}"; do
  i=$(( i + 1 )); name="gatehouse-$i"; d="$WORK/$name"
  mkdir -p "$d/apps"
  cp "$b" "$d/gatehouse"
  free_port; port="$REPLY"
  render "$BENCH/mtls-gatehouse.conf.tmpl" "$d/tyk.conf" DIR="$d" PORT="$port" CERT="$CERT" KEY="$KEY" \
    SECRET="$(openssl rand -hex 24)" PROXY_H2=false
  chmod 600 "$d/tyk.conf"
  render "$BENCH/upstream-gatehouse-api.json.tmpl" "$d/apps/bench.json" ORIGIN_PORT="$OPORT"
  sed -i "s|https://|$SCHEME://|" "$d/apps/bench.json"
  start_on_cpu0 "g$i" "$d/stderr.log" env SSL_CERT_FILE="$CA" "$d/gatehouse" --conf "$d/tyk.conf"
  wait_port "$port" "$name" "$d/stderr.log"
  p="PID_g$i"; NAMES+=("$name"); PORTS+=("$port"); PROCS+=("${!p}")
  echo "$name: $b (sha256 $(sha256sum "$b" | cut -c1-12))" >> "$RAW/binaries.txt"
done
for peer in $PEERS; do
  d="$WORK/$peer"; mkdir -p "$d"
  free_port; port="$REPLY"
  if [[ "$peer" == haproxy ]]; then
    render "$BENCH/upstream-haproxy.cfg.tmpl" "$d/haproxy.cfg" PORT="$port" ORIGIN_PORT="$OPORT" \
      COMBINED="$PKI/combined.pem" CA="$CA" ALPN=""
    [[ "$ORIGIN" == tls ]] || sed -i 's/ ssl verify required.*$//' "$d/haproxy.cfg"
    haproxy -c -q -f "$d/haproxy.cfg" || die "haproxy rejected its config"
    start_on_cpu0 haproxy "$d/stderr.log" haproxy -db -f "$d/haproxy.cfg"
  else
    mk_nginx_dir "$d"
    render "$BENCH/upstream-nginx.conf.tmpl" "$d/nginx.conf" DIR="$d" PORT="$port" ORIGIN_PORT="$OPORT" \
      CERT="$CERT" KEY="$KEY" CA="$CA"
    [[ "$ORIGIN" == tls ]] || sed -i -e 's|proxy_pass https://|proxy_pass http://|' -e '/proxy_ssl_/d' "$d/nginx.conf"
    start_on_cpu0 nginx "$d/stderr.log" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
  fi
  wait_port "$port" "$peer" "$d/stderr.log"
  p="PID_$peer"; NAMES+=("$peer"); PORTS+=("$port"); PROCS+=("${!p}")
done

LOAD=("$WORK/mtls_load" --sni bench.local --conns "$CONNS")
for k in "${!NAMES[@]}"; do
  code="$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 "https://127.0.0.1:${PORTS[$k]}/" || true)"
  [[ "$code" == 200 ]] || die "${NAMES[$k]}: GET / answered ${code:-nothing}"
done

user_sys() {  # user_sys PID -> "utime stime" (clock ticks) of PID and its direct children
  local p
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do cat "/proc/$p/stat" 2>/dev/null; done |
    awk '{ sub(/^.*\) /, ""); u += $12; s += $13 } END { print u + 0, s + 0 }'
}
us_per() {  # us_per TICKS REQUESTS -> microseconds per request
  awk -v j="$1" -v n="$2" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.1f", j * 1e6 / hz / n; else print "nan" }'
}
RESULTS="$RAW/results.tsv"
printf 'proxy\tround\tper_s\torigin_slept_per_req\tproxy_pushed_aside_per_req\tproxy_us_per_req\torigin_us_per_req\tproxy_user_us\tproxy_sys_us\n' > "$RESULTS"
n_all=${#NAMES[@]}
for (( r = 1; r <= ROUNDS; r++ )); do
  for (( j = 0; j < n_all; j++ )); do
    k=$(( (j + r - 1) % n_all )); pid="${PROCS[$k]}"; port="${PORTS[$k]}"
    client 60 /dev/null "${LOAD[@]}" --port "$port" --duration 1 || die "${NAMES[$k]}: warm-up failed"
    read -r ov0 _ < <(switches "$PID_origin"); read -r _ pi0 < <(switches "$pid")
    read -r pu0 ps0 < <(user_sys "$pid"); oj0="$(tree_jiffies "$PID_origin")"
    out="$RAW/${NAMES[$k]}-$r.txt"
    client $(( DUR_S + 30 )) "$out" "${LOAD[@]}" --port "$port" --duration "$DUR_S" || die "${NAMES[$k]}: mtls_load failed"
    read -r ov1 _ < <(switches "$PID_origin"); read -r _ pi1 < <(switches "$pid")
    read -r pu1 ps1 < <(user_sys "$pid"); oj1="$(tree_jiffies "$PID_origin")"
    read -r _ n _ _ _ rate _ _ _ _ _ err _ non < "$out"
    (( err == 0 && non == 0 )) || die "${NAMES[$k]}: $err errors, $non non-2xx"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${NAMES[$k]}" "$r" "$rate" \
      "$(per_request $(( ov1 - ov0 )) "$n")" "$(per_request $(( pi1 - pi0 )) "$n")" \
      "$(us_per $(( pu1 - pu0 + ps1 - ps0 )) "$n")" "$(us_per $(( oj1 - oj0 )) "$n")" \
      "$(us_per $(( pu1 - pu0 )) "$n")" "$(us_per $(( ps1 - ps0 )) "$n")" >> "$RESULTS"
    log "round $r ${NAMES[$k]}: $(tail -1 "$RESULTS" | cut -f3-)"
    sleep 1
  done
done

med() {  # med PROXY COLUMN
  awk -F'\t' -v p="$1" -v c="$2" 'NR > 1 && $1 == p { print $c }' "$RESULTS" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
{
  echo "Medians of $ROUNDS interleaved rounds of $DUR_S s, $ORIGIN origin, $CONNS connections (TLS 1.3 to the proxy):"
  echo
  echo "| proxy | req/s | vs gatehouse-1 | origin slept / req | proxy pushed aside / req | proxy µs / req (user + system) | origin µs / req |"
  echo "|---|---|---|---|---|---|---|"
  base="$(med gatehouse-1 3)"
  for name in "${NAMES[@]}"; do
    printf '| %s | %.0f | %s | %s | %s | %s | %s |\n' "$name" "$(med "$name" 3)" \
      "$(awk -v a="$(med "$name" 3)" -v b="$base" 'BEGIN { printf "%.2f×", a / b }')" \
      "$(med "$name" 4)" "$(med "$name" 5)" "$(med "$name" 6) ($(med "$name" 8) + $(med "$name" 9))" "$(med "$name" 7)"
  done
  echo
  cat "$RAW/binaries.txt"
  echo "Raw outputs: ${RAW#"$ROOT"/}/"
} | tee "$RAW/summary.md"
