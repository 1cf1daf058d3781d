#!/usr/bin/env bash
# Emit delay (SPEC §9: p99 under 5 ms): from the watermark passing a window's end to the sink's
# acknowledgement, as turnstiled_emit_delay_seconds measures it. Prints figures; asserts nothing.
#
#   bash bench/emit_delay.sh [--build-dir DIR] [--no-build] [--rate N] [--seconds S]
#                            [--window DUR] [--stations N]
#
# First measures the floor: one synced write of a journal record's size on the temp dir's
# filesystem, 300 times with nothing else running (bench/sync_floor.cc), since every flush pays
# one. Then starts `turnstiled broker --partitions 6`, then `turnstiled run` (Kafka source, file
# sink, --window tumbling windows (default 4h, as in SPEC §9) with allowed_lateness 0, metrics
# on a free port), then a
# paced `turnstiled produce --generate --rate N` (default 100000) for --seconds (default 30).
# The generator's event time advances with its output (each of its ~4,400 devices reads every
# 4 h of event time, so 100k records/s is about 90 event hours a second): many windows close
# every second. Once the pipeline has consumed everything, /metrics is scraped and the emit
# delay's p50 and p99 are read from the histogram's buckets (linear within a bucket, as
# Prometheus' histogram_quantile does); a histogram has no max, so the last line gives the bound
# of the highest non-empty bucket ("max <= X").
#
# Output: a `sync_floor:` line (p50, p99 and max of the synced writes alone), a `records:` line
# (produced, the producer's achieved rate, consumed), a `sink:` line
# (flushes, files, flush duration), one line starting with `emit_delay:` (windows: distinct
# windows in the lake; emits: acknowledged submissions, each holding every window one watermark
# step closed on one input partition) and an `end_to_end:` line
# (turnstiled_end_to_end_latency_seconds: from the newest record's append time in the broker to
# the same acknowledgement). Builds the Release binary into --build-dir (default build/bench)
# unless --no-build. Everything goes to a temp dir removed at exit; it stops only
# the processes it started, by PID.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build/bench"
do_build=1
rate=100000
seconds=30
window=4h
stations=400
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build=$(cd "$2" 2> /dev/null && pwd || echo "$2"); shift 2 ;;
    --no-build) do_build=0; shift ;;
    --rate) rate=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --stations) stations=$2; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "bench/emit_delay.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
for tool in curl awk; do
  command -v "$tool" > /dev/null || { echo "bench/emit_delay.sh: '$tool' is required" >&2; exit 2; }
done

if [[ $do_build -eq 1 ]]; then
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
  fi
  cmake --build "$build" --target turnstiled turnstiled_bench_sync_floor > /dev/null
