#!/usr/bin/env bash
# Mutual TLS side by side, in one run: Gatehouse (an API with a static allow list:
# use_mutual_tls_auth, client_certificates = the bench CA), nginx (ssl_verify_client on) and
# HAProxy (verify required), each requiring a client certificate signed by the same CA, in front
# of the same origin, one worker each, TLS 1.3, same ECDSA P-256 server certificate.
#
#   bench/mtls.sh               # ROUNDS=5 DURATION=10s CONNS=50 HS_CONNS=16
#   QUICK=1 bench/mtls.sh       # 1 round of 3 s
#
# Two measurements per proxy and round, proxies interleaved: keep-alive requests per second
# (CONNS connections presenting the client certificate) and full handshakes per second (each
# request on a new connection, full TLS 1.3 handshake with the client certificate, no
# resumption). The load generator is bench/mtls_load.cpp (wrk, ab and h2load cannot present a
# client certificate), built at the start, pinned to CPU 1; proxies and origin on CPU 0.
# Prints a markdown table (medians, ratios) and writes it to bench/results/mtls-latest.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
HZ="$(getconf CLK_TCK)"
declare -A SNAP
USED_PORTS=" "

ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-50}"
HS_CONNS="${HS_CONNS:-16}"
PAUSE="${PAUSE:-2}"
GATEHOUSE_BIN="${GATEHOUSE_BIN:-build/release/gatehouse}"
if [[ "${QUICK:-0}" == 1 ]]; then
  ROUNDS=1
  DURATION=3s
