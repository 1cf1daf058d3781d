#!/usr/bin/env bash
# Installs the dependencies, builds, and runs every test:
#   1. the release build: unit tests and integration tests (real broker, kcat, Python client,
#      PostgreSQL, promtool), all through CTest;
#   2. the container image: scripts/container-test.sh builds it with podman and runs the demo
#      and the daemon inside it as a non-root user;
#   3. the ASan+UBSan build and the TSan build: the same tests again under the sanitizers.
#      The two builds run in the background, at idle priority, during steps 1 and 2.
# Exits non-zero when any test fails. Set TURNSTILED_SKIP_SANITIZERS=1 (and
# TURNSTILED_SKIP_CONTAINER=1) for a quick local run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

# Each phase's line says how long the run has taken so far.
elapsed() { printf '%dm%02ds' $((SECONDS / 60)) $((SECONDS % 60)); }

build_preset() {
  echo "=== build: $1 ($(elapsed))"
  bash scripts/build.sh "$1"
}

test_preset() {
  echo "=== test: $1 ($(elapsed))"
  # --no-tests=error: a run in which nothing ran is a failure, never a pass. Two at a time:
  # the integration tests spend most of their time waiting on brokers and disks, and each uses
  # its own ports and folders.
  ctest --preset "$1" --output-on-failure --no-tests=error --timeout 900 -j 2
}

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp"

sanitizers=1
[ "${TURNSTILED_SKIP_SANITIZERS:-0}" = "1" ] && sanitizers=0

build_preset release
sanitizer_builds=""
if [ "$sanitizers" = 1 ]; then
  # The release tests and the container test spend most of their time waiting, so the two
  # sanitizer builds run beside them, at idle CPU and I/O priority: they take what the tests
  # leave, and the tests barely notice them. They run in a session of their own, stopped as a
  # whole (and only they) if this script exits first.
  mkdir -p build
  sanitizer_log=build/sanitizer-builds.log
  echo "=== build: asan, then tsan, in the background ($(elapsed)); log: $sanitizer_log"
  setsid nice -n 19 ionice -c 3 bash -c \
    'bash scripts/build.sh asan && bash scripts/build.sh tsan' >"$sanitizer_log" 2>&1 &
  sanitizer_builds=$!
  trap 'kill -- -"$sanitizer_builds" 2>/dev/null || true' EXIT
fi
test_preset release
if [ "${TURNSTILED_SKIP_CONTAINER:-0}" != "1" ]; then
  echo "=== test: container ($(elapsed))"
  bash scripts/container-test.sh
fi
if [ "$sanitizers" = 1 ]; then
  echo "=== waiting for the sanitizer builds ($(elapsed))"
  if ! wait "$sanitizer_builds"; then
    tail -n 60 "$sanitizer_log"
    echo "=== the sanitizer builds failed ($(elapsed)); the whole log: $sanitizer_log"
    exit 1
  fi
  trap - EXIT
  # Under the sanitizers the same tests run on one real week instead of all of them, with
  # deadlines scaled for the slowdown: these runs are about threads and memory, not data.
  export TURNSTILED_TEST_WEEKS=1 TURNSTILED_TEST_SLOWDOWN=8
  test_preset asan
  test_preset tsan
fi
echo "=== all tests passed ($(elapsed))"
