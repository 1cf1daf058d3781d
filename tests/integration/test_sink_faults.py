"""SPEC §5, §8: a sink that fails for good stops the job at once, naming itself; a sink that is
down pauses fetching, keeps the consumer in its group, holds memory under the documented bound,
and once it is back everything is written exactly.

- A file sink whose path lies under a regular file: `run` ends within 5 s (times the sanitizer
  slowdown), non-zero, with one error naming the sink and the cause; no offset is committed.
- A lake on a tmpfs remounted read-only for longer than max.poll.interval.ms while three real
  weeks stream in: fetching pauses (turnstiled_paused_partitions > 0, turnstiled_sink_up 0), no
  rebalance happens, RSS stays under the bound in docs/OPERATIONS.md, and once the disk is
  writable again the lake equals the oracle.
"""
import json
import os
import re
import subprocess
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, TopicPartition

import oracle
from conftest import (FAST_GROUP, MTA_DIR, SLOW, background, consume_all, free_port,
                      require_mta_weeks, run, stop, turnstiled_bin, wait_for, week_path)

TOPIC = "turnstile-stream"
PARTITIONS = 6
# The memory bound docs/OPERATIONS.md states for one consumer thread, two shards and one sink.
RSS_BOUND_MB = 200


def write_config(tmp_path, broker, group, lake, port=None, properties=None, size="4h",
                 queue_capacity=64):
    cfg = {
        "source": {"type": "kafka", "kafka": {
            "bootstrap_servers": broker.address, "topics": [TOPIC], "group_id": group,
            "consumer_threads": 1, "properties": {**FAST_GROUP, **(properties or {})}}},
        "format": {"type": "mta-csv", "timezone": "America/New_York"},
        "window": {"type": "tumbling", "size": size, "idle_timeout": "2s"},
        "sinks": [{"name": "lake", "type": "file", "path": str(lake), "format": "csv",
                   "compression": "none", "flush_interval": "100ms"}],
        "metrics": {"listen": f"127.0.0.1:{port}"} if port else {"enabled": False},
        "state": {"dir": str(tmp_path / "state"), "checkpoint_interval": "1s"},
        "pipeline": {"shutdown_timeout": "10s", "queue_capacity": queue_capacity},
    }
    path = tmp_path / f"{group}.yaml"
    path.write_text(json.dumps(cfg))
    return path


def committed(broker, group):
    c = Consumer({"bootstrap.servers": broker.address, "group.id": group})
    try:
        tps = c.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=30)
        return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}
    finally:
        c.close()


def metric(port, name):
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError:
        return None
    m = re.search(rb"^" + re.escape(name.encode()) + rb"(?:\{[^}]*\})? (\S+)$", body, re.M)
    return float(m.group(1)) if m else None


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def test_a_file_sink_under_a_regular_file_stops_the_run_at_once(tmp_path, broker_factory):
    broker = broker_factory(partitions=PARTITIONS, topics=(TOPIC,))
    week = week_path(require_mta_weeks()[0])
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", week])
    assert "failures=0" in produced.stderr
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file\n")
    cfg = write_config(tmp_path, broker, "under-a-file", blocker / "lake")
    started = time.monotonic()
    result = subprocess.run([turnstiled_bin(), "run", "-c", str(cfg)], capture_output=True,
                            text=True, timeout=120 * SLOW)
    elapsed = time.monotonic() - started
    assert result.returncode != 0, result.stderr[-2000:]
    assert elapsed < 5 * SLOW, elapsed
    # One error naming the sink and the cause, not a retry loop.
    assert "sink 'lake' (file) open failed" in result.stderr, result.stderr[-2000:]
    assert "Not a directory" in result.stderr
    assert "will retry" not in result.stderr
    assert committed(broker, "under-a-file") == {}


