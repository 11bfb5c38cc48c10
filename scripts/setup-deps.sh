#!/usr/bin/env bash
# Installs the Debian 12 packages Gatehouse builds, tests and benchmarks with.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config clang
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libnghttp2-dev libsqlite3-dev libhiredis-dev libgtest-dev libgmock-dev libjemalloc-dev
  openssl curl ca-certificates redis-server redis-tools nghttp2-client
  python3 python3-pytest python3-requests python3-cryptography python3-h2
)
if [[ "${1:-}" == "--bench" ]]; then
  PKGS+=(nginx-light haproxy wrk apache2-utils libbenchmark-dev linux-perf)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
