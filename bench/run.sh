#!/usr/bin/env bash
# The core-pipeline benchmarks of SPEC §9. Prints figures; asserts nothing about time.
#
#   bash bench/run.sh [--build-dir DIR] [--no-build] [--repeat N] [--kafka-weeks N]
#
# Prerequisites: the build's (scripts/install-deps.sh), zstd and awk; for the peers, node and
# npm (DuckDB, @duckdb/node-api, installed into the temp dir or TURNSTILED_DUCKDB_NODE_DIR)
# and Debian's python3-pandas (installed with apt-get when missing and run as root). A peer that
# cannot be had is skipped.
#
# Checkpoints: bench/checkpoint.cc times the export, encoding and write of 1 M open windows.
# Stages: bench/stages.cc times the decoder alone, the router, and one shard alone, on one
#   thread, over the plain 2024 weeks: the pipeline's CPU per record less these is what its
#   hand-offs, reading and output cost.
# File path: the real MTA weeks (../shared/data/mta beside the repository) through
#   `turnstiled run` with a file source, cumulative counters, 4 h tumbling windows,
#   America/New_York, from plain text (decompressed into a temp dir first) and from .zst,
#   next to `zstd -dc` of the same files alone. The whole lake job (7 weeks 2024, .zst in,
#   file sink with zstd, default layout) against the peers bench/peers/duckdb.mjs (DuckDB,
#   SQL window functions, 2 threads, reading the .zst itself) and bench/peers/pandas_peer.py
#   (pandas, plain text), which compute the same rows; their row count and sums are checked
#   against the lake's.
# Kafka path: `turnstiled broker --partitions 6`, `turnstiled produce --replay` of the first
#   --kafka-weeks 2024 weeks, then, on the same topic, the bare librdkafka counting consumer
#   (bench/bare_consumer.cc) and `turnstiled run --available-now` with 2 consumer threads.
# RSS per open window: 10k, 100k and 1M open (station, window) aggregates from generated
#   records (`turnstiled produce --generate --dry-run`), RSS while they are open and at peak.
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
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
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
    turnstiled_bench_checkpoint turnstiled_bench_stages turnstiled_bench_sync_floor > /dev/null
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
# The data lake as shipped: zstd files, the default layout (partition_by left out).
lake_sink='sinks:
  - name: lake
    type: file
    path: ${BENCH_OUT}/lake
    format: csv
    compression: zstd'

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
write_config "$(file_source "$tmp/zst-2024/turnstile_*.txt.zst")" "$lake_sink" \
  "$tmp/zst-2024-lake.yaml"

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

run_file file-zst-2024-lake "$recs_2024" "$tmp/zst-2024-lake.yaml"

# lake_sums DIR: "rows entries exits events" of the CSV files (plain or .zst) under DIR.
# Every row is in one file (docs/SINKS.md). Columns are found by the header each file starts
# with, counted from the right, so a quoted station with a comma does not shift them.
lake_sums() {
  find "$1" -type f -name 'part-*' ! -name '.*' -print0 | sort -z |
    xargs -0 -r sh -c 'for f; do case $f in *.zst) zstd -qdc "$f" ;; *) cat "$f" ;; esac; done' sh |
    awk -F, '$1 == "station" { h = NF; for (i = 1; i <= NF; i++) c[$i] = i; next }
      { o = NF - h; n++; e += $(c["entries"] + o); x += $(c["exits"] + o); v += $(c["events"] + o) }
      END { printf "%d %d %d %d\n", n, e, x, v }'
}
lake_sum=$(lake_sums "$tmp/out/file-zst-2024-lake.$repeat/lake")
read -r lake_rows lake_entries lake_exits lake_events <<< "$lake_sum"

