#!/usr/bin/env bash
# Worker scaling, Gatehouse and nginx side by side in one run: the same keyless TLS 1.3 keep-alive
# load as bench/run.sh's "keepalive" scenario, measured with one worker and with two, nothing
# pinned (the proxy, the origin and the load generator share both CPUs, as they would on a small
# host), interleaved rounds, medians.
#
#   bench/scaling.sh              # ROUNDS=5 DURATION=10s CONNS=64
#   QUICK=1 bench/scaling.sh      # 1 round of 3 s
#
# Reports, for each proxy: requests per second with 1 and 2 workers and their ratio (issue 8's
# bar: ≥ 1.8× for Gatehouse), the proxy's CPU per request with 1 and 2 workers, and how busy the
# two CPUs were. On a machine whose only two cores also run the origin and the load generator,
# the ratio is bounded by what those two cost per request; the CPU-per-request columns say
# whether a second worker makes each request dearer (locks, shared state, cache traffic).
# Writes the table to bench/results/scaling-latest.md; raw outputs to bench/results/raw/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-64}"
WARMUP="${WARMUP:-1s}"
PAUSE="${PAUSE:-2}"
if [[ "${QUICK:-0}" == 1 ]]; then
  ROUNDS=1
  DURATION=3s
fi
resolve_gatehouse_bin
for knob in ROUNDS CONNS; do
  [[ "${!knob}" =~ ^[1-9][0-9]*$ ]] || die "$knob must be a positive integer"
done
DUR_S="$(to_seconds "$DURATION")"
WARMUP_S="$(to_seconds "$WARMUP")"
(( DUR_S >= 1 && DUR_S <= 600 )) || die "DURATION must be between 1 s and 10 min"

for pair in nginx:nginx-light wrk:wrk openssl:openssl ss:iproute2 taskset:util-linux curl:curl; do
  need_pkg "${pair%%:*}" "${pair#*:}"
done
[[ -x /usr/bin/time ]] || NEEDED_PKGS+=(time)
install_needed
(( "$(nproc --all)" >= 2 )) || die "needs two CPUs"

begin_run scaling

# Every process may run on CPU 0 and CPU 1.
start_free() {  # start_free NAME LOGFILE CMD...
  local name="$1" logf="$2"; shift 2
  taskset -c 0,1 "$@" >"$logf" 2>&1 &
  PIDS+=("$!")
  eval "PID_${name}=$!"
}

PKI="$WORK/pki"
mkdir -p "$PKI"
CERT="$PKI/cert.pem"; KEY="$PKI/key.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
  -keyout "$KEY" -out "$CERT" -days 2 -subj "/CN=bench.local" \
  -addext "subjectAltName=DNS:bench.local,IP:127.0.0.1" >/dev/null 2>&1
chmod 600 "$KEY"

free_port; ORIGIN_PORT="$REPLY"
mk_nginx_dir "$WORK/origin"
render "$BENCH/nginx-origin.conf.tmpl" "$WORK/origin/nginx.conf" DIR="$WORK/origin" ORIGIN_PORT="$ORIGIN_PORT"
start_free origin "$WORK/origin/stderr.log" nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log"
wait_port "$ORIGIN_PORT" origin "$WORK/origin/error.log"

