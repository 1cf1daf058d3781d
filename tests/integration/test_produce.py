"""`turnstiled produce`: replaying real MTA weeks and generating a synthetic network, checked by
an independent reader (python3-confluent-kafka) and by small independent computations over the
generator's --dry-run output.

- Replay: every row of every real week arrives exactly once, byte for byte; a station's rows
  sit in one partition; inside a partition each device's readings are in time order.
- Generator: the same seed gives the same bytes; the output carries each quirk of the real feed
  (stations, devices, daily rhythm, audit phases, RECOVR AUD repeats, resets, backwards
  registers), each counted here.
- Delivery: the end summary counts what the broker acknowledged, and any failed delivery makes
  the exit code non-zero.

Every week gets its own broker: one broker holds about 5 MiB per partition (docs/BROKER.md).
"""
import collections
import re
import subprocess

import pytest
from confluent_kafka import Consumer, TopicPartition

from conftest import (SLOW, consume_all, mta_weeks_or_skip, run, stop, turnstiled_bin, wait_for,
                      week_path)

TOPIC = "turnstile-stream"
SUMMARY = re.compile(r"msg=done records=(\d+) bytes=(\d+) .*failures=(\d+) "
                     r"stopped_by_signal=(true|false)")

# Rows per week (excluding headers), as measured in data/mta/README.md: a cross-check of the
# header handling below, which would otherwise be the only judge of what a data row is.
README_ROWS = {
    "turnstile_230603.txt.zst": 253237, "turnstile_240106.txt.zst": 250816,
    "turnstile_240113.txt.zst": 253022, "turnstile_240120.txt.zst": 253562,
    "turnstile_240127.txt.zst": 253587, "turnstile_240203.txt.zst": 252809,
    "turnstile_240210.txt.zst": 250806, "turnstile_240217.txt.zst": 253521,
}

# The generator's quirk counts need every device to report for more than a day: the default
# network has about 4,400 devices reporting every 4 hours, ~26k readings a simulated day.
QUIRK_COUNT = 60000
# Messages sent through the broker; fewer under the sanitizers, which check threads, not volume.
BROKER_COUNT = max(2000, int(20000 / SLOW))


def summary(stderr):
    """(records, failures, stopped_by_signal) from produce's final log line."""
    found = SUMMARY.findall(stderr)
    assert len(found) == 1, f"expected one summary line in:\n{stderr[-4000:]}"
    records, _, failures, by_signal = found[0]
    return int(records), int(failures), by_signal == "true"


def file_rows(path):
    """The data rows of a real week as bytes, in file order: every non-empty line whose first
    field is not the `C/A` (or `CA`) header."""
    text = subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
    rows = []
    for line in text.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.strip() and line.split(b",", 1)[0].strip() not in (b"C/A", b"CA"):
            rows.append(line)
    return rows


def event_time(row):
    """A sortable (YYYY, MM, DD, HH:MM:SS) from an MTA row's DATE (MM/DD/YYYY) and TIME."""
    f = row.split(b",")
    date, time = f[6], f[7]
    return (date[6:10], date[0:2], date[3:5], time)


def device(row):
    return tuple(row.split(b",")[:3])


def dry_run(*args):
    """Runs `produce --generate --dry-run ARGS` and returns (stdout lines, stderr)."""
    result = run(["produce", "--generate", "--dry-run", *args])
    return result.stdout.splitlines(), result.stderr


# ---------------------------------------------------------------------------------------------
# Replay of real weeks


