#!/usr/bin/env bash
# The core-pipeline benchmarks of SPEC §9. Prints figures; asserts nothing about time.
#
#   bash bench/run.sh [--build-dir DIR] [--no-build] [--repeat N] [--kafka-weeks N]
#
# Checkpoints: bench/checkpoint.cc times the export, encoding and write of 1 M open windows.
# File path: the real MTA weeks (../shared/data/mta beside the repository) through
#   `turnstiled run` with a file source, cumulative counters, 4 h tumbling windows,
#   America/New_York, from plain text (decompressed into a temp dir first) and from .zst,
#   next to `zstd -dc` of the same files alone.
# Kafka path: `turnstiled broker --partitions 6`, `turnstiled produce --replay` of the first
#   --kafka-weeks 2024 weeks, then, on the same topic, the bare librdkafka counting consumer
#   (bench/bare_consumer.cc) and `turnstiled run --available-now` with 2 consumer threads.
#
# Each case runs --repeat times (default 3); the table shows the median and the best.
# CPU is user+sys of the measured process and all its threads (wait4 rusage).
# Builds the Release binaries into --build-dir (default build/bench) unless --no-build.
# Everything it writes goes to a temp dir that is removed at exit; it stops only the
# processes it started, by PID.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build/bench"
do_build=1
repeat=3
kafka_weeks=4
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build=$(cd "$2" 2>/dev/null && pwd || echo "$2"); shift 2 ;;
    --no-build) do_build=0; shift ;;
    --repeat) repeat=$2; shift 2 ;;
    --kafka-weeks) kafka_weeks=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

data="${TURNSTILED_MTA_DIR:-$repo/../shared/data/mta}"
if ! compgen -G "$data/turnstile_*.txt.zst" > /dev/null; then
  echo "bench/run.sh: SKIPPED: no real MTA weeks in $data (expected ../shared/data/mta beside" \
       "the repository, or set TURNSTILED_MTA_DIR)."
  exit 0
fi
for tool in zstd awk; do
  command -v "$tool" > /dev/null || { echo "bench/run.sh: '$tool' is required" >&2; exit 2; }
done

if [[ $do_build -eq 1 ]]; then
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
  fi
  cmake --build "$build" --target turnstiled turnstiled_bare_consumer turnstiled_bench_timed \
    turnstiled_bench_checkpoint > /dev/null
