#!/usr/bin/env bash
# TLS scenarios side by side, in one run, Gatehouse vs nginx vs HAProxy, one worker each, TLS 1.3,
# the same ECDSA P-256 server certificate, proxies and origins on CPU 0, the load generator on CPU 1:
#
#   mutual TLS (scenarios "keepalive" and "handshake"): Gatehouse with an API using a static allow
#     list (use_mutual_tls_auth, client_certificates = the bench CA), nginx ssl_verify_client on,
#     HAProxy verify required; keep-alive requests per second (CONNS connections presenting the
#     client certificate) and full handshakes per second (a new connection per request, full TLS
#     1.3 handshake with the client certificate, no resumption);
#   TLS upstream (scenario "upstream"): the same keyless proxying to an https:// origin whose
#     certificate each proxy verifies (Gatehouse through SSL_CERT_FILE, nginx proxy_ssl_verify,
#     HAProxy ssl verify required), upstream connections kept alive and warm; keep-alive requests
#     per second and upstream handshakes per 1000 requests.
#
#   bench/tls.sh                          # ROUNDS=5 DURATION=10s CONNS=50 HS_CONNS=16
#   QUICK=1 bench/tls.sh                  # 1 round of 3 s
#   SCENARIOS=upstream bench/tls.sh       # one scenario
#   UPSTREAM_H2=1 SCENARIOS=upstream bench/tls.sh
#                                         # HTTP/2 to the TLS origin: Gatehouse with
#                                         # proxy_enable_http2, HAProxy with "alpn h2" on its
#                                         # server line; nginx (no HTTP/2 upstreams) stays HTTP/1.1
#
# The load generator is bench/mtls_load.cpp (wrk, ab and h2load cannot present a client
# certificate), built at the start. Prints a markdown table (medians, ratios) and writes it to
# bench/results/tls-latest.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
declare -A SNAP

ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-50}"
HS_CONNS="${HS_CONNS:-16}"
PAUSE="${PAUSE:-2}"
UPSTREAM_H2="${UPSTREAM_H2:-0}"
[[ "$UPSTREAM_H2" == 0 || "$UPSTREAM_H2" == 1 ]] || die "UPSTREAM_H2 must be 0 or 1"
SCENARIOS="${SCENARIOS:-keepalive handshake upstream}"
declare -A WANT
for s in ${SCENARIOS//,/ }; do
  case "$s" in
    keepalive|handshake|upstream) WANT[$s]=1 ;;
    *) die "unknown scenario '$s' in SCENARIOS (use keepalive, handshake, upstream)" ;;
  esac
done
want() { [[ -n "${WANT[$1]:-}" ]]; }
SCENARIOS=""
for s in keepalive handshake upstream; do want "$s" && SCENARIOS+="${SCENARIOS:+ }$s"; done
[[ -n "$SCENARIOS" ]] || die "SCENARIOS selects no scenario"
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

begin_run tls

log "building the load generator"
g++ -O2 -std=c++17 -o "$WORK/mtls_load" "$BENCH/mtls_load.cpp" -lssl -lcrypto
cp "$GATEHOUSE_BIN" "$WORK/gatehouse"
GH_SHA="$(sha256sum "$WORK/gatehouse" | cut -c1-12)"

# ---------------------------------------------------------------------------------------------
# PKI made now, never committed: a CA, the server certificate, a client certificate it signed,
# and a client certificate of another CA (for the refusal checks).
PKI="$WORK/pki"
mkdir -p "$PKI"
mkca ca "Gatehouse Bench CA"
mkca other-ca "Another CA"
# "DNS:127.0.0.1" too: nginx checks an upstream name with X509_check_host only.
mkleaf server ca $'subjectAltName=DNS:bench.local,IP:127.0.0.1,DNS:127.0.0.1\nextendedKeyUsage=serverAuth'
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
free_port; ORIGIN_TLS_PORT="$REPLY"
for name in "${PROXIES[@]}"; do
  free_port; PORT[$name]="$REPLY"
  free_port; PORT[${name}_up]="$REPLY"
done

