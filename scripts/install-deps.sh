#!/usr/bin/env bash
# Installs every Debian (bookworm) package turnstiled needs to build, test and benchmark.
# Idempotent: packages already present are left alone, and apt is not called at all when
# nothing is missing. Nothing is downloaded from anywhere but Debian's archive.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # libraries linked into turnstiled
  librdkafka-dev libconcurrentqueue-dev libsimdjson-dev libfast-float-dev libzstd-dev
  prometheus-cpp-dev libyaml-cpp-dev libabsl-dev libcli11-dev libfmt-dev libpq-dev
  libsystemd-dev libcivetweb-dev doctest-dev libbenchmark-dev
  python3-pytest
  # tools the tests and benchmarks drive
  zstd kcat python3 python3-confluent-kafka python3-zstandard postgresql prometheus curl
  chromium
  # deployment: the unit, the Debian package and Terraform (tests/integration/test_deploy.py)
  systemd strace dpkg-dev lintian man-db bash-completion nodejs
)
# npm: Debian's package, unless the nodejs installed already brings its own npm (NodeSource's
# does, and Debian's npm would conflict with it).
if ! command -v npm >/dev/null; then packages+=(npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