declare -A PORT
INSTANCES=(gatehouse_1 nginx_1 gatehouse_2 nginx_2)
for inst in "${INSTANCES[@]}"; do
  free_port; PORT[$inst]="$REPLY"
  n="${inst##*_}"
  d="$WORK/$inst"
  if [[ "$inst" == gatehouse_* ]]; then
    mkdir -p "$d/apps" "$d/policies"
    render "$BENCH/gatehouse.conf.tmpl" "$d/tyk.conf" DIR="$d" PORT="${PORT[$inst]}" \
      SECRET="$(openssl rand -hex 24)" CERT="$CERT" KEY="$KEY"
    sed -i "s/\"workers\": 1,/\"workers\": $n,/" "$d/tyk.conf"
    grep -q "\"workers\": $n," "$d/tyk.conf" || die "could not set workers in $d/tyk.conf"
    render "$BENCH/gatehouse-api.json.tmpl" "$d/apps/bench.json" ORIGIN_PORT="$ORIGIN_PORT"
    pushd "$d" >/dev/null
    start_free "$inst" "$d/stderr.log" "$GATEHOUSE_BIN" --conf "$d/tyk.conf"
    popd >/dev/null
    wait_port "${PORT[$inst]}" "$inst" "$d/stderr.log"
  else
    mk_nginx_dir "$d"
    : > "$d/tokens.map"; : > "$d/tokens-policy.map"
    render "$BENCH/nginx-proxy.conf.tmpl" "$d/nginx.conf" DIR="$d" PORT="${PORT[$inst]}" \
      ORIGIN_PORT="$ORIGIN_PORT" CERT="$CERT" KEY="$KEY"
    # n worker processes, each with its own listening socket (SO_REUSEPORT, as Gatehouse's
    # workers have), so that the kernel spreads the connections over them.
    sed -i -e "s/^worker_processes 1;/worker_processes $n;/" -e "s/backlog=4096;/backlog=4096 reuseport;/" "$d/nginx.conf"
    grep -q "^worker_processes $n;" "$d/nginx.conf" && grep -q reuseport "$d/nginx.conf" \
      || die "could not set worker_processes/reuseport in $d/nginx.conf"
    start_free "$inst" "$d/stderr.log" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
    wait_port "${PORT[$inst]}" "$inst" "$d/error.log"
  fi
done

# Each proxy must answer 200 before anything is measured.
for inst in "${INSTANCES[@]}"; do
  code="$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:${PORT[$inst]}/")" || true
  [[ "$code" == 200 ]] || die "$inst answered $code instead of 200 on GET /"
done

GH_SHA="$(sha256sum "$GATEHOUSE_BIN" | cut -c1-12)"
log "ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS gatehouse=$GATEHOUSE_BIN ($GH_SHA)"

RESULTS="$RAW/results.tsv"
printf 'proxy\tworkers\tround\treq_per_s\tp99_ms\terrors\tcpu0_pct\tcpu1_pct\tproxy_pct\torigin_pct\tloadgen_pct\tproxy_us_per_req\tproxy_threads_busy\n' > "$RESULTS"


measure() {  # measure INSTANCE ROUND
  local inst="$1" round="$2" pid out t0 t1 b0 a0 b1 a1 e0 e1 c0 c1 g0 g1 o0 o1 rps p99 errs count
  local url="https://127.0.0.1:${PORT[$1]}/"
  pid="$(eval echo "\$PID_$inst")"
  out="$RAW/$inst-r$round.txt"
  timeout $(( WARMUP_S + 30 )) taskset -c 0,1 wrk -t2 -c"$CONNS" -d"$WARMUP" "$url" >/dev/null 2>&1 || true
  sleep 0.5
  t0="$(date +%s.%N)"
  read -r b0 a0 < <(cpu_busy 0); read -r b1 a1 < <(cpu_busy 1)
  g0="$(tree_jiffies "$pid")"; o0="$(tree_jiffies "$PID_origin")"
  taskset -c 0,1 /usr/bin/time -f '%e %U %S' -o "$WORK/client.time" \
    timeout $(( DUR_S + 60 )) wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$url" >"$out" 2>&1 &
  CLIENTS=("$!")
  wait "$!" || log "warning: wrk exited non-zero for $inst (see $out)"
  CLIENTS=()
  t1="$(date +%s.%N)"
  read -r e0 c0 < <(cpu_busy 0); read -r e1 c1 < <(cpu_busy 1)
  g1="$(tree_jiffies "$pid")"; o1="$(tree_jiffies "$PID_origin")"
  local non2xx
  read -r rps p99 errs non2xx count < <(wrk_result "$out")
  [[ "$count" != 0 ]] || log "warning: no result from wrk for $inst (see $out)"
  local lg
  lg="$(awk '{ if ($1 > 0) printf "%.0f", 100 * ($2 + $3) / $1; else print "nan" }' "$WORK/client.time" 2>/dev/null || echo nan)"
  awk -v inst="$inst" -v round="$round" -v rps="$rps" -v p99="${p99:-nan}" -v errs="$errs" -v n="$count" -v hz="$HZ" \
      -v t0="$t0" -v t1="$t1" -v db0=$(( e0 - b0 )) -v da0=$(( c0 - a0 )) -v db1=$(( e1 - b1 )) -v da1=$(( c1 - a1 )) \
      -v dg=$(( g1 - g0 )) -v dor=$(( o1 - o0 )) -v lg="$lg" 'BEGIN {
      el = t1 - t0; if (el <= 0) el = 1
      split(inst, p, "_")
      us = (n > 0) ? dg * 1e6 / hz / n : "nan"
      printf "%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%s\t%s\t%.2f\n", p[1], p[2], round, rps, p99, errs,
             (da0 ? 100 * db0 / da0 : 0), (da1 ? 100 * db1 / da1 : 0), 100 * dg / hz / el, 100 * dor / hz / el, lg,
             (n > 0) ? sprintf("%.1f", us) : "nan", dg / hz / el }' >> "$RESULTS"
  log "$(printf '%-12s' "$inst") r$round $(tail -1 "$RESULTS" | awk -F'\t' '{ printf "%s req/s  p99 %s ms  errors %s  proxy %s us CPU/req  cpu0/cpu1/proxy/origin/loadgen %% %s/%s/%s/%s/%s", $4, $5, $6, $12, $7, $8, $9, $10, $11 }')"
}

