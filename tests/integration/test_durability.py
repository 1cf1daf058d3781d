"""SPEC §6: checkpoints, commits and restores, tried the way a daemon dies.

- kill -9 at random moments of a paced real week, restarted each time: the lake equals the
  oracle and no window appears twice; committed offsets rise, and each restart resumes from a
  checkpoint instead of the start of the topic.
- Two instances in one group, one killed: the other restores its partitions from the changelog
  topic; a third with an empty state.dir finishes. The lake is exact.
- Damaged and unwritable state, and a sink whose disk turns read-only before SIGTERM.
"""
import json
import os
import random
import re
import signal
import subprocess
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

import oracle
from conftest import (FAST_GROUP, SLOW, consume_all, run, stop, turnstiled_bin, wait_for,
                      week_path, require_mta_weeks)

TOPIC = "turnstile-stream"
HOUR_MS = 3600 * 1000
PARTITIONS = 6
# A real week (7 days of event time) replayed in about 30 s.
SPEEDUP = 7 * 86400 / 30


def write_config(path, broker, group, lake, state_dir, partition_by=None, threads=2,
                 interval="1s"):
    sink = {"name": "lake", "type": "file", "path": str(lake), "format": "csv",
            "compression": "zstd", "flush_interval": "200ms"}
    if partition_by is not None:
        sink["partition_by"] = partition_by
    cfg = {
        "source": {"type": "kafka", "kafka": {"bootstrap_servers": broker.address,
                                              "topics": [TOPIC], "group_id": group,
                                              "consumer_threads": threads,
                                              "properties": FAST_GROUP}},
        "format": {"type": "mta-csv", "timezone": "America/New_York"},
        "window": {"type": "tumbling", "size": "4h"},
        "sinks": [sink],
        "metrics": {"enabled": False},
        "state": {"dir": str(state_dir), "checkpoint_interval": interval},
        "pipeline": {"shutdown_timeout": "10s"},
    }
    path.write_text(json.dumps(cfg, indent=1))
    return path


def committed(broker, group):
    c = Consumer({"bootstrap.servers": broker.address, "group.id": group})
    try:
        tps = c.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=30)
        return {tp.partition: max(tp.offset, 0) for tp in tps}
    finally:
        c.close()