def test_a_sink_down_longer_than_max_poll_interval_pauses_fetching_and_loses_nothing(
        tmp_path, broker_factory):
    broker = broker_factory(partitions=PARTITIONS, topics=(TOPIC,))
    require_mta_weeks()
    # Three real weeks, whatever TURNSTILED_TEST_WEEKS says: more than the default queues hold,
    # so that a sink that is down backs up into the consumer.
    weeks = sorted(MTA_DIR.glob("turnstile_*.txt.zst"))[-3:]
    lake = tmp_path / "lake"
    lake.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "turnstiled-test", str(lake)],
                      capture_output=True).returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("cannot mount a tmpfs (CI must run as root with CAP_SYS_ADMIN)")
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    port = free_port()
    log = tmp_path / "run.log"
    try:
        # max.poll.interval.ms at its lowest (it may not be below session.timeout.ms): the
        # outage below lasts twice as long.
        # Hourly windows: the weeks close in more steps than the sink's queue holds, so the
        # shards block on it, and the backpressure reaches the consumer.
        cfg = write_config(tmp_path, broker, "sink-down", lake, port,
                           {"max.poll.interval.ms": "7000"}, size="1h")
        with background(["run", "-c", cfg], log) as proc:
            wait_for(lambda: "partitions assigned" in log.read_text(), 60, "the assignment",
                     proc)
            subprocess.run(["mount", "-o", "remount,ro", str(lake)], check=True)
            for week in weeks:
                produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay",
                                week])
                assert "failures=0" in produced.stderr
            wait_for(lambda: (metric(port, "turnstiled_paused_partitions") or 0) > 0, 120,
                     "fetching paused", proc, interval=0.2)
            assert metric(port, "turnstiled_sink_up") == 0
            outage_started = time.monotonic()
            peak = 0
            while time.monotonic() - outage_started < 14:
                assert proc.poll() is None, log.read_text()[-3000:]
                peak = max(peak, rss_mb(proc.pid))
                time.sleep(0.2)
            assert (metric(port, "turnstiled_paused_partitions") or 0) > 0
            subprocess.run(["mount", "-o", "remount,rw", str(lake)], check=True)
            rows = sum(1 for week in weeks for line in oracle.read_text(week).splitlines()
                       if oracle.parse_mta(line, oracle.LocalClock("UTC")) is not None)
            wait_for(lambda: (metric(port, "turnstiled_consumed_records_total") or 0) >= rows,
                     180, "every record consumed after the sink came back", proc, interval=0.5)
            wait_for(lambda: metric(port, "turnstiled_paused_partitions") == 0, 60,
                     "fetching resumed", proc, interval=0.2)
            # Nothing was passed over while the consumer was paused or catching up.
            assert metric(port, 'turnstiled_dropped_records_total{reason="late"}') == 0
            # The sink's own figures: the retries of the outage, then what it made durable.
            assert metric(port, "turnstiled_sink_up") == 1
            assert metric(port, "turnstiled_sink_retries_total") > 0
            assert metric(port, "turnstiled_sink_rows_failed_total") > 0
            assert metric(port, "turnstiled_sink_batches_total") > 0
            assert metric(port, "turnstiled_sink_files_total") > 0
            assert metric(port, "turnstiled_sink_bytes_total") > 0
            assert metric(port, "turnstiled_sink_flush_duration_seconds_count") > 0
            assert stop(proc) == 0
        text = log.read_text()
        assert "fetching paused" in text and "fetching resumed" in text
        # The member stayed in its group all along: one assignment, never revoked while running.
        assert text.count("partitions assigned") == 1, text[-3000:]
        assert "maximum poll interval" not in text.lower(), text[-3000:]
        print(f"peak RSS while the sink was down: {peak:.0f} MB (bound {RSS_BOUND_MB} MB)")
        if SLOW == 1:  # a sanitizer's shadow memory and quarantine are not the daemon's
            assert peak < RSS_BOUND_MB, peak
        # The windows still open at the stop were checkpointed; a bounded run closes them.
        final = run(["run", "-c", cfg, "--available-now"])
        (tmp_path / "final.log").write_text(final.stderr)
        clock = oracle.LocalClock("America/New_York")
        o = oracle.Oracle(3600 * 1000)
        for _, _, _, value, _ in sorted(consume_all(broker.address, TOPIC, rows)):
            o.add(*oracle.parse_mta(value.decode(), clock))
        problems = oracle.diff(o.rows(), oracle.read_lake(lake))
        assert not problems, problems
    finally:
        subprocess.run(["umount", "-l", str(lake)], check=False)