# Interleaved rounds; the order rotates each round so that no instance always goes first.
for (( r = 1; r <= ROUNDS; r++ )); do
  n=${#INSTANCES[@]}
  for (( i = 0; i < n; i++ )); do
    measure "${INSTANCES[$(( (i + r - 1) % n ))]}" "$r"
    sleep "$PAUSE"
  done
done

# lib.sh's median/range read the results by their first two columns: here proxy and workers.
med() { median "$@"; }
rng() { range "$1" "$2" "$3" 0; }

OUT="$BENCH/results/scaling-latest.md"
{
  echo "# Worker scaling: Gatehouse and nginx, 1 → 2 workers"
  echo
  echo "Command: \`$( [[ "${QUICK:-0}" == 1 ]] && echo "QUICK=1 " )bench/scaling.sh\` (ROUNDS=$ROUNDS, DURATION=$DURATION, wrk -t2 -c$CONNS," \
       "keyless GET / over TLS 1.3 keep-alive; proxy, origin and load generator free on CPUs 0 and 1)." \
       "Gatehouse binary sha256 $GH_SHA. $(date -u +%Y-%m-%dT%H:%MZ). Medians of the rounds (min–max)."
  echo
  echo "| proxy | req/s, 1 worker | req/s, 2 workers | 2 / 1 | proxy CPU µs/req, 1 / 2 workers | proxy cores busy, 1 / 2 workers | CPU 0 / CPU 1 busy %, 1 worker | CPU 0 / CPU 1 busy %, 2 workers | origin / loadgen % of a core, 2 workers |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for p in gatehouse nginx; do
    echo "| $p | $(fmt "$(med "$p" 1 4)" 0)$(rng "$p" 1 4) | $(fmt "$(med "$p" 2 4)" 0)$(rng "$p" 2 4) | $(ratio "$(med "$p" 2 4)" "$(med "$p" 1 4)")" \
         "| $(med "$p" 1 12) / $(med "$p" 2 12) | $(med "$p" 1 13) / $(med "$p" 2 13)" \
         "| $(med "$p" 1 7) / $(med "$p" 1 8) | $(med "$p" 2 7) / $(med "$p" 2 8) | $(med "$p" 2 10) / $(med "$p" 2 11) |"
  done
  echo
  echo "p99 latency, ms (1 / 2 workers): gatehouse $(med gatehouse 1 5) / $(med gatehouse 2 5), nginx $(med nginx 1 5) / $(med nginx 2 5)." \
       "Errors (all rounds): gatehouse $(awk -F'\t' 'NR > 1 && $1 == "gatehouse" { s += $6 } END { print s + 0 }' "$RESULTS")," \
       "nginx $(awk -F'\t' 'NR > 1 && $1 == "nginx" { s += $6 } END { print s + 0 }' "$RESULTS")."
  echo "Gatehouse with 2 workers: 2 / 1 of requests per proxy CPU second $(ratio "$(med gatehouse 1 12)" "$(med gatehouse 2 12)")" \
       "(1.00× means a second worker makes no request dearer). Raw rounds: \`${RAW#"$ROOT"/}/results.tsv\`."
} > "$OUT"
cat "$OUT"
