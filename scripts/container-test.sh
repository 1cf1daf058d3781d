#!/usr/bin/env bash
# Builds the container image (Dockerfile) with podman and checks it:
#
#   1. the image builds (multi-stage: bookworm build stage, bookworm-slim runtime);
#   2. it runs as a non-root user, with the healthcheck, and every library the binary needs;
#   3. the shipped config and the compose config validate inside it;
#   4. `turnstiled demo --generate` runs inside it as that user, and /healthz answers 200;
#   5. the daemon container (default command, a mounted config, read-only root file system, no
#      capabilities, a named volume for its state) runs against a broker and a producer in
#      containers beside it: /healthz and /readyz answer 200, the image's healthcheck passes,
#      it writes the lake into the volume as its user, and `podman stop` exits it with 0.
#
# Usage: scripts/container-test.sh   (as root, on Debian 12: about 4.5 min the first time, 20 s
#                                    when the base tarball and the layer cache are there)
#
# Idempotent. It installs podman, runc, debootstrap and curl when missing, and makes the base
# images docker.io/library/debian:bookworm and :bookworm-slim from a debootstrap root file
# system when they are not present (no registry is needed; the rootfs tarball is cached under
# ${XDG_CACHE_HOME:-$HOME/.cache}/turnstiled-container/, so only the first run pays for
# debootstrap). Podman runs with runc, cgroupfs and host networking, and CONTAINERS_CONF points
# at a file with `default_ulimits = []` (CONTAINERS.md in ../shared beside this repository
# explains why). Containers listen on the host's loopback, on free ports. It removes only the
# containers and volumes it started (and the images of its own tags that a rebuild replaced).
# Prints PASS/FAIL lines and exits 1 on any failure.
#
# Environment: TURNSTILED_TEST_IMAGE (default turnstiled:test), DEBIAN_MIRROR (default
# http://deb.debian.org/debian), XDG_CACHE_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${TURNSTILED_TEST_IMAGE:-turnstiled:test}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/turnstiled-container
BASE_TAR=$CACHE/debian-bookworm-minbase-v2.tar   # bump when the recipe below changes
BASES=(docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim)
RUN_ID=tsd-ct-$$
START=$(date +%s)

failures=0
started=()        # containers this run started, removed on exit
volumes=()        # volumes this run made, removed on exit
bg_pids=()        # podman clients this run started in the background
phase_times=()

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
info() { echo "----  $*"; }
abort() {
  fail "$*"
  exit 1
}
phase_done() {  # phase_done NAME START
  phase_times+=("$(printf '%-28s %4ds' "$1" $(($(date +%s) - $2)))")
}

pm() { podman --runtime runc --cgroup-manager cgroupfs "$@"; }
# One-off containers of the image: without its healthcheck, whose timer podman would try to
# create through systemd (absent on machines like this one: it logs an error and goes on).
run1() { pm run --rm --network host --no-healthcheck "$@"; }

cleanup() {
  local rc=$?
  set +e
  for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null; done
  for c in "${started[@]}"; do
    pm rm -f -t 5 "$c" >/dev/null 2>&1
  done
  for v in "${volumes[@]}"; do
    pm volume rm -f "$v" >/dev/null 2>&1
  done
  if [ -n "${WORK:-}" ]; then rm -rf "$WORK"; fi
  echo
  echo "timings:"
  for t in "${phase_times[@]}"; do echo "  $t"; done
  printf '  %-28s %4ds\n' total $(($(date +%s) - START))
  if [ "$failures" -eq 0 ] && [ "$rc" -eq 0 ]; then
    echo "container-test: PASS"
  else
    echo "container-test: FAIL (exit $rc; $failures failed check(s))"
    [ "$rc" -ne 0 ] || rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nothing listens on, on the host's loopback (containers share the host's network).
picked=" "
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 20000))
    case "$picked" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      picked+="$p "
      echo "$p"
      return 0
    fi
  done
  return 1
}

http_code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" || true; }

# wait_http URL SECONDS [CONTAINER]: until URL answers 200; stops early if CONTAINER is gone.
wait_http() {
  local url=$1 deadline=$(($(date +%s) + $2)) c=${3:-}
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$(http_code "$url")" = 200 ] && return 0
    if [ -n "$c" ] && [ "$(pm inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" != true ]; then
      return 1
    fi
    sleep 0.2
  done
  return 1
}

[ "$(id -u)" -eq 0 ] || abort "run as root: it installs packages and runs rootful podman"
WORK=$(mktemp -d /tmp/turnstiled-container-test.XXXXXX)
chmod 0755 "$WORK"
mkdir -p "$CACHE"

