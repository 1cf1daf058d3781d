"""SPEC §4 and §8: bad clocks cost only their own records.

- A record dated 2030 at the head of every partition (or as a file's first line), then a real
  week: the lake equals the oracle for the week, and the 2030 records are dead-lettered as
  `future` (judged against when they were written, which no record can move).
- A real week, then readings that resume two days after its last event on the same running
  daemon: every one is aggregated, none is `future`.
- Readings in 1900 and in year 0 are `too_old` whether or not their partition has a clock.
"""
import json

import oracle
from conftest import (FAST_GROUP, background, consume_all, require_mta_weeks, run, stop,
                      wait_for, week_path)

TOPIC = "turnstile-stream"
HOUR_MS = 3600 * 1000


def mta(station, device, date, time, entries, exits=0):
    ca, unit, scp = device.split(",")
    return f"{ca},{unit},{scp},{station},1,IRT,{date},{time},REGULAR,{entries},{exits}"


def write_config(tmp_path, source, name="run", window=None):
    cfg = {
        "source": source,
        "format": {"type": "mta-csv", "timezone": "America/New_York"},
        "window": {"type": "tumbling", "size": "4h", **(window or {})},
        "sinks": [{"name": "lake", "type": "file", "path": str(tmp_path / name / "lake"),
                   "format": "csv", "compression": "none", "flush_interval": "100ms"}],
        "dead_letter": {"type": "file", "path": str(tmp_path / name / "dead-letter")},
        "metrics": {"enabled": False},
        "state": {"dir": str(tmp_path / name / "state")},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(cfg))
    return path, tmp_path / name / "lake", tmp_path / name / "dead-letter" / "dead-letter.jsonl"


def kafka(broker, group):
    return {"type": "kafka", "kafka": {"bootstrap_servers": broker.address, "topics": [TOPIC],
                                       "group_id": group, "consumer_threads": 2,
                                       "properties": FAST_GROUP}}


