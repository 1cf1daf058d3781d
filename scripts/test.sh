#!/usr/bin/env bash
# Installs the dependencies, builds, and runs every test:
#   1. the release build: unit tests and integration tests (real broker, kcat, Python client,
#      PostgreSQL, promtool), all through CTest;
#   2. the container image: scripts/container-test.sh builds it with podman and runs the demo
#      and the daemon inside it as a non-root user;
#   3. the ASan+UBSan build and the TSan build: the same tests again under the sanitizers.
# Exits non-zero when any test fails. Set TURNSTILED_SKIP_SANITIZERS=1 (and
# TURNSTILED_SKIP_CONTAINER=1) for a quick local run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

run_preset() {
  local preset="$1"
  echo "=== build: $preset"
  bash scripts/build.sh "$preset"
  echo "=== test: $preset"
  # --no-tests=error: a run in which nothing ran is a failure, never a pass. Two at a time:
  # the integration tests spend most of their time waiting on brokers and disks, and each uses
  # its own ports and folders.
  ctest --preset "$preset" --output-on-failure --no-tests=error --timeout 900 -j 2
}

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp"

run_preset release
if [ "${TURNSTILED_SKIP_CONTAINER:-0}" != "1" ]; then
  echo "=== test: container"
  bash scripts/container-test.sh
fi
if [ "${TURNSTILED_SKIP_SANITIZERS:-0}" != "1" ]; then
  # Under the sanitizers the same tests run on one real week instead of all of them, with
  # deadlines scaled for the slowdown: these runs are about threads and memory, not data.
  export TURNSTILED_TEST_WEEKS=1 TURNSTILED_TEST_SLOWDOWN=8
  run_preset asan
  run_preset tsan
fi
echo "=== all tests passed"