@pytest.mark.parametrize("week", mta_weeks_or_skip())
def test_a_replayed_week_arrives_whole_keyed_by_station_and_in_device_order(week, broker_factory):
    path = week_path(week)
    rows = file_rows(path)
    if week in README_ROWS:
        assert len(rows) == README_ROWS[week]
    broker = broker_factory(partitions=6, topics=(TOPIC,))

    result = run(["produce", "-b", broker.address, "--topic", TOPIC, "--format", "mta-csv",
                  "--replay", path])
    assert result.returncode == 0
    assert summary(result.stderr) == (len(rows), 0, False)

    got = consume_all(broker.address, TOPIC, len(rows))
    assert len(got) == len(rows), "the topic holds more messages than the file has rows"
    # The same multiset of rows, byte for byte: nothing lost, nothing doubled, nothing changed.
    assert collections.Counter(m[3] for m in got) == collections.Counter(rows)

    # Keyed by STATION, so a station's rows all sit in one partition.
    partitions_of = collections.defaultdict(set)
    for part, _, key, value, _ in got:
        station = value.split(b",")[3]
        assert key == station
        partitions_of[station].add(part)
    spread = {s: p for s, p in partitions_of.items() if len(p) > 1}
    assert not spread, f"stations in more than one partition: {list(spread.items())[:5]}"
    assert len({p for ps in partitions_of.values() for p in ps}) > 1, "one partition got it all"

    # Inside a partition, each device's readings are in event-time order; as the sort is
    # stable, each device's readings are exactly in the order of the file.
    in_partition = collections.defaultdict(list)
    for part, offset, _, value, _ in sorted(got, key=lambda m: (m[0], m[1])):
        in_partition[device(value)].append(value)
    in_file = collections.defaultdict(list)
    for row in rows:
        in_file[device(row)].append(row)
    for dev, readings in in_partition.items():
        times = [event_time(r) for r in readings]
        assert times == sorted(times), f"{dev} out of time order inside its partition"
    wrong = [d for d in in_file if in_partition.get(d) != in_file[d]]
    assert not wrong, (f"{len(wrong)} devices not in file order, e.g. {wrong[0]}:\n"
                       f"file:      {in_file[wrong[0]][:6]}\n"
                       f"partition: {in_partition.get(wrong[0], [])[:6]}")
    assert in_partition.keys() == in_file.keys()


# ---------------------------------------------------------------------------------------------
# The generator, through --dry-run


def test_the_same_seed_gives_the_same_bytes_and_another_seed_differs():
    a, _ = dry_run("--count", 20000, "--seed", 7)
    b, _ = dry_run("--count", 20000, "--seed", 7)
    c, _ = dry_run("--count", 20000, "--seed", 8)
    assert len(a) == 20000
    assert a == b
    assert a != c
    for fmt in ("seed-csv", "json"):
        x, _ = dry_run("--count", 3000, "--seed", 7, "--format", fmt)
        y, _ = dry_run("--count", 3000, "--seed", 7, "--format", fmt)
        assert len(x) == 3000 and x == y


class Readings:
    """The generator's mta-csv dry-run output, parsed independently of the daemon."""

    def __init__(self, lines):
        self.by_device = collections.defaultdict(list)  # device -> [(t, desc, entries, exits)]
        self.station_of = {}
        for line in lines:
            key, value = line.split("\t")
            f = value.split(",")
            assert len(f) == 11, value
            assert key == f[3], "the key is the STATION field"
            mo, d, y = map(int, f[6].split("/"))
            h, mi, s = map(int, f[7].split(":"))
            day = (y * 12 + mo) * 31 + d  # ordered, not calendar-exact: fine for differences
            t = day * 86400 + h * 3600 + mi * 60 + s
            dev = (f[0], f[1], f[2])
            self.station_of[dev] = f[3]
            self.by_device[dev].append((t, h, f[8], int(f[9]), int(f[10])))
        # Consecutive REGULAR readings of one device: (prev, cur).
        self.pairs = collections.defaultdict(list)
        for dev, rs in self.by_device.items():
            regular = [r for r in rs if r[2] == "REGULAR"]
            self.pairs[dev] = list(zip(regular, regular[1:]))


@pytest.fixture(scope="module")
def readings():
    lines, stderr = dry_run("--count", QUIRK_COUNT, "--seed", 42)
    assert len(lines) == QUIRK_COUNT
    assert summary(stderr) == (QUIRK_COUNT, 0, False)
    return Readings(lines)


def test_the_network_has_at_least_400_stations_and_4000_devices(readings):
    assert len(set(readings.station_of.values())) >= 400
    assert len(readings.by_device) >= 4000
    # Each device belongs to one station, and readings of a device are in time order.
    for dev, rs in readings.by_device.items():
        times = [r[0] for r in rs]
        assert times == sorted(times), dev