def letters(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def produce_lines(broker, lines, partition=None):
    from confluent_kafka import Producer
    # Compressed: the embedded broker keeps about 5 MiB per partition.
    p = Producer({"bootstrap.servers": broker.address, "linger.ms": 5,
                  "compression.type": "zstd"})
    for line in lines:
        station = line.split(",")[3].encode()
        extra = {"partition": partition} if partition is not None else {}
        while True:
            try:
                p.produce(TOPIC, key=station, value=line.encode(), **extra)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                p.poll(0.1)
    assert p.flush(60) == 0


def oracle_of(messages):
    o = oracle.Oracle(4 * HOUR_MS)
    clock = oracle.LocalClock("America/New_York")
    for value in messages:
        rec = oracle.parse_mta(value, clock)
        if rec is not None:
            o.add(*rec)
    return o.rows()


def test_a_2030_record_at_the_head_of_every_partition_costs_only_itself(tmp_path,
                                                                         broker_factory):
    week = week_path(require_mta_weeks()[0])
    broker = broker_factory(partitions=6, topics=(TOPIC,))
    bad = [mta("BAD CLOCK", f"Z{p},R0,00-00-00", "06/01/2030", "00:00:00", 5) for p in range(6)]
    for p, line in enumerate(bad):
        produce_lines(broker, [line], partition=p)
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", week])
    assert "failures=0" in produced.stderr
    cfg, lake, dead = write_config(tmp_path, kafka(broker, "clock-test"))
    run(["run", "-c", cfg, "--available-now"])

    rows = sum(1 for line in oracle.read_text(week).splitlines()
               if oracle.parse_mta(line, oracle.LocalClock("UTC")) is not None)
    messages = sorted(consume_all(broker.address, TOPIC, rows + 6))
    week_only = [v.decode() for _, _, _, v, _ in messages if b"BAD CLOCK" not in v]
    problems = oracle.diff(oracle_of(week_only), oracle.read_lake(lake))
    assert not problems, problems
    future = [x for x in letters(dead) if x["reason"] == "future"]
    assert sorted(x["raw"] for x in future) == sorted(bad)
    assert all(x["reason"] != "late" for x in letters(dead))


def test_a_2030_line_first_in_a_file_costs_only_itself(tmp_path):
    week = week_path(require_mta_weeks()[0])
    data = tmp_path / "week.txt"
    bad = mta("BAD CLOCK", "Z0,R0,00-00-00", "06/01/2030", "00:00:00", 5)
    data.write_text(bad + "\n" + oracle.read_text(week))
    cfg, lake, dead = write_config(tmp_path, {"type": "file", "file": {"paths": [str(data)]}})
    run(["run", "-c", cfg])
    lines = oracle.read_text(week).splitlines()
    problems = oracle.diff(oracle_of(lines), oracle.read_lake(lake))
    assert not problems, problems
    assert [x["raw"] for x in letters(dead) if x["reason"] == "future"] == [bad]


def test_a_stream_that_resumes_two_days_later_is_accepted(tmp_path, broker_factory):
    week = week_path(require_mta_weeks()[0])
    broker = broker_factory(partitions=2, topics=(TOPIC,))
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", week])
    assert "failures=0" in produced.stderr
    cfg, lake, dead = write_config(tmp_path, kafka(broker, "gap-test"),
                                   window={"idle_timeout": "2s"})
    lines = [x for x in oracle.read_text(week).splitlines()
             if oracle.parse_mta(x, oracle.LocalClock("UTC")) is not None]
    clock = oracle.LocalClock("America/New_York")
    last = max(oracle.parse_mta(x, clock)[2] for x in lines)
    import datetime
    resume = datetime.datetime.fromtimestamp(last / 1000 + 2 * 86400, oracle.UTC)
    # 1,000 readings of 100 devices, 10 each an hour apart, starting two days after the week.
    later = []
    for h in range(10):
        t = resume + datetime.timedelta(hours=h)
        local = t.astimezone(clock.zone)
        for d in range(100):
            later.append(mta(f"RESUMED {d % 10}", f"G{d},R9,00-00-00", local.strftime("%m/%d/%Y"),
                             local.strftime("%H:%M:%S"), 1000 + 7 * h + d))
    with background(["run", "-c", cfg], tmp_path / "run.log") as proc:
        wait_for(lambda: lake.exists() and any(lake.rglob("part-*")), 120, "the week's rows",
                 proc)
        produce_lines(broker, later)
        # Idle close: once no partition has data for idle_timeout, every window closes.
        wait_for(lambda: sum(v[2] for k, v in oracle.read_lake(lake).items()
                             if k[0].startswith("RESUMED")) == len(later), 120,
                 "every resumed reading in a closed window", proc, interval=0.5)
        assert stop(proc) == 0
    assert not [x for x in letters(dead) if x["reason"] == "future"]
    got = {k: v for k, v in oracle.read_lake(lake).items() if k[0].startswith("RESUMED")}
    assert sum(v[2] for v in got.values()) == len(later)


def test_readings_before_min_event_time_are_too_old_with_or_without_a_clock(tmp_path,
                                                                           broker_factory):
    broker = broker_factory(partitions=2, topics=(TOPIC,))
    old = [mta("OLD", "O1,R0,00-00-00", "01/06/1900", "00:00:00", 5),
           mta("OLD", "O1,R0,00-00-00", "01/06/0000", "04:00:00", 9)]
    good = [mta("NEW", "N1,R0,00-00-00", "01/06/2024", f"0{h}:00:00", 100 + h) for h in range(3)]
    produce_lines(broker, old, partition=0)  # no clock yet on partition 0
    produce_lines(broker, good, partition=1)
    produce_lines(broker, old, partition=1)  # after a clock on partition 1
    cfg, lake, dead = write_config(tmp_path, kafka(broker, "old-test"))
    run(["run", "-c", cfg, "--available-now"])
    assert sorted(x["reason"] for x in letters(dead)) == ["too_old"] * 4
    assert all(k[0] == "NEW" for k in oracle.read_lake(lake))


def test_a_paused_stream_emits_every_window_within_idle_timeout(tmp_path, broker_factory):
    import re
    import time
    import urllib.request
    from conftest import SLOW, free_port

    week = week_path(require_mta_weeks()[0])
    broker = broker_factory(partitions=6, topics=(TOPIC,))
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", week])
    assert "failures=0" in produced.stderr
    rows = sum(1 for line in oracle.read_text(week).splitlines()
               if oracle.parse_mta(line, oracle.LocalClock("UTC")) is not None)
    expected = oracle_of(v.decode() for _, _, _, v, _ in
                         sorted(consume_all(broker.address, TOPIC, rows)))
    port = free_port()
    cfg, lake, _ = write_config(tmp_path, kafka(broker, "idle-test"),
                                window={"idle_timeout": "3s"})
    text = json.loads(cfg.read_text())
    text["metrics"] = {"listen": f"127.0.0.1:{port}"}
    cfg.write_text(json.dumps(text))

    def consumed():
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        except OSError:
            return 0
        m = re.search(rb"^turnstiled_consumed_records_total (\S+)$", body, re.M)
        return float(m.group(1)) if m else 0

    with background(["run", "-c", cfg], tmp_path / "run.log") as proc:
        # No SIGTERM and no more input: once every record is read, the partitions go idle and
        # every window, the last ones included, must be out within idle_timeout plus 2 s.
        wait_for(lambda: consumed() >= rows, 120, "every record consumed", proc, interval=0.1)
        done = time.monotonic()
        wait_for(lambda: oracle.read_lake(lake) == expected, 3 + 2, "every window in the lake",
                 proc, interval=0.2)
        assert time.monotonic() - done <= (3 + 2) * SLOW
        assert stop(proc) == 0
    problems = oracle.diff(expected, oracle.read_lake(lake))
    assert not problems, problems


def test_a_frozen_consumer_is_behind_not_idle(tmp_path, broker_factory):
    """A daemon stopped (SIGSTOP) for longer than idle_timeout while it still has records to
    read: when it resumes, its partitions have had no record for a while, but they are behind,
    not idle. None may be passed over, so no window closes early and nothing is late."""
    import os
    import signal
    import time

    week = week_path(require_mta_weeks()[0])
    broker = broker_factory(partitions=6, topics=(TOPIC,))
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", week])
    assert "failures=0" in produced.stderr
    source = kafka(broker, "frozen-test")
    # Small fetches: reading the week takes many round trips.
    source["kafka"]["properties"] = {**FAST_GROUP, "max.partition.fetch.bytes": "2048"}
    cfg, lake, dead = write_config(tmp_path, source, window={"idle_timeout": "1s"})
    log = tmp_path / "run.log"
    with background(["run", "-c", cfg, "--available-now"], log) as proc:
        wait_for(lambda: log.read_text().count("partitions assigned") >= 2, 120,
                 "the partitions assigned", proc, interval=0.01)
        # Frozen for longer than idle_timeout, again and again, for a tenth of a second of
        # reading in between, until the week is read.
        for _ in range(20):
            if proc.poll() is not None:
                break
            os.kill(proc.pid, signal.SIGSTOP)
            time.sleep(1.5)
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.1)
        assert proc.wait(timeout=600) == 0
    rows = sum(1 for line in oracle.read_text(week).splitlines()
               if oracle.parse_mta(line, oracle.LocalClock("UTC")) is not None)
    expected = oracle_of(v.decode() for _, _, _, v, _ in
                         sorted(consume_all(broker.address, TOPIC, rows)))
    assert not [x for x in letters(dead) if x["reason"] == "late"]
    problems = oracle.diff(expected, oracle.read_lake(lake))
    assert not problems, problems