# peer_check NAME LOG: compares the peer's "rows= entries= exits= events=" line with the
# lake's; prints WARNING lines (the benchmark goes on).
peer_notes=""
peer_check() {
  local line k want got
  line=$(grep -E "^$1 wall=" "$2" | tail -1)
  for k in rows entries exits events; do
    got=$(tr ' ' '\n' <<< "$line" | awk -F= -v k="$k" '$1 == k { print $2 }')
    case $k in
      rows) want=$lake_rows ;; entries) want=$lake_entries ;;
      exits) want=$lake_exits ;; events) want=$lake_events ;;
    esac
    [[ "$got" == "$want" ]] ||
      peer_notes+="WARNING: $1 $k=$got, turnstiled's lake (file-zst-2024-lake) $k=$want"$'\n'
  done
}
peer_line() { grep -E "^$1 wall=" "$2" | tail -1 | sed -E 's/^[a-z]+ //'; }

# DuckDB: @duckdb/node-api from npm, into the temp dir (or an existing npm prefix).
duckdb_note="duckdb: skipped (needs node and npm)"
duckdb_dir="${TURNSTILED_DUCKDB_NODE_DIR:-$tmp/npm}"
if command -v node > /dev/null; then
  if [[ ! -d "$duckdb_dir/node_modules/@duckdb/node-api" ]] && command -v npm > /dev/null; then
    say "installing @duckdb/node-api into $duckdb_dir"
    npm install --prefix "$duckdb_dir" --no-audit --no-fund --loglevel=error @duckdb/node-api \
      > "$tmp/npm.log" 2>&1 || duckdb_note="duckdb: skipped (npm install failed: $(tail -1 "$tmp/npm.log"))"
  fi
  if [[ -d "$duckdb_dir/node_modules/@duckdb/node-api" ]]; then
    measure duckdb-2024 "$recs_2024" -- node "$repo/bench/peers/duckdb.mjs" \
      --modules "$duckdb_dir" --threads 2 "${zst_2024[@]}"
    peer_check duckdb "$tmp/duckdb-2024.$repeat.log"
    duckdb_note="duckdb: $(peer_line duckdb "$tmp/duckdb-2024.$repeat.log") (its own timer)"
  fi
fi

# pandas, from Debian's python3-pandas (plain text in: it has no zstd reader). Installed here
# when it is missing and this runs as root, as DuckDB is from npm above.
pandas_note="pandas: skipped (/usr/bin/python3 has no pandas module; apt-get install -y python3-pandas)"
if [[ -x /usr/bin/python3 ]] && ! /usr/bin/python3 -c 'import pandas' 2> /dev/null &&
  [[ $(id -u) -eq 0 ]] && command -v apt-get > /dev/null; then
  say "pandas peer: installing Debian's python3-pandas"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pandas > "$tmp/apt-pandas.log" 2>&1 ||
    say "pandas peer: apt-get install python3-pandas failed; the peer is skipped"