def test_registers_are_cumulative_with_a_daily_rhythm(readings):
    # Entries per 4-hour interval, by the hour the interval ends. Each device's step is divided
    # by that device's mean step, so busy and quiet stations weigh the same.
    by_hour = collections.defaultdict(list)
    rising = falling = 0
    for pairs in readings.pairs.values():
        steps = []
        for (t0, _, _, e0, _), (t1, h1, _, e1, _) in pairs:
            d = e1 - e0
            rising += d > 0
            falling += d < 0
            if t1 - t0 == 4 * 3600 and abs(d) <= 10000:
                steps.append((h1, abs(d)))
        mean_step = sum(d for _, d in steps) / len(steps) if steps else 0
        if mean_step > 0:
            for h, d in steps:
                by_hour[h].append(d / mean_step)
    mean = {h: sum(v) / len(v) for h, v in by_hour.items() if len(v) >= 50}
    night = [mean[h] for h in (3, 4) if h in mean]  # intervals over 23:00-04:00 at the latest
    rush = [mean[h] for h in (9, 10, 17, 18, 19, 20) if h in mean]  # over a morning/evening peak
    assert night and rush, f"too few intervals by end hour: {sorted(mean)}"
    assert min(rush) > 3 * max(night), f"no daily rhythm: {mean}"
    # Registers accumulate: most steps go up.
    assert rising > 10 * falling


def test_audits_come_every_4_hours_on_a_phase_that_varies_by_station(readings):
    phases = collections.defaultdict(set)  # station -> {seconds into the 4 h cycle}
    for dev, rs in readings.by_device.items():
        for t, _, desc, _, _ in rs:
            if desc == "REGULAR":
                phases[readings.station_of[dev]].add(t % (4 * 3600))
    # One phase per station (all its devices audit together)...
    mixed = {s: p for s, p in phases.items() if len(p) != 1}
    assert not mixed, f"stations with several audit phases: {list(mixed.items())[:5]}"
    distinct = collections.Counter(p.pop() for p in phases.values())
    # ...and several phases across stations: on the hour (00/04.., 01/05.., ...) and off it.
    on_the_hour = {p for p in distinct if p % 3600 == 0}
    off_the_hour = {p for p in distinct if p % 3600 != 0}
    assert len(on_the_hour) >= 3, distinct
    assert off_the_hour, distinct
    # Gaps are whole audits: 4 hours, or 8 when one was missed.
    gaps = collections.Counter(t1[0] - t0[0] for ps in readings.pairs.values() for t0, t1 in ps)
    assert set(gaps) <= {4 * 3600, 8 * 3600}, gaps
    assert gaps[4 * 3600] > 20 * gaps[8 * 3600] > 0


def test_some_recovered_audits_repeat_the_previous_timestamp(readings):
    repeats = other_recovered = 0
    total = 0
    for rs in readings.by_device.values():
        total += len(rs)
        for prev, cur in zip(rs, rs[1:]):
            if cur[2] == "RECOVR AUD":
                if cur[0] == prev[0]:
                    repeats += 1
                else:
                    other_recovered += 1
    assert 0 < repeats < total / 50, (repeats, total)
    assert other_recovered == 0


def test_a_few_registers_reset_by_a_jump_or_a_fall_to_a_small_value(readings):
    jumps = falls = steps = 0
    for pairs in readings.pairs.values():
        for (_, _, _, e0, _), (_, _, _, e1, _) in pairs:
            steps += 1
            if e1 - e0 > 10000:
                jumps += 1
            elif e0 - e1 > 10000 and e1 < 100000:
                falls += 1
    assert jumps > 0 and falls > 0, (jumps, falls)
    assert jumps + falls < steps / 200, (jumps, falls, steps)


def test_some_registers_run_backwards(readings):
    backwards = 0
    for pairs in readings.pairs.values():
        steps = [e1 - e0 for (_, _, _, e0, _), (_, _, _, e1, _) in pairs if abs(e1 - e0) <= 10000]
        down = sum(d < 0 for d in steps)
        if down >= 3 and not any(d > 0 for d in steps):
            backwards += 1
    assert 0 < backwards < len(readings.by_device) / 20, backwards


def test_pacing_with_rate_changes_the_timing_but_not_the_data():
    # Loose on purpose: no assertion on speed, only that a paced run ends with the same data.
    paced, stderr = dry_run("--count", 300, "--seed", 5, "--rate", 3000)
    unpaced, _ = dry_run("--count", 300, "--seed", 5)
    assert paced == unpaced
    assert summary(stderr) == (300, 0, False)