def test_a_stream_that_resumes_on_every_partition_after_idle_timeout_loses_nothing(
        tmp_path, broker_factory):
    """A live feed stops for longer than idle_timeout (every window closes) and then resumes on
    every partition at once. The partition whose records are fetched first must not carry the
    watermark past the others, whose records are a fetch behind: nothing is late."""
    import re
    import time
    import urllib.request
    from conftest import free_port

    week = week_path(require_mta_weeks()[0])
    broker = broker_factory(partitions=6, topics=(TOPIC,))
    clock = oracle.LocalClock("America/New_York")
    lines = [x for x in oracle.read_text(week).splitlines()
             if oracle.parse_mta(x, oracle.LocalClock("UTC")) is not None]
    times = sorted(oracle.parse_mta(x, clock)[2] for x in lines)
    # Split at a window boundary in the middle of the week: the idle close after the first half
    # closes nothing the second half needs.
    cut = times[len(times) // 2] // (4 * HOUR_MS) * (4 * HOUR_MS)
    # In event-time order, as a live feed (and `produce --replay`) sends them.
    lines.sort(key=lambda x: oracle.parse_mta(x, clock)[2])
    first = [x for x in lines if oracle.parse_mta(x, clock)[2] < cut]
    second = [x for x in lines if oracle.parse_mta(x, clock)[2] >= cut]
    port = free_port()
    cfg, lake, dead = write_config(tmp_path, kafka(broker, "resume-test"),
                                   window={"idle_timeout": "2s"})
    text = json.loads(cfg.read_text())
    text["metrics"] = {"listen": f"127.0.0.1:{port}"}
    cfg.write_text(json.dumps(text))

    def metric(name):
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        except OSError:
            return None
        m = re.search(rb"^" + re.escape(name.encode()) + rb" (\S+)$", body, re.M)
        return float(m.group(1)) if m else None

    with background(["run", "-c", cfg], tmp_path / "run.log") as proc:
        produce_lines(broker, first)
        wait_for(lambda: (metric("turnstiled_consumed_records_total") or 0) >= len(first), 120,
                 "the first half consumed", proc, interval=0.1)
        assert metric('turnstiled_dropped_records_total{reason="late"}') == 0
        # Every partition idle: the first half's windows close.
        wait_for(lambda: sum(v[2] for v in oracle.read_lake(lake).values()) > 0, 30,
                 "the first half's windows", proc, interval=0.2)
        time.sleep(3)
        produce_lines(broker, second)
        wait_for(lambda: (metric("turnstiled_consumed_records_total") or 0) >= len(lines), 120,
                 "the second half consumed", proc, interval=0.1)
        assert metric('turnstiled_dropped_records_total{reason="late"}') == 0
        assert stop(proc) == 0
    run(["run", "-c", cfg, "--available-now"])
    messages = sorted(consume_all(broker.address, TOPIC, len(lines)))
    problems = oracle.diff(oracle_of(v.decode() for _, _, _, v, _ in messages),
                           oracle.read_lake(lake))
    assert not problems, problems
    assert not [x for x in letters(dead) if x["reason"] == "late"]