fi
[[ "$GATEHOUSE_BIN" = /* ]] || GATEHOUSE_BIN="$ROOT/$GATEHOUSE_BIN"
DUR_S="$(to_seconds "$DURATION")"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ "$CONNS" =~ ^[1-9][0-9]*$ && "$HS_CONNS" =~ ^[1-9][0-9]*$ ]] || die "CONNS and HS_CONNS must be positive integers"
(( DUR_S >= 1 && DUR_S <= 600 )) || die "DURATION must be between 1 s and 10 min"
[[ -x "$GATEHOUSE_BIN" ]] || die "no gatehouse binary at $GATEHOUSE_BIN (build the release preset, or set GATEHOUSE_BIN)"

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need nginx nginx-light
need haproxy haproxy
need openssl openssl
need curl curl
need g++ g++
need taskset util-linux
need ss iproute2
[[ -x /usr/bin/time ]] || missing+=(time)
[[ -f /usr/include/openssl/ssl.h ]] || missing+=(libssl-dev)
if (( ${#missing[@]} )); then
  log "installing missing packages: ${missing[*]}"
  SUDO=""
  [[ "$(id -u)" == 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
taskset -c 0 true 2>/dev/null && taskset -c 1 true 2>/dev/null \
  || die "needs CPUs 0 and 1 (proxy + origin on CPU 0, load generator on CPU 1)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-mtls-bench.XXXXXX")"
PIDS=()
CLIENTS=()
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
STAMP="$(date +%Y%m%d-%H%M%S)"
RAW="$BENCH/results/raw/mtls-$STAMP"
mkdir -p "$RAW"

log "building the load generator"
g++ -O2 -std=c++17 -o "$WORK/mtls_load" "$BENCH/mtls_load.cpp" -lssl -lcrypto
cp "$GATEHOUSE_BIN" "$WORK/gatehouse"
GH_SHA="$(sha256sum "$WORK/gatehouse" | cut -c1-12)"

# ---------------------------------------------------------------------------------------------
# PKI made now, never committed: a CA, the server certificate, a client certificate it signed,
# and a client certificate of another CA (for the refusal checks).
PKI="$WORK/pki"
mkdir -p "$PKI"
ossl() { openssl "$@" >/dev/null 2>&1 || die "openssl $1 failed"; }
mkca() {  # mkca NAME CN
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -keyout "$PKI/$1.key" \
    -out "$PKI/$1.pem" -days 2 -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
}
mkleaf() {  # mkleaf NAME CA EXT
  ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/$1.key" \
    -out "$PKI/$1.csr" -subj "/CN=$1"
  printf '%s\n' "$3" > "$PKI/$1.ext"
  ossl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$2.pem" -CAkey "$PKI/$2.key" -CAcreateserial \
    -out "$PKI/$1.pem" -days 2 -extfile "$PKI/$1.ext"
}
mkca ca "Gatehouse Bench CA"
mkca other-ca "Another CA"
mkleaf server ca $'subjectAltName=DNS:bench.local,IP:127.0.0.1\nextendedKeyUsage=serverAuth'
mkleaf client ca $'extendedKeyUsage=clientAuth'
mkleaf stranger other-ca $'extendedKeyUsage=clientAuth'
CA="$PKI/ca.pem"; CERT="$PKI/server.pem"; KEY="$PKI/server.key"
COMBINED="$PKI/server-combined.pem"
cat "$CERT" "$KEY" > "$COMBINED"
chmod 600 "$PKI"/*.key "$COMBINED"
SECRET="$(openssl rand -hex 24)"

# ---------------------------------------------------------------------------------------------
PROXIES=(gatehouse nginx haproxy)
declare -A PORT
free_port; ORIGIN_PORT="$REPLY"
for name in "${PROXIES[@]}"; do free_port; PORT[$name]="$REPLY"; done

mk_nginx_dir "$WORK/origin"
render "$BENCH/nginx-origin.conf.tmpl" "$WORK/origin/nginx.conf" DIR="$WORK/origin" ORIGIN_PORT="$ORIGIN_PORT"
start_on_cpu0 origin "$WORK/origin/stderr.log" nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log"
wait_port "$ORIGIN_PORT" origin "$WORK/origin/error.log"

mkdir -p "$WORK/gatehouse.d/apps"
render "$BENCH/mtls-gatehouse.conf.tmpl" "$WORK/gatehouse.d/tyk.conf" DIR="$WORK/gatehouse.d" \
  PORT="${PORT[gatehouse]}" CERT="$CERT" KEY="$KEY" SECRET="$SECRET"
chmod 600 "$WORK/gatehouse.d/tyk.conf"
render "$BENCH/mtls-gatehouse-api.json.tmpl" "$WORK/gatehouse.d/apps/bench-mtls.json" \
  ORIGIN_PORT="$ORIGIN_PORT" CA="$CA"
start_on_cpu0 gatehouse "$WORK/gatehouse.d/stderr.log" "$WORK/gatehouse" --conf "$WORK/gatehouse.d/tyk.conf"
wait_port "${PORT[gatehouse]}" gatehouse "$WORK/gatehouse.d/stderr.log"

mk_nginx_dir "$WORK/nginx"
render "$BENCH/mtls-nginx.conf.tmpl" "$WORK/nginx/nginx.conf" DIR="$WORK/nginx" PORT="${PORT[nginx]}" \
  ORIGIN_PORT="$ORIGIN_PORT" CERT="$CERT" KEY="$KEY" CA="$CA"
start_on_cpu0 nginx "$WORK/nginx/stderr.log" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
wait_port "${PORT[nginx]}" nginx "$WORK/nginx/error.log"

mkdir -p "$WORK/haproxy"
render "$BENCH/mtls-haproxy.cfg.tmpl" "$WORK/haproxy/haproxy.cfg" PORT="${PORT[haproxy]}" \
  ORIGIN_PORT="$ORIGIN_PORT" COMBINED="$COMBINED" CA="$CA"
haproxy -c -q -f "$WORK/haproxy/haproxy.cfg" || die "haproxy rejected its config"
start_on_cpu0 haproxy "$WORK/haproxy/stderr.log" haproxy -db -f "$WORK/haproxy/haproxy.cfg"
wait_port "${PORT[haproxy]}" haproxy "$WORK/haproxy/stderr.log"

# ---------------------------------------------------------------------------------------------
# Pre-flight: with the client certificate every proxy answers 200 "ok" from the origin (and the
# load generator gets only 2xx); without one, and with another CA's, none reaches the origin.
LOAD=("$WORK/mtls_load" --sni bench.local)
WITH_CERT=(--cert "$PKI/client.pem" --key "$PKI/client.key")
PRE="$RAW/preflight.txt"
: > "$PRE"
outcome() {  # outcome PORT [curl cert args...] -> "HTTP <code>" or "refused in the handshake"
  local port="$1" code; shift
  code="$(curl -sk -o "$WORK/body.txt" -w '%{http_code}' --max-time 5 "$@" "https://127.0.0.1:$port/" 2>/dev/null || true)"
  if [[ -z "$code" || "$code" == 000 ]]; then echo "refused in the handshake"; else echo "HTTP $code"; fi
}
for name in "${PROXIES[@]}"; do
  port="${PORT[$name]}"
  ok="$(outcome "$port" --cert "$PKI/client.pem" --key "$PKI/client.key")"
  [[ "$ok" == "HTTP 200" && "$(cat "$WORK/body.txt")" == ok ]] || die "$name: GET / with the client certificate: $ok"
  none="$(outcome "$port")"
  stranger="$(outcome "$port" --cert "$PKI/stranger.pem" --key "$PKI/stranger.key")"
  [[ "$none" != "HTTP 200" && "$stranger" != "HTTP 200" ]] || die "$name: admitted a client without an acceptable certificate"
  client 30 "$WORK/pre.txt" "${LOAD[@]}" --port "$port" --conns 2 --duration 1 "${WITH_CERT[@]}" || die "$name: mtls_load failed"
  read -r _ pre_n _ _ _ _ _ _ _ _ _ pre_err _ pre_non < "$WORK/pre.txt"
  (( pre_n > 0 && pre_err == 0 && pre_non == 0 )) || die "$name: mtls_load smoke test: $(cat "$WORK/pre.txt")"
  client 30 "$WORK/pre.txt" "${LOAD[@]}" --port "$port" --conns 2 --duration 1 --handshake "${WITH_CERT[@]}" || die "$name: mtls_load failed"
  read -r _ pre_n _ _ _ _ _ _ _ _ _ pre_err _ pre_non < "$WORK/pre.txt"
  (( pre_n > 0 && pre_err == 0 && pre_non == 0 )) || die "$name: mtls_load handshake smoke test: $(cat "$WORK/pre.txt")"
  echo "$name: with the client certificate $ok; without one: $none; with another CA's: $stranger;" \
       "load generator smoke tests (1 s keep-alive, 1 s handshakes): 0 errors, 0 non-2xx" >> "$PRE"
done
log "pre-flight:"; sed 's/^/    /' "$PRE" >&2

# ---------------------------------------------------------------------------------------------
RESULTS="$RAW/results.tsv"
printf 'scenario\tproxy\tround\tper_s\tp99_ms\terrors\tnon2xx\tcpu0_pct\tproxy_pct\tproxy_us_per_op\n' > "$RESULTS"
pid_of() { local v="PID_$1"; echo "${!v}"; }
measure() {  # measure SCENARIO PROXY ROUND
  local s="$1" name="$2" r="$3" pid port args=() n sec rate p99 err non cpu j0 j1
  pid="$(pid_of "$name")"; port="${PORT[$name]}"
  if [[ "$s" == keepalive ]]; then args=(--conns "$CONNS"); else args=(--conns "$HS_CONNS" --handshake); fi
  [[ "$s" == keepalive ]] && client $(( DUR_S + 30 )) /dev/null "${LOAD[@]}" --port "$port" --duration 1 "${args[@]}" "${WITH_CERT[@]}" || true
  snap_begin "$pid"
  j0="$(tree_jiffies "$pid")"
  client $(( DUR_S + 30 )) "$RAW/$s-$name-$r.txt" "${LOAD[@]}" --port "$port" --duration "$DUR_S" "${args[@]}" "${WITH_CERT[@]}" \
    || die "$name: mtls_load failed: $(cat "$RAW/$s-$name-$r.txt")"
  j1="$(tree_jiffies "$pid")"
  cpu="$(snap_end "$pid")"
  read -r _ n _ sec _ rate _ _ _ p99 _ err _ non < "$RAW/$s-$name-$r.txt"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$name" "$r" "$rate" \
    "$(awk -v u="$p99" 'BEGIN { printf "%.2f", u / 1000 }')" "$err" "$non" \
    "$(cut -d' ' -f1 <<<"$cpu")" "$(cut -d' ' -f3 <<<"$cpu")" \
    "$(awk -v j=$(( j1 - j0 )) -v n="$n" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.1f", j * 1e6 / hz / n; else print "nan" }')" >> "$RESULTS"
  log "  $s $name: $rate/s, p99 $p99 µs, $err errors, $non non-2xx"
}
for (( r = 1; r <= ROUNDS; r++ )); do
  order=()
  for (( i = 0; i < 3; i++ )); do order+=("${PROXIES[$(( (i + r - 1) % 3 ))]}"); done
  log "round $r/$ROUNDS: ${order[*]}"
  for s in keepalive handshake; do
    for name in "${order[@]}"; do
      measure "$s" "$name" "$r"
      sleep "$PAUSE"
    done
  done
done
for name in origin "${PROXIES[@]}"; do
  kill -0 "$(pid_of "$name")" 2>/dev/null || die "$name died during the run"
done

# ---------------------------------------------------------------------------------------------
median() {  # median SCENARIO PROXY COLUMN
  awk -F'\t' -v s="$1" -v p="$2" -v c="$3" 'NR > 1 && $1 == s && $2 == p && $c != "nan" { print $c }' "$RESULTS" \
    | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
                       if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
total() { awk -F'\t' -v s="$1" -v p="$2" -v c="$3" 'NR > 1 && $1 == s && $2 == p { t += $c } END { print t + 0 }' "$RESULTS"; }
declare -A M
for s in keepalive handshake; do
  for p in "${PROXIES[@]}"; do
    for c in 4 5 8 9 10; do M[$s,$p,$c]="$(median "$s" "$p" "$c")"; done
    M[$s,$p,bad]=$(( $(total "$s" "$p" 6) + $(total "$s" "$p" 7) ))
  done
done
row() {  # row LABEL SCENARIO COLUMN DECIMALS
  local g="${M[$2,gatehouse,$3]}" n="${M[$2,nginx,$3]}" h="${M[$2,haproxy,$3]}"
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$(fmt "$g" "$4")" "$(fmt "$n" "$4")" "$(fmt "$h" "$4")" \
    "$(ratio "$g" "$n")" "$(ratio "$g" "$h")"
}
better() {  # better SCENARIO -> the better peer's req/s
  awk -v a="${M[$1,nginx,4]}" -v b="${M[$1,haproxy,4]}" 'BEGIN { print (a > b ? a : b) }'
}
ka_best="$(better keepalive)"; hs_best="$(better handshake)"
ka_ok="$(yesno "${M[keepalive,gatehouse,4]} >= $ka_best")"
hs_ok="$(yesno "${M[handshake,gatehouse,4]} >= $hs_best")"
cmd="ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS HS_CONNS=$HS_CONNS bench/mtls.sh"
[[ "${QUICK:-0}" == 1 ]] && cmd="QUICK=1 bench/mtls.sh"
REPORT="$RAW/table.md"
{
  echo "## Mutual TLS: Gatehouse vs nginx vs HAProxy — $(date -u +%Y-%m-%d\ %H:%M) UTC"
  echo
  echo "Medians of $ROUNDS interleaved round(s), $DURATION per measurement. Every proxy requires a client" \
       "certificate signed by the bench CA (Gatehouse: \`use_mutual_tls_auth\` with the CA as its" \
       "\`client_certificates\`; nginx: \`ssl_verify_client on\`; HAProxy: \`verify required\`). One worker each," \
       "TLS 1.3, the same ECDSA P-256 server certificate and origin; proxies and origin on CPU 0, bench/mtls_load" \
       "on CPU 1."
  echo
  echo "| measurement | gatehouse | nginx | haproxy | gatehouse/nginx | gatehouse/haproxy |"
  echo "|---|---|---|---|---|---|"
  row "keep-alive with client certificate: req/s ($CONNS connections) ↑" keepalive 4 0
  row "keep-alive: p99 latency, ms ↓" keepalive 5 2
  row "keep-alive: proxy CPU per request, µs ↓" keepalive 10 1
  row "full handshakes with client certificate: conn/s ($HS_CONNS at a time) ↑" handshake 4 0
  row "full handshakes: p99 connect+handshake+request, ms ↓" handshake 5 2
  row "full handshakes: proxy CPU per connection, µs ↓" handshake 10 0
  echo
  echo "Issue 6 bar (≥ 1.0× the better peer): keep-alive **$ka_ok** ($(ratio "${M[keepalive,gatehouse,4]}" "$ka_best"));" \
       "full handshakes **$hs_ok** ($(ratio "${M[handshake,gatehouse,4]}" "$hs_best"))."
  echo
  echo "CPU 0 busy (median %): keep-alive gatehouse ${M[keepalive,gatehouse,8]}, nginx ${M[keepalive,nginx,8]}," \
       "haproxy ${M[keepalive,haproxy,8]}; handshakes gatehouse ${M[handshake,gatehouse,8]}, nginx ${M[handshake,nginx,8]}," \
       "haproxy ${M[handshake,haproxy,8]}. Errors + non-2xx over all rounds: gatehouse" \
       "$(( M[keepalive,gatehouse,bad] + M[handshake,gatehouse,bad] )), nginx $(( M[keepalive,nginx,bad] + M[handshake,nginx,bad] ))," \
       "haproxy $(( M[keepalive,haproxy,bad] + M[handshake,haproxy,bad] ))."
  echo
  echo "Pre-flight checks:"
  echo
  sed 's/^/- /' "$PRE"
  echo
  echo "Gatehouse $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown) (binary sha256 $GH_SHA…)," \
       "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), HAProxy $( (haproxy -v 2>/dev/null || true) | awk 'NR==1 { print $3 }')," \
       "OpenSSL $(openssl version | awk '{ print $2 }'); $(nproc --all) × $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)." \
       "Command: \`$cmd\`. Raw outputs: \`bench/results/raw/mtls-$STAMP/\`."
} > "$REPORT"
cp "$REPORT" "$BENCH/results/mtls-latest.md"
echo
cat "$REPORT"
