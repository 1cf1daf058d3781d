#!/usr/bin/env bash
# One command from a fresh Debian machine to a running system: installs the dependencies,
# builds, and runs `turnstiled demo` (embedded broker + producer + daemon). Extra arguments go
# to `turnstiled demo` (see `turnstiled demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh release
exec ./build/release/turnstiled demo "$@"
