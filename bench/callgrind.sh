#!/usr/bin/env bash
# User-space instructions per request of one Gatehouse worker, counted by callgrind: a number that
# does not move with the machine's load, for comparing two builds of the request path.
#
#   bench/callgrind.sh                          # policy API, Redis store and embedded store
#   STORE=redis bench/callgrind.sh              # one store only (redis or embedded)
#   GATEHOUSE_BIN=/tmp/old/gatehouse bench/callgrind.sh
#   REDIS_LIMITER=gateway bench/callgrind.sh    # Tyk's default limiter set-up instead of the rolling one
#   REDIS_LIMITER=fixed bench/callgrind.sh      # Tyk's fixed-window limiter
#
# Set-up: a keyed API whose key gets a policy with a rate limit and a quota (never reached), TLS
# 1.3 towards the client, a local nginx origin; enable_redis_rolling_limiter (REDIS_LIMITER=rolling,
# the default: on Redis one MULTI/EXEC per request counts both), enable_fixed_window_rate_limiter
# (REDIS_LIMITER=fixed: INCR and PEXPIRE on the window's counter, INCR and PTTL on the quota's) or
# neither (REDIS_LIMITER=gateway: the rate limit counted by the gateway, on Redis only the quota:
# INCR and PTTL). The
# gateway runs under `valgrind --tool=callgrind`; after WARM keep-alive requests its counters are
# zeroed, N requests are made with `ab -k -c10`, the counters are dumped, and the total is divided
# by N. Kernel time is not counted (callgrind sees user space only).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

N="${N:-3000}"
WARM="${WARM:-200}"
STORE="${STORE:-redis embedded}"
REDIS_LIMITER="${REDIS_LIMITER:-rolling}"
resolve_gatehouse_bin
[[ "$N" =~ ^[1-9][0-9]*$ && "$WARM" =~ ^[1-9][0-9]*$ ]] || die "N and WARM must be positive integers"
for s in $STORE; do [[ "$s" == redis || "$s" == embedded ]] || die "STORE: redis and/or embedded"; done
[[ "$REDIS_LIMITER" =~ ^(rolling|fixed|gateway)$ ]] || die "REDIS_LIMITER: rolling, fixed or gateway"

for pair in valgrind:valgrind callgrind_control:valgrind ab:apache2-utils nginx:nginx-light \
            redis-server:redis-server openssl:openssl curl:curl ss:iproute2; do
  need_pkg "${pair%%:*}" "${pair#*:}"
done
[[ -x /usr/bin/python3 ]] || NEEDED_PKGS+=(python3)
install_needed

begin_run callgrind
SECRET="$(openssl rand -hex 24)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 2 -subj "/CN=bench.local" \
  -addext "subjectAltName=DNS:bench.local,IP:127.0.0.1" >/dev/null 2>&1
chmod 600 "$WORK/key.pem"

free_port; ORIGIN_PORT="$REPLY"
mk_nginx_dir "$WORK/origin"
render "$BENCH/nginx-origin.conf.tmpl" "$WORK/origin/nginx.conf" DIR="$WORK/origin" ORIGIN_PORT="$ORIGIN_PORT"
nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log" >"$WORK/origin/stderr.log" 2>&1 &
PIDS+=("$!")
wait_port "$ORIGIN_PORT" origin "$WORK/origin/error.log"

free_port; REDIS_PORT="$REPLY"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
  >"$WORK/redis.log" 2>&1 &
PIDS+=("$!")
wait_port "$REDIS_PORT" redis "$WORK/redis.log"

OUT="$RAW/summary.txt"
: > "$OUT"
for store in $STORE; do
  d="$WORK/$store"
  mkdir -p "$d/apps" "$d/policies"
  free_port; port="$REPLY"
  if [[ "$store" == redis ]]; then
    render "$BENCH/gatehouse-redis.conf.tmpl" "$d/tyk.conf" DIR="$d" PORT="$port" SECRET="$SECRET" \
      CERT="$WORK/cert.pem" KEY="$WORK/key.pem" REDIS_PORT="$REDIS_PORT"
  else
    render "$BENCH/gatehouse.conf.tmpl" "$d/tyk.conf" DIR="$d" PORT="$port" SECRET="$SECRET" \
      CERT="$WORK/cert.pem" KEY="$WORK/key.pem"
    # The same limiter setting as on Redis.
    sed -i 's/^  "gatehouse":/  "enable_redis_rolling_limiter": true,\n  "gatehouse":/' "$d/tyk.conf"
  fi
  if [[ "$REDIS_LIMITER" == fixed ]]; then
    sed -i 's/"enable_redis_rolling_limiter": true,/"enable_fixed_window_rate_limiter": true,/' "$d/tyk.conf"
  elif [[ "$REDIS_LIMITER" == gateway ]]; then
    sed -i '/"enable_redis_rolling_limiter": true,/d' "$d/tyk.conf"
  fi
  render "$BENCH/gatehouse-api-policy.json.tmpl" "$d/apps/bench-policy.json" ORIGIN_PORT="$ORIGIN_PORT"
  render "$BENCH/gatehouse-policy.json.tmpl" "$d/policies/bench-policy.json" ID=bench-policy \
    RATE=1000000 PER=1 QUOTA_MAX=1000000000
  cg="$RAW/callgrind-$store.out"
  (cd "$d" && exec valgrind --tool=callgrind --callgrind-out-file="$cg" \
     "$GATEHOUSE_BIN" --conf "$d/tyk.conf") >"$d/valgrind.log" 2>&1 &
  vpid=$!
  PIDS+=("$vpid")
  for _ in $(seq 600); do  # valgrind starts slowly
    curl -sk -o /dev/null "https://127.0.0.1:$port/hello" && break
    sleep 0.2
  done
  key="$(curl -sk -X POST "https://127.0.0.1:$port/tyk/keys/create" -H "x-tyk-authorization: $SECRET" \
           -d '{"org_id":"default","apply_policies":["bench-policy"]}' |
         /usr/bin/python3 -c 'import sys, json; print(json.load(sys.stdin)["key"])')" \
    || die "$store: could not create a key (see $d/valgrind.log)"
  url="https://127.0.0.1:$port/policy/"
  code="$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: $key" "$url")"
  [[ "$code" == 200 ]] || die "$store: GET /policy/ answered $code"
  ab_keyed "$WARM" "$RAW/ab-warm-$store.txt" "$url" "$key"
  callgrind_control -z "$vpid" >/dev/null 2>&1
  ab_keyed "$N" "$RAW/ab-$store.txt" "$url" "$key"
  callgrind_control -d "$vpid" >/dev/null 2>&1
  kill -TERM "$vpid"; wait "$vpid" 2>/dev/null || true
  total="$(callgrind_total "$cg.1")"
  line="$store store ($REDIS_LIMITER limiter): $(( total / N )) instructions per request ($N requests, ab -k -c10; $total in all)"
  echo "$line" | tee -a "$OUT"
done
log "binary $GATEHOUSE_BIN (sha256 $(sha256sum "$GATEHOUSE_BIN" | cut -c1-12)); dumps in ${RAW#"$ROOT"/}/"