def start(args, log_path):
    log = open(log_path, "w")
    proc = subprocess.Popen([turnstiled_bin(), *map(str, args)], stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    proc.log_file = log
    return proc


def kill9(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.log_file.close()


def restored_offsets(log_path):
    """{(partition, from): offset} of every 'partition restored' line of a run's log."""
    out = {}
    for line in log_path.read_text().splitlines():
        if "msg=\"partition restored\"" in line:
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            out[int(fields["partition"])] = (fields["from"], int(fields["offset"]))
    return out


def oracle_rows(broker, week):
    """The oracle over the topic as the daemon reads it: each partition in offset order."""
    path = week_path(week)
    rows = sum(1 for line in oracle.read_text(path).splitlines()
               if oracle.parse_mta(line, oracle.LocalClock("UTC")) is not None)
    o = oracle.Oracle(4 * HOUR_MS)
    clock = oracle.LocalClock("America/New_York")
    for _, _, _, value, _ in sorted(consume_all(broker.address, TOPIC, rows)):
        o.add(*oracle.parse_mta(value.decode(), clock))
    return o.rows()


def paced_replay(broker, week, log_path, speedup=SPEEDUP):
    return start(["produce", "-b", broker.address, "--topic", TOPIC, "--replay",
                  week_path(week), "--speedup", speedup], log_path)


# The sanitizer runs (TURNSTILED_TEST_SLOWDOWN > 1) check threads and memory on the default
# layout; the per-station layout writes a file per station and window, tens of thousands.
STATION_LAYOUT = pytest.param(
    ["station", "date"], id="station-date",
    marks=pytest.mark.skipif(SLOW > 1, reason="per-station layout: release run only"))


@pytest.mark.parametrize("partition_by", [pytest.param(None, id="date"), STATION_LAYOUT])
def test_kill_9_at_random_moments_loses_nothing_and_counts_nothing_twice(
        tmp_path, broker_factory, partition_by):
    week = require_mta_weeks()[0]
    broker = broker_factory(partitions=PARTITIONS, topics=(TOPIC,))
    lake = tmp_path / "lake"
    cfg = write_config(tmp_path / "run.yaml", broker, "kill9", lake, tmp_path / "state",
                       partition_by)
    rng = random.Random(os.environ.get("TURNSTILED_TEST_SEED", str(time.time_ns())))
    producer = paced_replay(broker, week, tmp_path / "produce.log")
    proc = None
    try:
        seen = committed(broker, "kill9")
        rises = 0
        for kill in range(3):
            log = tmp_path / f"run-{kill}.log"
            proc = start(["run", "-c", cfg], log)
            # Wait until this run has committed past what the previous ones did (a checkpoint
            # became durable), then kill it at a random moment shortly after.
            progressed = wait_for(
                lambda: (lambda now: now if sum(now.values()) > sum(seen.values()) else None)(
                    committed(broker, "kill9")), 90, "offsets committed by a checkpoint", proc,
                interval=0.2)
            assert all(progressed[p] >= seen[p] for p in seen), (seen, progressed)
            rises += 1
            seen = progressed
            time.sleep(rng.uniform(0, 2.5))
            kill9(proc)
            seen = committed(broker, "kill9")  # what the killed run committed last
            if kill > 0:
                # The restart resumed from the checkpoints, not the start of the topic.
                restored = restored_offsets(log)
                assert restored, log.read_text()[-3000:]
                assert all(src == "local" for src, _ in restored.values()), restored
                assert sum(off for _, off in restored.values()) > 0, restored
        assert rises == 3
        assert producer.wait(timeout=120 * SLOW) == 0, (tmp_path / "produce.log").read_text()
    finally:
        for p in (proc, producer):
            if p is not None and p.poll() is None:
                kill9(p)

    # A last run in the same group finishes the stream.
    final_log = tmp_path / "final.log"
    result = run(["run", "-c", cfg, "--available-now"])
    final_log.write_text(result.stderr)
    assert "input complete" in result.stderr
    expected = oracle_rows(broker, week)
    actual = oracle.read_lake(lake)  # fails on any window written twice, anywhere
    problems = oracle.diff(expected, actual)
    assert not problems, problems


def test_a_killed_member_s_partitions_are_restored_from_the_changelog_by_another(
        tmp_path, broker_factory):
    week = require_mta_weeks()[0]
    broker = broker_factory(partitions=PARTITIONS, topics=(TOPIC,))
    lake = tmp_path / "lake"
    cfg_a = write_config(tmp_path / "a.yaml", broker, "pair", lake, tmp_path / "state-a",
                         threads=1)
    cfg_b = write_config(tmp_path / "b.yaml", broker, "pair", lake, tmp_path / "state-b",
                         threads=1)
    cfg_c = write_config(tmp_path / "c.yaml", broker, "pair", lake, tmp_path / "state-c")
    producer = paced_replay(broker, week, tmp_path / "produce.log")
    a = b = None
    try:
        a = start(["run", "-c", cfg_a], tmp_path / "a.log")
        b = start(["run", "-c", cfg_b], tmp_path / "b.log")
        # Both members hold partitions and have checkpointed some.
        for who, log in (("a", tmp_path / "a.log"), ("b", tmp_path / "b.log")):
            wait_for(lambda: "partitions assigned" in log.read_text()
                     and "count=0" not in log.read_text().split("partitions assigned")[-1][:40],
                     90, f"{who} holding partitions", a if who == "a" else b)
        wait_for(lambda: min(committed(broker, "pair").values()) > 0, 90,
                 "every partition checkpointed and committed", b, interval=0.2)
        kill9(a)
        a = None
        # b takes a's partitions over and restores them from the changelog topic.
        wait_for(lambda: sum(1 for src, _ in restored_offsets(tmp_path / "b.log").values()
                             if src == "changelog") > 0 and
                 len(restored_offsets(tmp_path / "b.log")) == PARTITIONS, 120,
                 "b restoring every partition", b)
        assert producer.wait(timeout=120 * SLOW) == 0
        assert stop(b) == 0
        b.log_file.close()
        b = None
    finally:
        for p in (a, b, producer):
            if p is not None and p.poll() is None:
                kill9(p)

    # A third member with an empty state.dir finishes from the changelog. Each partition's
    # first restore is from the changelog; a later one may be from c's own local snapshot, taken
    # when its two consumers' join moved the partition from one to the other.
    result = run(["run", "-c", cfg_c, "--available-now"])
    first = {}
    for line in result.stderr.splitlines():
        if "msg=\"partition restored\"" in line:
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            first.setdefault(int(fields["partition"]), fields["from"])
    assert first and set(first.values()) == {"changelog"}, result.stderr[-3000:]
    problems = oracle.diff(oracle_rows(broker, week), oracle.read_lake(lake))
    assert not problems, problems


def small_stream(broker, count=20000):
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--generate", "--count",
                    count, "--seed", 11])
    assert "failures=0" in produced.stderr