fi
if [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import pandas' 2> /dev/null; then
  measure pandas-2024 "$recs_2024" -- /usr/bin/python3 "$repo/bench/peers/pandas_peer.py" \
    "$tmp"/plain/turnstile_24*.txt
  peer_check pandas "$tmp/pandas-2024.$repeat.log"
  pandas_note="pandas: $(peer_line pandas "$tmp/pandas-2024.$repeat.log") (its own timer, after the import)"
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
    for attempt in 1 2 3; do
      BENCH_OUT="$tmp/out/$name.$i.$attempt" BENCH_GROUP="bench-$$-$i-$sink-$attempt-$RANDOM" \
        "$timed" "$tmp/t" "$bin" run -c "$tmp/kafka-$sink.yaml" --available-now > /dev/null \
        2> "$log" || {
        echo "bench/run.sh: turnstiled (kafka, $sink sink) failed:" >&2; tail -5 "$log" >&2
        exit 1; }
      # A group that rebalanced during the run (the mock broker's coordinator sometimes
      # assigns before both consumers have joined) has a steady phase that starts part way
      # through the input, which would overstate the rate: such a run is run again.
      [[ $(grep -cF 'msg="partitions assigned"' "$log") -le 2 ]] && break
      say "kafka ($sink sink): the group rebalanced during the run; running it again"
    done
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

# ---------------------------------------------------------------- RSS per open window

# `turnstiled run` with a file source holds every window open until the end of its input
# (SPEC §4), so N distinct (station, 4 h window) pairs in the input are N open windows at the
# end. The input: `turnstiled produce --generate --dry-run` records, one device kept per
# station, so one record per open window. Two figures per N:
#   open: VmRSS of the daemon while all N windows are open. The input is a FIFO that this
#     script holds open after writing every record, so the input has not ended; it reads
#     /proc/PID/status once VmRSS has settled, then closes the FIFO.
#   peak: max RSS (bench/timed.cc) of the whole run, including the final emit of all N rows.
# bytes per open window = (RSS at N - RSS at 100 windows) / (N - 100); N from the log's
# "input complete ... windows=" line. The per-station and per-device state (one device per
# station: 10k stations for 10k windows, 100k for 100k and 1M) is part of it.
rss_notes=()
rss_case() {
  local name=$1 stations=$2 windows=$3
  local in="$tmp/rss-$name.csv" fifo="$tmp/rss-$name.fifo" log="$tmp/rss-$name.log"
  "$bin" produce --generate --stations "$stations" --count $((windows * 12)) --dry-run \
    2> /dev/null | cut -f2 |
    awk -F, '!($4 in s) { s[$4] = $1 FS $2 FS $3 } s[$4] == $1 FS $2 FS $3' |
    head -n "$windows" > "$in" || true
  mkfifo "$fifo"
  write_config "$(file_source "$fifo")" "$stdout_sink" "$tmp/rss-$name.yaml"
  BENCH_OUT="$tmp/out/rss-$name" "$timed" "$tmp/rss-$name.t" "$bin" run -c "$tmp/rss-$name.yaml" \
    > /dev/null 2> "$log" &
  local tpid=$! dpid="" i rss last=""
  exec {fd}> "$fifo"
  cat "$in" >&"$fd"
  # The file source hands on whole 1 MiB chunks: 50,000 header lines (3.3 MiB, skipped
  # wherever they appear, SPEC §3) push every record through while the input stays open.
  yes 'C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS' |
    head -n 50000 >&"$fd" || true
  for ((i = 0; i < 50; i++)); do
    [[ -n "$dpid" ]] || dpid=$(cat "/proc/$tpid/task/$tpid/children" 2> /dev/null | awk '{print $1}')
    rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$dpid/status" 2> /dev/null || true)
    [[ -n "$rss" && "$rss" == "$last" && $i -ge 5 ]] && break
    last=$rss
    sleep 0.2
  done
  exec {fd}>&-
  wait "$tpid" || { echo "bench/run.sh: rss case $name failed:" >&2; tail -5 "$log" >&2; exit 1; }
  local n
  n=$(grep -F 'msg="input complete"' "$log" | sed -E 's/.* windows=([0-9]+).*/\1/')
  echo "$name $n ${rss:-0} $(field maxrss_kb "$tmp/rss-$name.t")" >> "$tmp/rss"
}
say "RSS per open window (generated stations, 4 h windows, file source from a FIFO)"
: > "$tmp/rss"
rss_case base 100 100
rss_case 10k 10000 10000
rss_case 100k 100000 100000
rss_case 1m 100000 1000000

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
row file-zst-2024-lake "lake job: .zst in, file sink zstd, default layout; $lake_rows rows"
row duckdb-2024 "DuckDB peer: node, 2 threads, .zst in, the same rows"
row pandas-2024 "pandas peer: plain text in, the same rows"
row kafka-bare "bare librdkafka consumer"
row kafka-turnstiled "turnstiled run --available-now, 2 threads; file sink"
row kafka-turnstiled-stdout "as above, stdout sink > /dev/null"
echo
for set in all 2024; do
  echo "from .zst vs zstd -dc ($set): wall rate $(pct "$(get zstd-dc-$set 3)" "$(get file-zst-$set 3)")," \
    "rate per CPU-s $(pct "$(get zstd-dc-$set 5)" "$(get file-zst-$set 5)") (target >= 80%)"
done
tl=$(get file-zst-2024-lake 3)
dl=$(get duckdb-2024 3)
if [[ -n "$dl" ]]; then
  echo "lake job (7 weeks 2024, .zst in, file sink with zstd, default layout) vs DuckDB:" \
    "turnstiled wall $tl s, DuckDB wall $dl s, ratio" \
    "$(awk -v a="$dl" -v b="$tl" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }')" \
    "(target >= 10x)"
else
  echo "lake job (7 weeks 2024, .zst in, file sink with zstd, default layout) vs DuckDB:" \
    "turnstiled wall $tl s, DuckDB not run"
fi
echo "lake job output: $lake_rows rows, entries=$lake_entries exits=$lake_exits events=$lake_events"
[[ -z "$duckdb_note" ]] || echo "$duckdb_note"
[[ -z "$pandas_note" ]] || echo "$pandas_note"
[[ -z "$peer_notes" ]] || printf '%s' "$peer_notes"
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
[[ -z "$kafka_note" ]] || echo "$kafka_note"
awk '$1 == "base" { bn = $2; bo = $3; bp = $4; next }
  { printf "RSS per open window at %s open windows (%s): open %s kB, %.0f B per window;" \
           " peak with the final emit %s kB, %.0f B per window (target < 100 B at 1M)\n",
           $2, $1, $3, ($3 - bo) * 1024 / ($2 - bn), $4, ($4 - bp) * 1024 / ($2 - bn) }
  END { printf "RSS baseline (%d windows): open %s kB, peak %s kB\n", bn, bo, bp }' "$tmp/rss"
# Emit delay (SPEC §9), where bench/emit_delay.sh is present: its `sync_floor:` line (one
# synced write on this disk, alone) and its `emit_delay:` line, with SPEC §9's 4 h windows and
# with 1 min windows (about 1,400 files a second).
if [[ -f "$repo/bench/emit_delay.sh" ]]; then
  for window in 4h 1m; do
    if bash "$repo/bench/emit_delay.sh" --build-dir "$build" --no-build --window "$window" \
      > "$tmp/emit_delay.out" 2> "$tmp/emit_delay.log"; then
      grep -E '^(sync_floor|emit_delay|end_to_end):' "$tmp/emit_delay.out" ||
        echo "emit_delay: no result line ($window windows)"
    else
      echo "emit_delay: bench/emit_delay.sh --window $window failed: $(grep -E \
        '^bench/emit_delay.sh:' "$tmp/emit_delay.log" | tail -1)"
    fi
  done
fi
# The live view's cost (docs/LIVE.md): the Kafka path with 50 /events clients and with none.
if [[ -f "$repo/bench/live_cost.sh" ]]; then
  if bash "$repo/bench/live_cost.sh" --build-dir "$build" --no-build --repeat "$repeat" \
    --kafka-weeks "$kafka_weeks" > "$tmp/live_cost.out" 2> "$tmp/live_cost.log"; then
    grep -E '^live_cost: (median|[0-9]+ pairs)' "$tmp/live_cost.out" || echo "live_cost: no result line"
  else
    echo "live_cost: bench/live_cost.sh failed: $(tail -1 "$tmp/live_cost.log")"
  fi
fi
# Checkpoint cost (SPEC §6): export, encode and write the state of 1 M open windows over 6
# partitions, into this run's temp dir.
echo "$("$build/bench/turnstiled_bench_checkpoint" --windows 1000000 --partitions 6 --dir "$tmp/ckpt")"
# The decoder, the router and one shard alone, one thread, the plain 2024 weeks (bench/stages.cc).
echo "$("$build/bench/turnstiled_bench_stages" --rounds 5 "$tmp"/plain/turnstile_24*.txt)"