def test_sigterm_stops_an_endless_paced_run_cleanly(tmp_path):
    out_path = tmp_path / "out.tsv"
    with open(out_path, "wb") as out, open(tmp_path / "err.log", "w") as err:
        proc = subprocess.Popen([turnstiled_bin(), "produce", "--generate", "--dry-run",
                                 "--count", "0", "--rate", "500", "--seed", "3"],
                                stdout=out, stderr=err)
        # Output is block-buffered: some bytes on disk means many readings were produced.
        wait_for(lambda: out_path.stat().st_size > 0, 60, "paced output", proc)
        assert stop(proc) == 0
    lines = out_path.read_text().splitlines()
    records, failures, by_signal = summary((tmp_path / "err.log").read_text())
    assert by_signal and failures == 0
    assert records == len(lines) > 0
    unpaced, _ = dry_run("--count", len(lines), "--seed", 3)
    assert lines == unpaced


# ---------------------------------------------------------------------------------------------
# The generator through a real broker, and delivery failures


def test_generate_delivers_exactly_count_messages_keyed_by_station(broker):
    args = ["--count", BROKER_COUNT, "--seed", 11]
    result = run(["produce", "-b", broker.address, "--topic", TOPIC, "--generate", *args])
    assert summary(result.stderr) == (BROKER_COUNT, 0, False)
    expected, _ = dry_run(*args)

    got = consume_all(broker.address, TOPIC, BROKER_COUNT)
    assert len(got) == BROKER_COUNT
    sent = collections.Counter(line.encode() for line in expected)
    assert collections.Counter(m[2] + b"\t" + m[3] for m in got) == sent
    partitions_of = collections.defaultdict(set)
    for part, _, key, value, _ in got:
        assert key == value.split(b",")[3]
        partitions_of[key].add(part)
    assert all(len(p) == 1 for p in partitions_of.values())


def high_watermarks(address, partitions=6):
    c = Consumer({"bootstrap.servers": address, "group.id": "watermarks"})
    try:
        return [c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1]
                for p in range(partitions)]
    finally:
        c.close()


def test_sigterm_flushes_what_was_queued_and_the_summary_counts_it(broker, tmp_path):
    with open(tmp_path / "err.log", "w") as err:
        proc = subprocess.Popen([turnstiled_bin(), "produce", "-b", broker.address, "--topic",
                                 TOPIC, "--generate", "--count", "0", "--rate", "2000"],
                                stderr=err)
        wait_for(lambda: sum(high_watermarks(broker.address)) > 0, 60, "first deliveries", proc)
        assert stop(proc) == 0
    records, failures, by_signal = summary((tmp_path / "err.log").read_text())
    assert by_signal and failures == 0 and records > 0
    assert sum(high_watermarks(broker.address)) == records


def test_produce_to_a_stopped_broker_fails_with_a_non_zero_exit(broker):
    address = broker.address
    assert broker.stop() == 0
    result = run(["produce", "-b", address, "--topic", TOPIC, "--generate", "--count", 500,
                  "-X", "message.timeout.ms=2000"], check=False)
    assert result.returncode != 0
    assert summary(result.stderr) == (0, 500, False)
    assert "deliveries failed" in result.stderr


def test_a_broker_lost_mid_run_fails_the_rest_and_the_summary_adds_up(broker, tmp_path):
    count = 3000
    with open(tmp_path / "err.log", "w") as err:
        proc = subprocess.Popen([turnstiled_bin(), "produce", "-b", broker.address, "--topic",
                                 TOPIC, "--generate", "--count", str(count), "--rate", "1000",
                                 "-X", "message.timeout.ms=2000"], stderr=err)
        wait_for(lambda: sum(high_watermarks(broker.address)) > 0, 60, "first deliveries", proc)
        assert broker.stop() == 0
        code = proc.wait(timeout=120 * SLOW)
    records, failures, _ = summary((tmp_path / "err.log").read_text())
    assert code != 0
    assert records > 0 and failures > 0
    assert records + failures == count


def test_replay_of_a_missing_file_fails_before_connecting(tmp_path):
    result = run(["produce", "-b", "127.0.0.1:1", "--replay", tmp_path / "nope.txt"], check=False)
    assert result.returncode != 0
    assert "nope.txt" in result.stderr