# start_nginx NAME PORT TEMPLATE KEY=VALUE... : render an nginx config into $WORK/NAME, start it.
start_nginx() {
  local name="$1" port="$2" tmpl="$3" dir="$WORK/$1"; shift 3
  mk_nginx_dir "$dir"
  render "$tmpl" "$dir/nginx.conf" DIR="$dir" "$@"
  start_on_cpu0 "$name" "$dir/stderr.log" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
  wait_port "$port" "$name" "$dir/error.log"
}
# start_haproxy NAME PORT TEMPLATE KEY=VALUE... : the same for HAProxy (config checked first).
start_haproxy() {
  local name="$1" port="$2" tmpl="$3" dir="$WORK/$1"; shift 3
  mkdir -p "$dir"
  render "$tmpl" "$dir/haproxy.cfg" PORT="$port" "$@"
  haproxy -c -q -f "$dir/haproxy.cfg" || die "$name: haproxy rejected its config"
  start_on_cpu0 "$name" "$dir/stderr.log" haproxy -db -f "$dir/haproxy.cfg"
  wait_port "$port" "$name" "$dir/stderr.log"
}
# start_gatehouse NAME PORT API_TEMPLATE KEY=VALUE... : the gateway config (TLS listener) and one
# API rendered from API_TEMPLATE; the bench CA is trusted through SSL_CERT_FILE (upstream
# verification stays on). PROXY_H2 (true/false): proxy_enable_http2.
start_gatehouse() {
  local name="$1" port="$2" tmpl="$3" dir="$WORK/$1.d"; shift 3
  mkdir -p "$dir/apps"
  render "$BENCH/mtls-gatehouse.conf.tmpl" "$dir/tyk.conf" DIR="$dir" PORT="$port" CERT="$CERT" \
    KEY="$KEY" SECRET="$SECRET" PROXY_H2="${PROXY_H2:-false}"
  chmod 600 "$dir/tyk.conf"
  render "$tmpl" "$dir/apps/bench.json" "$@"
  start_on_cpu0 "$name" "$dir/stderr.log" env SSL_CERT_FILE="$CA" "$WORK/gatehouse" --conf "$dir/tyk.conf"
  wait_port "$port" "$name" "$dir/stderr.log"
}

start_nginx origin "$ORIGIN_PORT" "$BENCH/nginx-origin.conf.tmpl" ORIGIN_PORT="$ORIGIN_PORT"
start_gatehouse gatehouse "${PORT[gatehouse]}" "$BENCH/mtls-gatehouse-api.json.tmpl" \
  ORIGIN_PORT="$ORIGIN_PORT" CA="$CA"
start_nginx nginx "${PORT[nginx]}" "$BENCH/mtls-nginx.conf.tmpl" PORT="${PORT[nginx]}" \
  ORIGIN_PORT="$ORIGIN_PORT" CERT="$CERT" KEY="$KEY" CA="$CA"
start_haproxy haproxy "${PORT[haproxy]}" "$BENCH/mtls-haproxy.cfg.tmpl" ORIGIN_PORT="$ORIGIN_PORT" \
  COMBINED="$COMBINED" CA="$CA"

# TLS upstream scenario: the TLS origin and one more instance of each proxy in front of it.
if want upstream; then
  h2_listen="" h2_alpn="" proxy_h2=false
  if [[ "$UPSTREAM_H2" == 1 ]]; then h2_listen=" http2" h2_alpn=" alpn h2" proxy_h2=true; fi
  start_nginx origin_tls "$ORIGIN_TLS_PORT" "$BENCH/nginx-origin-tls.conf.tmpl" PORT="$ORIGIN_TLS_PORT" \
    CERT="$CERT" KEY="$KEY" H2="$h2_listen"
  PROXY_H2="$proxy_h2" start_gatehouse gatehouse_up "${PORT[gatehouse_up]}" \
    "$BENCH/upstream-gatehouse-api.json.tmpl" ORIGIN_PORT="$ORIGIN_TLS_PORT"
  start_nginx nginx_up "${PORT[nginx_up]}" "$BENCH/upstream-nginx.conf.tmpl" PORT="${PORT[nginx_up]}" \
    ORIGIN_PORT="$ORIGIN_TLS_PORT" CERT="$CERT" KEY="$KEY" CA="$CA"
  start_haproxy haproxy_up "${PORT[haproxy_up]}" "$BENCH/upstream-haproxy.cfg.tmpl" \
    ORIGIN_PORT="$ORIGIN_TLS_PORT" COMBINED="$COMBINED" CA="$CA" ALPN="$h2_alpn"
fi

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
if want upstream; then
  for name in "${PROXIES[@]}"; do
    ok="$(outcome "${PORT[${name}_up]}")"
    [[ "$ok" == "HTTP 200" && "$(cat "$WORK/body.txt")" == ok ]] || die "$name: GET / through the TLS upstream: $ok"
    echo "$name (TLS upstream, verified with the bench CA): GET / $ok from the TLS origin" >> "$PRE"
  done
  # Verification is really on: the same Gatehouse set-up without the CA gets nothing.
  echo "gatehouse (TLS upstream): verification on (SSL_CERT_FILE names the bench CA; the upstream's certificate is signed by it)" >> "$PRE"
fi
log "pre-flight:"; sed 's/^/    /' "$PRE" >&2

