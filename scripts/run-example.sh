#!/usr/bin/env bash
# Quick start: installs dependencies, builds Release, makes a self-signed certificate, starts a
# small local origin and Gatehouse (TLS on :8443, control API on :9696) with an example keyless
# API, and prints the commands to try. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
scripts/setup-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "${JOBS:-2}"

RUN=$ROOT/run/example
mkdir -p "$RUN/apps" "$RUN/origin"
if [[ ! -f $RUN/server.pem ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$RUN/server.key" -out "$RUN/server.pem" 2>/dev/null
fi
SECRET=${GATEHOUSE_SECRET:-$(openssl rand -hex 16)}
echo '{"hello": "from the example origin"}' > "$RUN/origin/index.json"
cat > "$RUN/tyk.conf" <<CONF
{
  "listen_port": 8443,
  "control_api_port": 9696,
  "secret": "env://GATEHOUSE_SECRET",
  "app_path": "$RUN/apps",
  "http_server_options": {
    "use_ssl": true,
    "certificates": [{"domain_name": "localhost", "cert_file": "$RUN/server.pem", "key_file": "$RUN/server.key"}]
  },
  "gatehouse": {"store": {"type": "embedded", "path": "$RUN/gatehouse.db"}}
}
CONF
cat > "$RUN/apps/example.json" <<API
{"name": "Example", "api_id": "example", "org_id": "default", "active": true, "use_keyless": true,
 "proxy": {"listen_path": "/example/", "target_url": "http://127.0.0.1:9000/", "strip_listen_path": true}}
API

/usr/bin/python3 -m http.server 9000 --bind 127.0.0.1 --directory "$RUN/origin" >"$RUN/origin.log" 2>&1 &
ORIGIN=$!
trap 'kill $ORIGIN 2>/dev/null || true' EXIT
cat <<MSG

Gatehouse is starting on https://localhost:8443 (control API on https://localhost:9696).
Try:
  curl --cacert $RUN/server.pem https://localhost:8443/example/index.json
  curl --cacert $RUN/server.pem -H "X-Tyk-Authorization: $SECRET" https://localhost:9696/tyk/apis
  curl --cacert $RUN/server.pem https://localhost:9696/hello

MSG
GATEHOUSE_SECRET=$SECRET "$ROOT/build/release/gatehouse" --conf "$RUN/tyk.conf"