# ---- 1. tools --------------------------------------------------------------------------------
t=$(date +%s)
missing=()
for p in podman runc debootstrap curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  info "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi
# The default ulimits cannot be set on these machines; nothing else changes.
printf '[containers]\ndefault_ulimits = []\n' >"$CACHE/containers.conf"
export CONTAINERS_CONF=$CACHE/containers.conf
pm --version >/dev/null || abort "podman does not run"
phase_done "tools" "$t"

# ---- 2. base images (no registry: debootstrap, cached) ---------------------------------------
t=$(date +%s)
need_base=()
for b in "${BASES[@]}"; do pm image exists "$b" || need_base+=("$b"); done
if [ ${#need_base[@]} -gt 0 ]; then
  if [ ! -s "$BASE_TAR" ]; then
    info "debootstrap --variant=minbase bookworm (once; cached in $BASE_TAR)"
    root=$WORK/rootfs
    debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
      { tail -20 "$WORK/debootstrap.log"; abort "debootstrap failed"; }
    # Like Debian's official images: the archive, updates and security in deb822 form, and
    # the slim variant's dpkg excludes (no docs, man pages or translations).
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    # What those excludes would have left out, and debootstrap's downloads and logs.
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/groff/* \
      "$root"/usr/share/lintian/* "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
      "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/* \
      "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
    tar --numeric-owner -C "$root" -cf "$BASE_TAR.partial" .
    rm -f "$CACHE"/debian-bookworm-minbase-v*.tar   # earlier recipes
    mv "$BASE_TAR.partial" "$BASE_TAR"
    rm -rf "$root"
  fi
  info "importing $BASE_TAR as ${need_base[*]}"
  id=$(pm import --change 'CMD ["bash"]' "$BASE_TAR" "${need_base[0]}" | tail -1)
  for b in "${need_base[@]:1}"; do pm tag "${need_base[0]}" "$b"; done
  [ -n "$id" ] || abort "podman import failed"
fi
pass "base images present: ${BASES[*]}"
phase_done "base images" "$t"

# ---- 3. build --------------------------------------------------------------------------------
t=$(date +%s)
info "podman build -t $IMAGE ."
# The build stage is tagged too ($IMAGE-build, from the layer cache), so that a rebuild can
# delete the images it replaces, with their layers, instead of leaving them dangling.
old_ids=()
for i in "$IMAGE" "$IMAGE-build"; do
  old_ids+=("$(pm image inspect -f '{{.Id}}' "$i" 2>/dev/null || true)")
done
# --format docker keeps HEALTHCHECK (the OCI format has no field for it). --pull=never: the
# bases were made above, and no registry can be reached here.
build() { pm build --network host --format docker --pull=never -f Dockerfile "$@" .; }
if build -t "$IMAGE" >"$WORK/build.log" 2>&1 &&
  build --target build -t "$IMAGE-build" >>"$WORK/build.log" 2>&1; then
  pass "image $IMAGE builds ($(($(date +%s) - t)) s)"
else
  tail -40 "$WORK/build.log"
  abort "image $IMAGE does not build"
fi
for old in "${old_ids[@]}"; do
  if [ -n "$old" ] && [ "$(pm image inspect -f '{{len .RepoTags}}' "$old" 2>/dev/null)" = 0 ]; then
    pm rmi "$old" >/dev/null 2>&1 || true   # an image this script tagged before, now replaced
  fi
done
phase_done "build" "$t"

# ---- 4. the image ----------------------------------------------------------------------------
t=$(date +%s)
user=$(pm image inspect -f '{{.Config.User}}' "$IMAGE")
case "$user" in
  "" | root | root:* | 0 | 0:*) fail "image User is '$user' (root)" ;;
  *) pass "image User is $user" ;;
esac
uid=$(run1 --entrypoint id "$IMAGE" -u)
if [ "$uid" != 0 ]; then pass "the container runs as uid $uid ($(run1 --entrypoint id "$IMAGE"))"; else fail "the container runs as root"; fi
hc=$(pm image inspect -f '{{json .HealthCheck}}' "$IMAGE" 2>/dev/null || true)
if [[ "$hc" == *healthz* ]]; then pass "image has a HEALTHCHECK on /healthz"; else fail "image has no HEALTHCHECK ($hc)"; fi
ep=$(pm image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$IMAGE")
if [ "$ep" = '["/usr/bin/turnstiled"] ["run","-c","/etc/turnstiled/turnstiled.yaml"]' ]; then
  pass "entrypoint and command: $ep"
else
  fail "entrypoint and command: $ep"
fi
if out=$(run1 --entrypoint ldd "$IMAGE" /usr/bin/turnstiled) &&
  ! grep -q 'not found' <<<"$out"; then
  pass "every shared library of /usr/bin/turnstiled is in the image"
else
  fail "missing libraries: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"
fi
if v=$(run1 "$IMAGE" version); then
  pass "turnstiled version: $(head -1 <<<"$v")"
else
  fail "turnstiled version: $v"
fi

# The shipped config (at /etc/turnstiled) and the compose config, mounted as a user would.
p=$(free_port)
if out=$(run1 -e PG_DSN='host=db dbname=mta user=turnstiled password=x' \
  -e TURNSTILED_METRICS_LISTEN="127.0.0.1:$p" "$IMAGE" validate -c /etc/turnstiled/turnstiled.yaml 2>&1); then
  pass "shipped config validates in the image: $out"
else
  fail "shipped config does not validate in the image: $out"
fi
p=$(free_port)
if out=$(run1 -v "$PWD/deploy/compose/turnstiled.yaml:/etc/turnstiled/turnstiled.yaml:ro" \
  -e PG_DSN='host=postgres dbname=mta user=turnstiled password=x' \
  -e TURNSTILED_METRICS_LISTEN="127.0.0.1:$p" "$IMAGE" validate -c /etc/turnstiled/turnstiled.yaml 2>&1); then
  pass "deploy/compose/turnstiled.yaml validates in the image: $out"
else
  fail "deploy/compose/turnstiled.yaml does not validate in the image: $out"
fi
phase_done "image checks" "$t"

# ---- 5. the demo, inside, as the image's user --------------------------------------------------
t=$(date +%s)
port=$(free_port)
demo=$RUN_ID-demo
info "podman run $IMAGE demo --generate --out /tmp/demo-out --metrics 127.0.0.1:$port"
started+=("$demo")
run1 --name "$demo" "$IMAGE" \
  demo --generate --out /tmp/demo-out --metrics "127.0.0.1:$port" >"$WORK/demo.log" 2>&1 &
demo_pid=$!
bg_pids+=("$demo_pid")
healthz_seen=no
deadline=$(($(date +%s) + 240))
while kill -0 "$demo_pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
  if [ "$healthz_seen" = no ] && [ "$(http_code "http://127.0.0.1:$port/healthz")" = 200 ]; then
    healthz_seen=yes
  fi
  sleep 0.1
done
if kill -0 "$demo_pid" 2>/dev/null; then
  tail -20 "$WORK/demo.log"
  abort "the demo did not finish within 240 s"
fi
demo_rc=0
wait "$demo_pid" || demo_rc=$?
rows=$(sed -n 's/.*results: \([0-9]*\) rows.*/\1/p' "$WORK/demo.log" | tail -1)
if [ "$demo_rc" -eq 0 ] && [ "${rows:-0}" -gt 0 ]; then
  pass "the demo runs inside as $user: $(grep -o 'results: .*' "$WORK/demo.log" | tail -1)"
else
  tail -30 "$WORK/demo.log"
  fail "the demo exited $demo_rc with ${rows:-no} rows"
fi
if [ "$healthz_seen" = yes ]; then
  pass "/healthz answered 200 on 127.0.0.1:$port while the demo ran"
else
  fail "/healthz never answered 200 on 127.0.0.1:$port during the demo"
fi
phase_done "demo" "$t"

# ---- 6. the daemon container: broker and producer beside it -----------------------------------
t=$(date +%s)
broker=$RUN_ID-broker
daemon=$RUN_ID-daemon
state=$RUN_ID-state
port=$(free_port)
started+=("$broker")
pm run -d --name "$broker" --network host --no-healthcheck "$IMAGE" \
  broker --topic turnstile-stream --bootstrap-file /tmp/bootstrap >/dev/null
bootstrap=""
for _ in $(seq 100); do
  bootstrap=$(pm exec "$broker" cat /tmp/bootstrap 2>/dev/null || true)
  [ -n "$bootstrap" ] && break
  sleep 0.2
done
[ -n "$bootstrap" ] || { pm logs "$broker" | tail -20; abort "the broker container wrote no bootstrap address"; }
pass "broker container up at $bootstrap"

if out=$(run1 --name "$RUN_ID-producer" "$IMAGE" \
  produce -b "$bootstrap" --generate --count 100000 2>&1); then
  pass "producer container sent 100000 generated readings"
else
  fail "producer container: $(tail -5 <<<"$out")"
fi

# The default command (run -c /etc/turnstiled/turnstiled.yaml) with a config mounted there:
# config/demo.yaml, whose relative out/ lands in the working folder /var/lib/turnstiled, a new
# named volume. Hardened as docs/DEPLOY.md suggests: read-only root, no capabilities.
started+=("$daemon")
volumes+=("$state")
pm run -d --name "$daemon" --network host \
  --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
  -v "$state:/var/lib/turnstiled" \
  -v "$PWD/config/demo.yaml:/etc/turnstiled/turnstiled.yaml:ro" \
  -e KAFKA_BOOTSTRAP="$bootstrap" \
  -e TURNSTILED_METRICS="127.0.0.1:$port" -e TURNSTILED_METRICS_LISTEN="127.0.0.1:$port" \
  "$IMAGE" >"$WORK/daemon.id" 2>"$WORK/daemon.err" ||
  { cat "$WORK/daemon.err"; abort "the daemon container does not start"; }
if wait_http "http://127.0.0.1:$port/healthz" 60 "$daemon"; then
  pass "daemon container: /healthz 200 on 127.0.0.1:$port"
else
  pm logs "$daemon" 2>&1 | tail -20
  fail "daemon container: /healthz does not answer 200"
fi
if wait_http "http://127.0.0.1:$port/readyz" 90 "$daemon"; then
  pass "daemon container: /readyz 200 (partitions assigned, sinks up)"
else
  fail "daemon container: /readyz does not answer 200"
fi
# The image's own HEALTHCHECK command, run by podman.
if hc_out=$(pm healthcheck run "$daemon" 2>&1); then
  pass "podman healthcheck run: ${hc_out:-healthy}"
else
  fail "podman healthcheck run: $hc_out"
fi
consumed=0
for _ in $(seq 150); do
  consumed=$(curl -s -m 3 "http://127.0.0.1:$port/metrics" |
    awk '/^turnstiled_consumed_records_total/ {s += $NF} END {printf "%d", s}')
  files=$(pm exec "$daemon" find out/lake -type f 2>/dev/null | wc -l || true)
  [ "$consumed" -ge 100000 ] && [ "$files" -gt 0 ] && break
  sleep 0.4
done
if [ "$consumed" -ge 100000 ] && [ "$files" -gt 0 ]; then
  # shellcheck disable=SC2016  # expanded in the container
  owner=$(pm exec "$daemon" sh -c 'stat -c %U "$(find out/lake -type f | head -1)"')
  pass "daemon container consumed $consumed records and wrote $files lake files as $owner"
else
  pm logs "$daemon" 2>&1 | tail -20
  fail "daemon container consumed $consumed records, wrote ${files:-0} lake files"
fi
pm stop -t 60 "$daemon" >/dev/null 2>>"$WORK/daemon.err"
code=$(pm inspect -f '{{.State.ExitCode}}' "$daemon")
if [ "$code" = 0 ]; then
  pass "daemon container stops on SIGTERM with exit 0"
else
  pm logs "$daemon" 2>&1 | tail -20
  fail "daemon container exited $code on SIGTERM"
fi
if kept=$(run1 -v "$state:/var/lib/turnstiled" --entrypoint find "$IMAGE" out/lake out/state -type f) &&
  grep -q '^out/lake/' <<<"$kept" && grep -q '^out/state/' <<<"$kept"; then
  pass "the lake and the checkpoints are in the volume $state ($(wc -l <<<"$kept") files)"
else
  fail "the volume $state lacks the lake or the checkpoints: $kept"
fi
phase_done "daemon" "$t"

# ---- what the image holds ----------------------------------------------------------------------
size=$(pm image inspect -f '{{.Size}}' "$IMAGE")
info "image $IMAGE: $((size / 1000000)) MB ($(pm images --format '{{.Size}}' "$IMAGE" | head -1))"
# shellcheck disable=SC2016  # dpkg-query's own ${...}
base_pkgs=$(run1 --entrypoint dpkg-query "${BASES[1]}" -W -f '${Package}\n')
# shellcheck disable=SC2016
image_pkgs=$(run1 --entrypoint dpkg-query "$IMAGE" -W -f '${Package}=${Version}\n')
added=$(awk -F= 'NR == FNR { base[$1]; next } !($1 in base)' <(echo "$base_pkgs") <(echo "$image_pkgs") |
  tr '\n' ' ')
info "packages the runtime stage adds to bookworm-slim: $added"

[ "$failures" -eq 0 ]