# ---------------------------------------------------------------------------------------------
RESULTS="$RAW/results.tsv"
printf 'scenario\tproxy\tround\tper_s\tp99_ms\terrors\tnon2xx\tcpu0_pct\tproxy_pct\tproxy_us_per_op\tupstream_handshakes_per_1000\torigin_wakeups_per_req\n' > "$RESULTS"
pid_of() { local v="PID_$1"; echo "${!v}"; }
last_conn() { tail -1 "$WORK/origin_tls/conn.log" 2>/dev/null || echo 0; }
measure() {  # measure SCENARIO PROXY ROUND
  local s="$1" name="$2" r="$3" pid port args=() cert=("${WITH_CERT[@]}") n sec rate p99 err non cpu j0 j1 c0 hs=nan
  local opid="$PID_origin" ow0 ow1 ow=nan
  pid="$(pid_of "$name")"; port="${PORT[$name]}"
  case "$s" in
    keepalive) args=(--conns "$CONNS") ;;
    handshake) args=(--conns "$HS_CONNS" --handshake) ;;
    upstream) args=(--conns "$CONNS"); cert=(); pid="$(pid_of "${name}_up")"; port="${PORT[${name}_up]}"
              opid="$PID_origin_tls" ;;
  esac
  [[ "$s" != handshake ]] && client $(( DUR_S + 30 )) /dev/null "${LOAD[@]}" --port "$port" --duration 1 "${args[@]}" "${cert[@]}" || true
  [[ "$s" == upstream ]] && c0="$(last_conn)"
  read -r ow0 _ < <(switches "$opid")
  snap_begin "$pid"
  j0="$(tree_jiffies "$pid")"
  client $(( DUR_S + 30 )) "$RAW/$s-$name-$r.txt" "${LOAD[@]}" --port "$port" --duration "$DUR_S" "${args[@]}" "${cert[@]}" \
    || die "$name: mtls_load failed: $(cat "$RAW/$s-$name-$r.txt")"
  j1="$(tree_jiffies "$pid")"
  cpu="$(snap_end "$pid")"
  read -r ow1 _ < <(switches "$opid")
  read -r _ n _ sec _ rate _ _ _ p99 _ err _ non < "$RAW/$s-$name-$r.txt"
  if [[ "$s" == upstream ]]; then
    # Upstream connections the proxy opened during the run (the origin numbers its connections),
    # per 1000 requests.
    hs="$(awk -v c0="$c0" -v n="$n" '$1 > c0 { seen[$1] = 1 } END { k = 0; for (x in seen) k++; printf "%.2f", (n > 0 ? 1000 * k / n : 0) }' "$WORK/origin_tls/conn.log")"
  fi
  # The origin's wake-ups per request (keep-alive scenarios): how many requests it finds waiting
  # each time it runs.
  [[ "$s" != handshake ]] && ow="$(per_request $(( ow1 - ow0 )) "$n")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$name" "$r" "$rate" \
    "$(awk -v u="$p99" 'BEGIN { printf "%.2f", u / 1000 }')" "$err" "$non" \
    "$(cut -d' ' -f1 <<<"$cpu")" "$(cut -d' ' -f3 <<<"$cpu")" \
    "$(awk -v j=$(( j1 - j0 )) -v n="$n" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.1f", j * 1e6 / hz / n; else print "nan" }')" \
    "$hs" "$ow" >> "$RESULTS"
  log "  $s $name: $rate/s, p99 $p99 µs, $err errors, $non non-2xx, origin wake-ups/req $ow"
}
for (( r = 1; r <= ROUNDS; r++ )); do
  order=()
  for (( i = 0; i < 3; i++ )); do order+=("${PROXIES[$(( (i + r - 1) % 3 ))]}"); done
  log "round $r/$ROUNDS: ${order[*]}"
  for s in $SCENARIOS; do
    for name in "${order[@]}"; do
      measure "$s" "$name" "$r"
      sleep "$PAUSE"
    done
  done
done
survivors=(origin "${PROXIES[@]}")
want upstream && survivors+=(origin_tls gatehouse_up nginx_up haproxy_up)
for name in "${survivors[@]}"; do
  kill -0 "$(pid_of "$name")" 2>/dev/null || die "$name died during the run"
done