fi
bin="$build/turnstiled"
bare="$build/bench/turnstiled_bare_consumer"
timed="$build/bench/turnstiled_bench_timed"
for b in "$bin" "$bare" "$timed"; do
  [[ -x "$b" ]] || { echo "bench/run.sh: missing $b (build it, or drop --no-build)" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/turnstiled-bench.XXXXXX")
broker_pid=""
cleanup() {
  if [[ -n "$broker_pid" ]]; then
    kill "$broker_pid" 2> /dev/null || true
    wait "$broker_pid" 2> /dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
say() { echo "[${SECONDS}s] $*" >&2; }
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers

# field KEY FILE: the value of KEY=value in the one-line FILE.
field() { tr ' ' '\n' < "$2" | awk -F= -v k="$1" '$1 == k { print $2; exit }'; }

# log_ms MSG FILE: epoch milliseconds of the last log line of FILE whose msg is MSG.
log_ms() {
  grep -F "msg=\"$1\"" "$2" | tail -1 | sed -E 's/^ts=([^ ]+) .*/\1/' |
    { read -r ts && date -u -d "${ts%Z}" +%s%3N; }
}

results="$tmp/results"
: > "$results"
# record CASE RECORDS WALL CPU [STEADY_SECONDS]: one measurement.
record() { echo "$1 $2 $3 $4 ${5:--}" >> "$results"; }

# measure CASE RECORDS -- COMMAND...: runs COMMAND with its output in $tmp/CASE.N.log.
measure() {
  local name=$1 records=$2 i
  shift 3
  say "  $name"
  for ((i = 1; i <= repeat; i++)); do
    local log="$tmp/$name.$i.log"
    if ! "$timed" "$tmp/t" "$@" > "$log" 2>&1; then
      echo "bench/run.sh: $name failed; last lines of its output:" >&2
      tail -5 "$log" >&2
      exit 1
    fi
    local cpu
    cpu=$(awk -v u="$(field user "$tmp/t")" -v s="$(field sys "$tmp/t")" 'BEGIN{print u+s}')
    record "$name" "$records" "$(field wall "$tmp/t")" "$cpu"
  done
}

# The pipeline settings of SPEC §9; $1 is the source block, $2 the sink block.
write_config() {
  cat > "$3" << EOF
$1
format:
  type: mta-csv
  timezone: America/New_York
  counters: cumulative
window:
  type: tumbling
  size: 4h
$2
metrics:
  enabled: false
state:
  dir: \${BENCH_OUT}/state
EOF
}
file_sink='sinks:
  - name: lake
    type: file
    path: ${BENCH_OUT}/lake
    format: csv
    compression: none'
stdout_sink='sinks:
  - name: console
    type: stdout'

# ---------------------------------------------------------------- file path

say "decompressing the weeks into $tmp"
mkdir -p "$tmp/plain" "$tmp/zst-all" "$tmp/zst-2024"
zst_all=()
zst_2024=()
for f in "$data"/turnstile_*.txt.zst; do
  name=$(basename "$f" .zst)
  zstd -qdc "$f" > "$tmp/plain/$name"
  ln -s "$f" "$tmp/zst-all/$name.zst"
  zst_all+=("$f")
  if [[ $name == turnstile_24* ]]; then
    ln -s "$f" "$tmp/zst-2024/$name.zst"
    zst_2024+=("$f")
  fi
done
count_lines() { cat "$@" | grep -vc '^C/A,'; }
all_records=$(count_lines "$tmp"/plain/turnstile_*.txt)
recs_2024=$(count_lines "$tmp"/plain/turnstile_24*.txt)
weeks_all=$(ls "$tmp"/plain | wc -l)
weeks_2024=$(ls "$tmp"/plain/turnstile_24* | wc -l)

file_source() {
  printf 'source:\n  type: file\n  file:\n    paths:\n      - "%s"\n' "$1"
}
write_config "$(file_source "$tmp/plain/turnstile_*.txt")" "$file_sink" "$tmp/plain-all.yaml"
write_config "$(file_source "$tmp/zst-all/turnstile_*.txt.zst")" "$file_sink" "$tmp/zst-all.yaml"
write_config "$(file_source "$tmp/plain/turnstile_24*.txt")" "$file_sink" "$tmp/plain-2024.yaml"
write_config "$(file_source "$tmp/zst-2024/turnstile_*.txt.zst")" "$file_sink" "$tmp/zst-2024.yaml"
write_config "$(file_source "$tmp/plain/turnstile_24*.txt")" "$stdout_sink" \
  "$tmp/plain-2024-stdout.yaml"

# run_file CASE RECORDS CONFIG [> FILE]: one file-source run per repeat, fresh output dir.
run_file() {
  local name=$1 records=$2 cfg=$3 i
  say "  $name"
  for ((i = 1; i <= repeat; i++)); do
    # A fresh output folder per run, and nothing deleted until the end: ext4 searches its
    # recently deleted inodes when it allocates new ones, which made each run after an
    # `rm -rf` of the last run's 19,000 files 3 to 4 times slower (see "Noise" in
    # docs/BENCHMARKS.md).
    local out="$tmp/out/$name.$i"
    # The file sink syncs the filesystem (syncfs) when it writes many files at once; write
    # back what this script wrote first, so the run does not pay for it.
    sync
    local log="$tmp/$name.$i.log"
    if ! BENCH_OUT="$out" "$timed" "$tmp/t" "$bin" run -c "$cfg" > /dev/null 2> "$log"
    then
      echo "bench/run.sh: $name failed:" >&2
      tail -5 "$log" >&2
      exit 1
    fi
    local cpu
    cpu=$(awk -v u="$(field user "$tmp/t")" -v s="$(field sys "$tmp/t")" 'BEGIN{print u+s}')
    record "$name" "$records" "$(field wall "$tmp/t")" "$cpu"
  done
  # What the pipeline aggregated (records dropped before a window, e.g. as future, are not in it).
  grep -F 'msg="input complete"' "$tmp/$name.$repeat.log" | sed -E 's/.* records=([0-9]+).*/\1/' \
    > "$tmp/$name.aggregated"
}

say "file path: $weeks_all weeks ($all_records records), $repeat runs per case"
run_file file-plain-all "$all_records" "$tmp/plain-all.yaml"
run_file file-zst-all "$all_records" "$tmp/zst-all.yaml"
measure zstd-dc-all "$all_records" -- sh -c 'zstd -qdc "$@" > /dev/null' sh \
  "${zst_all[@]}"
say "file path: the $weeks_2024 consecutive 2024 weeks ($recs_2024 records)"
run_file file-plain-2024 "$recs_2024" "$tmp/plain-2024.yaml"
run_file file-zst-2024 "$recs_2024" "$tmp/zst-2024.yaml"
measure zstd-dc-2024 "$recs_2024" -- sh -c 'zstd -qdc "$@" > /dev/null' sh \
  "${zst_2024[@]}"
run_file file-plain-2024-stdout "$recs_2024" "$tmp/plain-2024-stdout.yaml"

# pandas groupby reference, only where pandas is already installed.
pandas_note="pandas: skipped (python3 has no pandas module; install python3-pandas to compare)"
if command -v python3 > /dev/null && python3 -c 'import pandas' 2> /dev/null; then
  cat > "$tmp/pandas_groupby.py" << 'EOF'
import sys
import pandas as pd

frames = [pd.read_csv(p, dtype=str) for p in sys.argv[1:]]
df = pd.concat(frames, ignore_index=True)
df.columns = [c.strip() for c in df.columns]
t = pd.to_datetime(df["DATE"] + " " + df["TIME"], format="%m/%d/%Y %H:%M:%S")
df["t"] = t.dt.tz_localize("America/New_York", ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
df["device"] = df["C/A"] + "+" + df["UNIT"] + "+" + df["SCP"]
df["ENTRIES"] = df["ENTRIES"].astype("int64")
df["EXITS"] = df["EXITS"].astype("int64")
df = df.sort_values(["device", "t"], kind="stable")
df = df[~df.duplicated(["device", "t"])]
for c in ("ENTRIES", "EXITS"):
    d = df.groupby("device")[c].diff().abs()
    df[c + "_d"] = d.where(d <= 10000, 0).fillna(0)
df["window_start"] = df["t"].dt.floor("4h")
out = df.groupby(["STATION", "window_start"]).agg(
    entries=("ENTRIES_d", "sum"), exits=("EXITS_d", "sum"), events=("t", "size"))
print(len(out), file=sys.stderr)
EOF
  measure pandas-2024 "$recs_2024" -- python3 "$tmp/pandas_groupby.py" "$tmp"/plain/turnstile_24*.txt
  pandas_note=""
fi

# ---------------------------------------------------------------- Kafka path

kafka_note=""
mapfile -t kafka_files < <(ls "$data"/turnstile_24*.txt.zst | head -n "$kafka_weeks")
say "kafka path: broker with 6 partitions, replaying ${#kafka_files[@]} week(s)"
"$bin" broker --partitions 6 --topic bench --bootstrap-file "$tmp/bootstrap" \
  > "$tmp/broker.out" 2> "$tmp/broker.log" &
broker_pid=$!
for ((i = 0; i < 300; i++)); do
  [[ -s "$tmp/bootstrap" ]] && break
  kill -0 "$broker_pid" 2> /dev/null || { echo "bench/run.sh: broker exited" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$tmp/bootstrap" ]] || { echo "bench/run.sh: broker not ready in 30 s" >&2; exit 1; }
bootstrap=$(cat "$tmp/bootstrap")
"$bin" produce -b "$bootstrap" --topic bench --replay "${kafka_files[@]}" 2> "$tmp/produce.log"
produced=$(grep -F 'msg=done' "$tmp/produce.log" | sed -E 's/.* records=([0-9]+).*/\1/')

kafka_source="source:
  type: kafka
  kafka:
    bootstrap_servers: $bootstrap
    topics: [bench]
    group_id: \${BENCH_GROUP}
    start_offset: earliest
    consumer_threads: 2
    properties:
      session.timeout.ms: 6000
      heartbeat.interval.ms: 500"
write_config "$kafka_source" "$file_sink" "$tmp/kafka-file.yaml"
write_config "$kafka_source" "$stdout_sink" "$tmp/kafka-stdout.yaml"

kafka_records=""
for ((i = 1; i <= repeat; i++)); do
  # (a) the bare consumer
  "$timed" "$tmp/t" "$bare" -b "$bootstrap" -t bench > "$tmp/bare.out" 2> "$tmp/bare.log" || {
    echo "bench/run.sh: bare consumer failed:" >&2; cat "$tmp/bare.out" "$tmp/bare.log" >&2; exit 1; }
  kafka_records=$(field count "$tmp/bare.out")
  if [[ $i -eq 1 ]]; then
    lost=$(field low_nonzero "$tmp/bare.out")
    if [[ "$kafka_records" != "$produced" || "$lost" != 0 ]]; then
      kafka_note="WARNING: the topic holds $kafka_records of $produced produced records"
      kafka_note+=" ($lost partitions lost their start); use fewer --kafka-weeks"
    fi
  fi
  cpu=$(awk -v u="$(field user "$tmp/t")" -v s="$(field sys "$tmp/t")" 'BEGIN{print u+s}')
  record kafka-bare "$kafka_records" "$(field wall "$tmp/t")" "$cpu" \
    "$(field seconds "$tmp/bare.out")"

  # (b) turnstiled, a fresh group each time, from the earliest offsets; with the file sink,
  # then with the stdout sink, to tell the pipeline's cost from the sink's.
  for sink in file stdout; do
    sync
    name=kafka-turnstiled
    [[ $sink == file ]] || name=kafka-turnstiled-stdout
    log="$tmp/$name.$i.log"
    BENCH_OUT="$tmp/out/$name.$i" BENCH_GROUP="bench-$$-$i-$sink-$RANDOM" \
      "$timed" "$tmp/t" "$bin" run -c "$tmp/kafka-$sink.yaml" --available-now > /dev/null \
      2> "$log" || {
      echo "bench/run.sh: turnstiled (kafka, $sink sink) failed:" >&2; tail -5 "$log" >&2; exit 1; }
    got=$(grep -F 'msg="input complete"' "$log" | sed -E 's/.* records=([0-9]+).*/\1/')
    [[ "$got" == "$kafka_records" ]] ||
      kafka_note+=" WARNING: turnstiled ($sink sink) aggregated $got of $kafka_records records."
    # Steady state: from the last "partitions assigned" (the group has settled) to the end of
    # input, which still includes the final emit and the sink's last flush.
    steady=$(awk -v a="$(log_ms "partitions assigned" "$log")" \
      -v b="$(log_ms "input complete" "$log")" 'BEGIN{printf "%.3f", (b - a) / 1000}')
    cpu=$(awk -v u="$(field user "$tmp/t")" -v s="$(field sys "$tmp/t")" 'BEGIN{print u+s}')
    record "$name" "$kafka_records" "$(field wall "$tmp/t")" "$cpu" "$steady"
  done
done

say "done"

# ---------------------------------------------------------------- table

# Per case: median and best wall, median CPU, and rates. For the bare consumer the "steady"
# column is its own timer (assignment to last message); for turnstiled it is the time from
# the group settling to the end of input.
summary="$tmp/summary"
sort -k1,1 -k3,3g "$results" | awk '
  { n[$1]++; rec[$1] = $2; wall[$1, n[$1]] = $3; cpu[$1, n[$1]] = $4; st[$1, n[$1]] = $5 }
  END {
    for (c in n) {
      k = n[c]; m = int((k + 1) / 2)
      # CPU and steady medians, sorted separately
      for (i = 1; i <= k; i++) { cs[i] = cpu[c, i]; ss[i] = st[c, i] }
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) {
        if (cs[j] < cs[i]) { t = cs[i]; cs[i] = cs[j]; cs[j] = t }
        if (ss[j] != "-" && ss[j] < ss[i]) { t = ss[i]; ss[i] = ss[j]; ss[j] = t }
      }
      printf "%s %d %.3f %.3f %.3f %s\n", c, rec[c], wall[c, m], wall[c, 1], cs[m], ss[m]
    }
  }' > "$summary"

get() { awk -v c="$1" -v f="$2" '$1 == c { print $f }' "$summary"; }
rate() { awk -v r="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", r / s; else print "-" }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "-" }'; }

echo
echo "turnstiled benchmarks ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo "commit $(git -C "$repo" rev-parse --short HEAD 2> /dev/null || echo unknown), $repeat runs per case; median (best) wall"
echo "CPU = user+sys of the measured process; rate/CPU-s = records per CPU-second (median)"
echo
printf '%-24s %10s %17s %8s %21s %12s %s\n' case records "wall s" "CPU s" "records/s" "rate/CPU-s" note
row() {
  local c=$1 note=${2:-}
  local r w b cpu
  r=$(get "$c" 2); w=$(get "$c" 3); b=$(get "$c" 4); cpu=$(get "$c" 5)
  [[ -n "$r" ]] || return 0
  printf '%-24s %10s %8s (%6s) %8s %10s (%8s) %12s %s\n' "$c" "$r" "$w" "$b" "$cpu" \
    "$(rate "$r" "$w")" "$(rate "$r" "$b")" "$(rate "$r" "$cpu")" "$note"
}
agg_all=$(cat "$tmp/file-plain-all.aggregated" 2> /dev/null || echo "?")
row file-plain-all "file sink, csv, none; $agg_all of $all_records aggregated"
row file-zst-all "as above, from .zst"
row zstd-dc-all "zstd -dc > /dev/null"
row file-plain-2024 "2024 weeks only; file sink"
row file-zst-2024 "as above, from .zst"
row zstd-dc-2024 "zstd -dc > /dev/null"
row file-plain-2024-stdout "stdout sink > /dev/null"
row pandas-2024 "pandas groupby"
row kafka-bare "bare librdkafka consumer"
row kafka-turnstiled "turnstiled run --available-now, 2 threads; file sink"
row kafka-turnstiled-stdout "as above, stdout sink > /dev/null"
echo
for set in all 2024; do
  echo "from .zst vs zstd -dc ($set): wall rate $(pct "$(get zstd-dc-$set 3)" "$(get file-zst-$set 3)")," \
    "rate per CPU-s $(pct "$(get zstd-dc-$set 5)" "$(get file-zst-$set 5)") (target >= 80%)"
done
rb=$(rate "$(get kafka-bare 2)" "$(get kafka-bare 6)")
rt=$(rate "$(get kafka-turnstiled 2)" "$(get kafka-turnstiled 3)")
rs=$(rate "$(get kafka-turnstiled 2)" "$(get kafka-turnstiled 6)")
echo "kafka: bare consumer $rb records/s (its own timer, assignment to last message)"
echo "kafka: turnstiled end-to-end $rt records/s ($(pct "$rt" "$rb") of bare; includes start," \
  "group join and shutdown)"
echo "kafka: turnstiled steady $rs records/s ($(pct "$rs" "$rb") of bare; group settled to end" \
  "of input, median $(get kafka-turnstiled 6) s) (target >= 90%)"
rs2=$(rate "$(get kafka-turnstiled-stdout 2)" "$(get kafka-turnstiled-stdout 6)")
echo "kafka: turnstiled steady, stdout sink $rs2 records/s ($(pct "$rs2" "$rb") of bare)"
[[ -z "$pandas_note" ]] || echo "$pandas_note"
[[ -z "$kafka_note" ]] || echo "$kafka_note"
# Checkpoint cost (SPEC §6): export, encode and write the state of 1 M open windows over 6
# partitions, into this run's temp dir.
echo "$("$build/bench/turnstiled_bench_checkpoint" --windows 1000000 --partitions 6 --dir "$tmp/ckpt")"
