# Helpers shared by bench/run.sh, bench/tls.sh and bench/scaling.sh (sourced: it defines
# functions, and sets PATH, HZ and USED_PORTS). The caller sets WORK, PIDS and CLIENTS.

# Set for every script that sources this file.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
HZ="$(getconf CLK_TCK)"
USED_PORTS=" "

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

# A free loopback port below the ephemeral range (so client sockets never collide with it).
# Sets REPLY (not echoed: a subshell would lose USED_PORTS).
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

mk_nginx_dir() { mkdir -p "$1"/{client_body,proxy,fastcgi,uwsgi,scgi}; }

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
switches() {  # switches PID -> "voluntary involuntary" context switches of PID, its direct children and all their threads
  local p
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do cat /proc/"$p"/task/*/status 2>/dev/null; done |
    awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 } END { printf "%.0f %.0f\n", v, n }'
}
per_request() {  # per_request DELTA COUNT -> DELTA / COUNT with two decimals, "nan" when COUNT is 0
  awk -v d="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", d / n; else print "nan" }'
}
sched_ns() {  # sched_ns PID -> nanoseconds on CPU of all the process's threads (/proc/PID/task/*/schedstat)
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}
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

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b + 0 == 0) print "n/a"; else printf "%.2f×", a / b }'; }

fmt() { awk -v v="$1" -v d="$2" 'BEGIN { if (v == "nan") print "n/a"; else printf "%.*f", d, v }'; }

yesno() { awk "BEGIN { print ($1) ? \"yes\" : \"no\" }"; }


# Results tables ($RESULTS: a TSV with a header line, scenario in column 1, proxy in column 2).
column_of() {  # column_of SCENARIO PROXY COLUMN -> the column's numbers, sorted
  awk -F'\t' -v s="$1" -v p="$2" -v c="$3" 'NR > 1 && $1 == s && $2 == p && $c != "nan" { print $c }' "$RESULTS" | sort -g
}
median() {  # median SCENARIO PROXY COLUMN -> "nan" when there is nothing
  column_of "$@" | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
                         if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
sumcol() {  # sumcol SCENARIO PROXY COLUMN -> the column's total
  awk -F'\t' -v s="$1" -v p="$2" -v c="$3" 'NR > 1 && $1 == s && $2 == p { t += $c } END { print t + 0 }' "$RESULTS"
}

# Debian packages a script needs: `need_pkg CMD PACKAGE` for each, then `install_needed`
# (apt-get, only when something is missing; sudo when not root).
NEEDED_PKGS=()
need_pkg() { command -v "$1" >/dev/null 2>&1 || NEEDED_PKGS+=("$2"); }
install_needed() {
  (( ${#NEEDED_PKGS[@]} )) || return 0
  log "installing missing packages: ${NEEDED_PKGS[*]}"
  local sudo=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${NEEDED_PKGS[*]}"
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${NEEDED_PKGS[@]}" >/dev/null
  NEEDED_PKGS=()
}

# begin_run NAME: the run's temp dir (WORK), process bookkeeping, clean-up at exit, and the raw
# output dir bench/results/raw/NAME-<timestamp> (RAW).
begin_run() {
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-$1.XXXXXX")"
  PIDS=()
  CLIENTS=()
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  STAMP="$(date +%Y%m%d-%H%M%S)"
  RAW="$BENCH/results/raw/$1-$STAMP"
  mkdir -p "$RAW"
}

# GATEHOUSE_BIN: the binary under test (default build/release/gatehouse, relative to the repo
# root), made absolute; dies when it is not there.
resolve_gatehouse_bin() {
  GATEHOUSE_BIN="${GATEHOUSE_BIN:-build/release/gatehouse}"
  [[ "$GATEHOUSE_BIN" = /* ]] || GATEHOUSE_BIN="$ROOT/$GATEHOUSE_BIN"
  [[ -x "$GATEHOUSE_BIN" ]] || die "no gatehouse binary at $GATEHOUSE_BIN (build the release preset, or set GATEHOUSE_BIN)"
}

to_ms() {  # wrk latency "812.00us" / "1.23ms" / "1.01s" -> milliseconds
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else printf "nan" }'
}

wrk_result() {  # wrk_result OUTFILE -> "req_per_s p99_ms errors non2xx requests" (0s when wrk gave nothing)
  local rps p99 errs non2xx count
  rps="$(awk '/^Requests\/sec:/ {print $2}' "$1")"
  p99="$(to_ms "$(awk '$1=="99%" {print $2}' "$1")")"
  errs="$(awk '/Socket errors:/ { gsub(/,/, ""); s += $4 + $6 + $8 + $10 } /Non-2xx/ { s += $NF } END { print s + 0 }' "$1")"
  non2xx="$(awk '/Non-2xx/ { s += $NF } END { print s + 0 }' "$1")"
  count="$(awk '/ requests in / { print $1; exit }' "$1")"
  [[ -n "$rps" && -n "$count" ]] || { rps=0; count=0; }
  echo "$rps ${p99:-nan} $errs $non2xx $count"
}

range() {  # " (min–max)" when there is more than one round
  column_of "$1" "$2" "$3" | awk -v d="$4" '{ v[NR] = $1 } END { if (NR > 1) printf " (%.*f–%.*f)", d, v[1], d, v[NR] }'
}

# ab_keyed N OUTFILE URL TOKEN: `ab -k -c10` with the token in Authorization, on CPU 1; dies when
# ab fails or reports a failed or non-2xx request.
ab_keyed() {
  taskset -c 1 ab -q -k -c 10 -n "$1" -H "Authorization: $4" "$3" >"$2" 2>&1 || die "ab failed (see $2)"
  local failed non2xx
  failed="$(awk '/^Failed requests/ { print $3 }' "$2")"
  non2xx="$(awk '/^Non-2xx responses/ { print $3 }' "$2")"
  [[ "${failed:-1}" == 0 && -z "$non2xx" ]] || die "ab reported failures (see $2)"
}

# callgrind_total DUMP: the instructions a callgrind dump counted (its PROGRAM TOTALS); dies
# when there are none.
callgrind_total() {
  local total
  total="$(callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(/,/, "", $1); print $1 }')"
  [[ -n "$total" ]] || die "no callgrind totals in $1"
  echo "$total"
}

# Test PKI made at run time, never committed, in the directory $PKI: ossl runs openssl quietly
# (dies on failure), mkca NAME CN makes a CA (PKI/NAME.pem, .key), mkleaf NAME CA EXT a
# certificate signed by PKI/CA with the extensions EXT.
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