def test_a_damaged_snapshot_is_reported_and_the_previous_one_is_used(tmp_path, broker_factory):
    broker = broker_factory(partitions=2, topics=(TOPIC,))
    state = tmp_path / "state"
    cfg = write_config(tmp_path / "run.yaml", broker, "damage", tmp_path / "lake", state,
                       threads=1)
    # Two streaming runs, each stopped: every partition has a newest and a previous snapshot.
    for n, count in enumerate((20000, 10000)):
        produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--generate",
                        "--count", count, "--seed", 11 + n])
        assert "failures=0" in produced.stderr
        proc = start(["run", "-c", cfg], tmp_path / f"run-{n}.log")
        wait_for(lambda: sum(committed(broker, "damage").values()) >= 20000 + 10000 * n, 90,
                 "everything checkpointed", proc, interval=0.2)
        assert stop(proc) == 0
        proc.log_file.close()
    snaps = state / "damage" / TOPIC
    assert sorted(p.name for p in snaps.iterdir()) == ["0.snap", "0.snap.prev", "1.snap",
                                                       "1.snap.prev"]
    data = (snaps / "0.snap").read_bytes()
    (snaps / "0.snap").write_bytes(data[:len(data) // 2])  # truncated
    data = bytearray((snaps / "1.snap").read_bytes())
    data[len(data) // 2] ^= 0x10  # one bit flipped
    (snaps / "1.snap").write_bytes(bytes(data))

    result = run(["run", "-c", cfg, "--available-now"])
    log = result.stderr
    assert log.count("snapshot is damaged; falling back to the one before it") == 2, log
    assert "truncated" in log and "checksum mismatch" in log, log
    assert log.count("using the previous snapshot") == 2, log
    assert "input complete" in log


def test_an_unwritable_state_dir_stops_run_at_start_with_a_clear_error(tmp_path, broker):
    (tmp_path / "file").write_text("not a folder")
    cfg = write_config(tmp_path / "run.yaml", broker, "nostate", tmp_path / "lake",
                       tmp_path / "file" / "state")
    result = run(["run", "-c", cfg], check=False)
    assert result.returncode != 0
    assert "state.dir" in result.stderr and "cannot be written" in result.stderr, result.stderr
    assert "Not a directory" in result.stderr, result.stderr


def test_sigterm_exits_within_shutdown_timeout_when_the_lake_turns_read_only(
        tmp_path, broker_factory):
    broker = broker_factory(partitions=2, topics=(TOPIC,))
    lake = tmp_path / "lake"
    lake.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "turnstiled-test", str(lake)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    proc = None
    try:
        cfg = write_config(tmp_path / "run.yaml", broker, "readonly", lake, tmp_path / "state",
                           threads=1)
        proc = start(["run", "-c", cfg], tmp_path / "run.log")
        small_stream(broker)
        wait_for(lambda: any(lake.rglob("part-*")), 60, "the first lake files", proc)
        # A remount to read-only fails (busy) while a file on it is open for writing: the sink
        # holds one only while it writes a flush, so try until it succeeds between two.
        wait_for(lambda: subprocess.run(["mount", "-o", "remount,ro", str(lake)],
                                        capture_output=True).returncode == 0,
                 30, "the lake remounted read-only", proc, interval=0.05)
        # More input (within max_future of the first), so that rows are emitted that the
        # read-only disk cannot take.
        produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--generate",
                        "--count", 20000, "--seed", 12, "--start", "2024-01-07 00:00:00"])
        assert "failures=0" in produced.stderr
        wait_for(lambda: "sink operation failed" in (tmp_path / "run.log").read_text(), 60,
                 "the sink failing on the read-only disk", proc)
        before = committed(broker, "readonly")
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=60 * SLOW)
        elapsed = time.monotonic() - started
        proc.log_file.close()
        log = (tmp_path / "run.log").read_text()
        assert code == 1, log[-3000:]  # not everything was written
        assert elapsed < 10 + 5 * SLOW, elapsed  # shutdown_timeout is 10s
        assert "not acknowledge" in log, log[-3000:]
        # Nothing was committed past what the lake holds.
        assert committed(broker, "readonly") == before
    finally:
        if proc is not None and proc.poll() is None:
            kill9(proc)
        subprocess.run(["umount", "-l", str(lake)], check=False)