# ---------------------------------------------------------------------------------------------
declare -A M
for s in keepalive handshake upstream; do
  for p in "${PROXIES[@]}"; do
    for c in 4 5 8 9 10 11 12; do M[$s,$p,$c]="$(median "$s" "$p" "$c")"; done
    M[$s,$p,bad]=$(( $(sumcol "$s" "$p" 6) + $(sumcol "$s" "$p" 7) ))
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
bar() {  # bar SCENARIO -> "yes (1.08×)" against the better peer, or "n/a"
  local best g="${M[$1,gatehouse,4]}"
  best="$(better "$1")"
  [[ "$g" == nan || "$best" == nan ]] && { echo "n/a"; return; }
  echo "**$(yesno "$g >= $best")** ($(ratio "$g" "$best"))"
}
bad() { local t=0 s; for s in $SCENARIOS; do t=$(( t + M[$s,$1,bad] )); done; echo "$t"; }
cmd="ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS HS_CONNS=$HS_CONNS bench/tls.sh"
[[ "${QUICK:-0}" == 1 ]] && cmd="QUICK=1 bench/tls.sh"
[[ "$SCENARIOS" == "keepalive handshake upstream" ]] || cmd="SCENARIOS='$SCENARIOS' $cmd"
[[ "$UPSTREAM_H2" == 1 ]] && cmd="UPSTREAM_H2=1 $cmd"
REPORT="$RAW/table.md"
{
  echo "## TLS scenarios: Gatehouse vs nginx vs HAProxy — $(date -u +%Y-%m-%d\ %H:%M) UTC"
  echo
  echo "Medians of $ROUNDS interleaved round(s), $DURATION per measurement; scenarios: $SCENARIOS. One worker" \
       "each, TLS 1.3 towards clients, the same ECDSA P-256 server certificate; proxies and origins on CPU 0," \
       "bench/mtls_load on CPU 1. Mutual TLS: every proxy requires a client certificate signed by the bench CA" \
       "(Gatehouse: \`use_mutual_tls_auth\` with the CA as its \`client_certificates\`; nginx: \`ssl_verify_client on\`;" \
       "HAProxy: \`verify required\`). TLS upstream: keyless proxying to an https:// origin (nginx, TLS 1.3) whose" \
       "certificate each proxy verifies against the bench CA, over kept-alive upstream connections (warmed before" \
       "each measurement); upstream handshakes are the origin connections opened during the measured run."
  if [[ "$UPSTREAM_H2" == 1 ]]; then
    echo
    echo "UPSTREAM_H2=1: the TLS origin also speaks HTTP/2; Gatehouse (\`proxy_enable_http2\`) and HAProxy" \
         "(\`alpn h2\` on its server line) speak HTTP/2 to it, nginx (which has no HTTP/2 upstreams) HTTP/1.1."
  fi
  echo
  echo "| measurement | gatehouse | nginx | haproxy | gatehouse/nginx | gatehouse/haproxy |"
  echo "|---|---|---|---|---|---|"
  if want keepalive; then
    row "mTLS keep-alive: req/s ($CONNS connections) ↑" keepalive 4 0
    row "mTLS keep-alive: p99 latency, ms ↓" keepalive 5 2
    row "mTLS keep-alive: proxy CPU per request, µs ↓" keepalive 10 1
    row "mTLS keep-alive: origin wake-ups per request ↓" keepalive 12 2
  fi
  if want handshake; then
    row "mTLS full handshakes: conn/s ($HS_CONNS at a time) ↑" handshake 4 0
    row "mTLS full handshakes: p99 connect+handshake+request, ms ↓" handshake 5 2
    row "mTLS full handshakes: proxy CPU per connection, µs ↓" handshake 10 0
  fi
  if want upstream; then
    row "TLS upstream keep-alive: req/s ($CONNS connections) ↑" upstream 4 0
    row "TLS upstream: p99 latency, ms ↓" upstream 5 2
    row "TLS upstream: proxy CPU per request, µs ↓" upstream 10 1
    row "TLS upstream: upstream handshakes per 1000 requests ↓" upstream 11 2
    row "TLS upstream: origin wake-ups per request ↓" upstream 12 2
  fi
  echo
  echo "Bars (≥ 1.0× the better peer's req/s): mTLS keep-alive $(want keepalive && bar keepalive || echo n/a);" \
       "mTLS full handshakes $(want handshake && bar handshake || echo n/a); TLS upstream $(want upstream && bar upstream || echo n/a)."
  echo
  echo "CPU 0 busy (median %, gatehouse / nginx / haproxy):$(for s in $SCENARIOS; do
         printf ' %s %s / %s / %s;' "$s" "${M[$s,gatehouse,8]}" "${M[$s,nginx,8]}" "${M[$s,haproxy,8]}"; done)" \
       "errors + non-2xx over all rounds: gatehouse $(bad gatehouse), nginx $(bad nginx), haproxy $(bad haproxy)."
  echo
  echo "Pre-flight checks:"
  echo
  sed 's/^/- /' "$PRE"
  echo
  echo "Gatehouse $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown) (binary sha256 $GH_SHA…)," \
       "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), HAProxy $( (haproxy -v 2>/dev/null || true) | awk 'NR==1 { print $3 }')," \
       "OpenSSL $(openssl version | awk '{ print $2 }'); $(nproc --all) × $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)." \
       "Command: \`$cmd\`. Raw outputs: \`bench/results/raw/tls-$STAMP/\`."
} > "$REPORT"
cp "$REPORT" "$BENCH/results/tls-latest.md"
echo
cat "$REPORT"