fi
bin="$build/turnstiled"
[[ -x "$bin" ]] || { echo "bench/emit_delay.sh: missing $bin (build it, or drop --no-build)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/turnstiled-emit.XXXXXX")
broker_pid=""
run_pid=""
produce_pid=""
# Stops one process we started: SIGTERM, then SIGKILL if it is still there after 20 s.
stop_pid() {
  local pid=$1 i
  [[ -n "$pid" ]] || return 0
  kill "$pid" 2> /dev/null || return 0
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
}
cleanup() {
  stop_pid "$produce_pid"
  stop_pid "$run_pid"
  stop_pid "$broker_pid"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { echo "[${SECONDS}s] $*" >&2; }
die() {
  echo "bench/emit_delay.sh: $*" >&2
  for f in "$tmp"/*.log; do
    [[ -s "$f" ]] && { echo "--- last lines of $(basename "$f"):" >&2; tail -5 "$f" >&2; }
  done
  exit 1
}

# wait_for SECONDS WHAT COMMAND...: polls COMMAND every 50 ms until it succeeds; fails after
# SECONDS, or as soon as one of the processes we started has exited.
wait_for() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@"; do
    for pid in $broker_pid $run_pid; do
      kill -0 "$pid" 2> /dev/null || die "a process exited while waiting for $what"
    done
    ((SECONDS < deadline)) || die "$what: not within $limit s"
    sleep 0.05
  done
}

# The floor under the delay: one synced write of a journal record's size on this filesystem,
# alone, before anything else runs (bench/sync_floor.cc).
floor_bin="$build/bench/turnstiled_bench_sync_floor"
if [[ -x "$floor_bin" ]]; then
  say "sync floor: 300 synced writes, 20 ms apart"
  "$floor_bin" "$tmp" > "$tmp/sync_floor.out" || die "turnstiled_bench_sync_floor failed"
  cat "$tmp/sync_floor.out"
else
  echo "sync_floor: skipped ($floor_bin is not built)"
fi

topic=emit-delay
say "broker: 6 partitions"
"$bin" broker --partitions 6 --topic "$topic" --bootstrap-file "$tmp/bootstrap" \
  > "$tmp/broker.out" 2> "$tmp/broker.log" &
broker_pid=$!
wait_for 30 "the broker" test -s "$tmp/bootstrap"
bootstrap=$(cat "$tmp/bootstrap")

cat > "$tmp/run.yaml" << EOF
source:
  type: kafka
  kafka:
    bootstrap_servers: $bootstrap
    topics: [$topic]
    group_id: emit-delay-$$
    start_offset: earliest
    consumer_threads: 2
    properties:
      session.timeout.ms: "6000"
      heartbeat.interval.ms: "500"
format:
  type: mta-csv
  timezone: America/New_York
  counters: cumulative
window:
  type: tumbling
  size: $window
  allowed_lateness: 0s
sinks:
  - name: lake
    type: file
    path: $tmp/lake
    format: csv
    compression: zstd
metrics:
  listen: 127.0.0.1:0
state:
  dir: $tmp/state
  changelog_topic: ""
EOF

say "turnstiled run: $window tumbling windows, allowed_lateness 0, file sink"
"$bin" run -c "$tmp/run.yaml" > "$tmp/run.out" 2> "$tmp/run.log" &
run_pid=$!
# The metrics port (0 in the config: a free one) is in the log line that says it is served.
metrics_port() { grep -F 'msg="serving /metrics' "$tmp/run.log" | sed -nE 's/.* port=([0-9]+).*/\1/p'; }
have_port() { [[ -n "$(metrics_port)" ]]; }
wait_for 60 "the metrics endpoint" have_port
url="http://127.0.0.1:$(metrics_port)"
# Ready: it holds its partitions.
wait_for 60 "/readyz" curl -fs -o /dev/null "$url/readyz"

count=$((rate * seconds))
say "produce: --generate --rate $rate --count $count (~${seconds}s)"
"$bin" produce -b "$bootstrap" --topic "$topic" --generate --rate "$rate" --count "$count" \
  --stations "$stations" > /dev/null 2> "$tmp/produce.log" &
produce_pid=$!
wait "$produce_pid" || die "produce failed"
produce_pid=""
produced=$(grep -F 'msg=done' "$tmp/produce.log" | sed -nE 's/.* records=([0-9]+).*/\1/p')
produce_rate=$(grep -F 'msg=done' "$tmp/produce.log" | sed -nE 's/.* rate=([0-9]+).*/\1/p')
[[ -n "$produced" ]] || die "no 'done' line from produce"

scrape() { curl -fs "$url/metrics" > "$tmp/metrics.txt"; }
# metric NAME: the sum of the samples of NAME (any labels) in the last scrape.
metric() {
  awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f\n", s + 0 }' \
    "$tmp/metrics.txt"
}
# Everything produced has been read, and the emits it released are acknowledged (the delay's
# count stops moving and no rows wait in the sink's queue).
last_count=-1
settled() {
  scrape || return 1
  [[ $(metric turnstiled_consumed_records_total) -ge $produced ]] || return 1
  [[ $(metric turnstiled_sink_queue_depth_batches) -eq 0 ]] || return 1
  local c
  c=$(metric turnstiled_emit_delay_seconds_count)
  if [[ "$c" != "$last_count" ]]; then
    last_count=$c
    sleep 0.5
    return 1
  fi
}
wait_for 120 "consuming all $produced records" settled

windows=$(find "$tmp/lake" -name 'part-*' 2> /dev/null | sed -E 's|.*/part-([0-9TZ]+-[0-9TZ]+).*|\1|' |
  sort -u | wc -l)
consumed=$(metric turnstiled_consumed_records_total)
echo "records: produced=$produced produce_rate=${produce_rate}/s consumed=$consumed"
# histogram NAME: "count p50_ms p99_ms max_le_ms" of histogram NAME (all its label sets added
# up) in the last scrape. Quantiles interpolate linearly within a bucket, from 0 for the first,
# as histogram_quantile does; max_le_ms is the bound of the highest non-empty bucket.
histogram() {
  awk -v name="$1" '
    index($1, name "_bucket{") == 1 {
      match($1, /le="[^"]+"/)
      le = substr($1, RSTART + 4, RLENGTH - 5)
      cum[le] += $NF
      if (!(le in seen)) { seen[le] = 1; bounds[++n] = le }
    }
    END {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) {
        a = bounds[i] == "+Inf" ? 1e300 : bounds[i] + 0
        b = bounds[j] == "+Inf" ? 1e300 : bounds[j] + 0
        if (b < a) { t = bounds[i]; bounds[i] = bounds[j]; bounds[j] = t }
      }
      total = n > 0 ? cum[bounds[n]] : 0
      if (total == 0) { print "0 - - -"; exit }
      split("0.5 0.99", qs, " ")
      for (k = 1; k <= 2; k++) {
        want = qs[k] * total; prev_le = 0; prev_c = 0
        for (i = 1; i <= n; i++) {
          c = cum[bounds[i]]
          if (c >= want) {
            if (bounds[i] == "+Inf") { q[k] = "inf"; break }
            le = bounds[i] + 0
            f = c > prev_c ? (want - prev_c) / (c - prev_c) : 1
            q[k] = sprintf("%.3f", 1000 * (prev_le + (le - prev_le) * f))
            break
          }
          prev_le = bounds[i] + 0; prev_c = c
        }
      }
      for (i = 1; i <= n; i++) if (cum[bounds[i]] >= total) { top = bounds[i]; break }
      printf "%d %s %s %s\n", total, q[1], q[2], top == "+Inf" ? "inf" : sprintf("%g", 1000 * top)
    }' "$tmp/metrics.txt"
}

read -r flushes flush_p50 flush_p99 flush_max < <(histogram turnstiled_sink_flush_duration_seconds)
echo "sink: flushes=$flushes files=$(metric turnstiled_sink_files_total)" \
  "flush_p50_ms=$flush_p50 flush_p99_ms=$flush_p99 flush_max_le_ms=$flush_max"
read -r emits p50 p99 max_le < <(histogram turnstiled_emit_delay_seconds)
echo "emit_delay: window=$window rate=${rate}/s windows=$windows emits=$emits p50_ms=$p50" \
  "p99_ms=$p99 max_le_ms=$max_le"
read -r e2e_n e2e_p50 e2e_p99 e2e_max < <(histogram turnstiled_end_to_end_latency_seconds)
echo "end_to_end: window=$window emits=$e2e_n p50_ms=$e2e_p50 p99_ms=$e2e_p99 max_le_ms=$e2e_max"
