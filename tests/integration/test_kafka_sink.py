"""SPEC §5 `kafka` sink and Kafka dead letter, §6 effectively-once, read back with an independent
client (python3-confluent-kafka, read_committed).

- kill -9 at three or more random moments of a paced real week, restarted each time, then a last
  --available-now run: a read_committed reader of the results topic sees every window of the
  oracle exactly once, with the oracle's numbers.
- The Kafka dead letter: malformed records of a real week are on the dead-letter topic with
  their reason and the topic, partition and offset they were produced at (headers); an
  oversized one is cut with raw_bytes and raw_truncated; the good records' results equal the
  oracle.
- transactional: false (idempotent producer, at least once) gives the oracle's rows too.

The embedded broker (librdkafka's mock cluster) accepts the transaction protocol but keeps no
transaction markers: its fetches ignore isolation.level, so a read_committed reader also sees
the rows of a transaction a kill -9 left open (docs/SINKS.md). Where the probe below finds such
a broker, a duplicate in the kill -9 test is reported as an expected failure with its cause,
and the rest (nothing lost, numbers exact, duplicates identical) is still checked.
"""
import collections
import json
import os
import random
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

import oracle
from conftest import (FAST_GROUP, SLOW, consume_all, require_mta_weeks, run, wait_for,
                      week_path)
from test_durability import SPEEDUP, committed, kill9, paced_replay, start

TOPIC = "turnstile-stream"
RESULTS = "station-windows"
PROGRESS = RESULTS + ".progress"
DEAD = "dead-letters"
PARTITIONS = 6
HOUR_MS = 3600 * 1000


def write_config(path, broker, group, state_dir, transactional=None, dead_letter=None,
                 threads=2, source_properties=None):
    sink = {"name": "results", "type": "kafka", "topic": RESULTS, "flush_interval": "200ms"}
    if transactional is not None:
        sink["transactional"] = transactional
    cfg = {
        "source": {"type": "kafka", "kafka": {"bootstrap_servers": broker.address,
                                              "topics": [TOPIC], "group_id": group,
                                              "consumer_threads": threads,
                                              "properties": {**FAST_GROUP,
                                                             **(source_properties or {})}}},
        "format": {"type": "mta-csv", "timezone": "America/New_York"},
        "window": {"type": "tumbling", "size": "4h"},
        "sinks": [sink],
        "metrics": {"enabled": False},
        "state": {"dir": str(state_dir), "checkpoint_interval": "1s"},
        "pipeline": {"shutdown_timeout": "10s"},
    }
    if dead_letter is not None:
        cfg["dead_letter"] = dead_letter
    path.write_text(json.dumps(cfg, indent=1))
    return path


def read_topic(bootstrap, topic, isolation="read_committed", timeout=60):
    """Every message of `topic` from the beginning of each partition to its end, as dicts with
    partition, offset, key, value and headers."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
                  "isolation.level": isolation, "enable.partition.eof": True,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        parts = c.list_topics(topic, timeout=30).topics[topic].partitions
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        at_end = set()
        out = []
        deadline = time.monotonic() + timeout * SLOW
        while len(at_end) < len(parts):
            if time.monotonic() > deadline:
                pytest.fail(f"{topic}: only partitions {sorted(at_end)} of {len(parts)} read "
                            "to their end in time")
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                        continue
                    pytest.fail(f"consumer error: {m.error()}")
                at_end.discard(m.partition())
                out.append({"partition": m.partition(), "offset": m.offset(), "key": m.key(),
                            "value": m.value(),
                            "headers": {k: v.decode() for k, v in (m.headers() or [])}})
        return out
    finally:
        c.close()


def final_windows(messages):
    """Counter of (station, window_start, window_end) over final rows, and their values."""
    counts = collections.Counter()
    values = collections.defaultdict(set)
    for m in messages:
        row = json.loads(m["value"])
        assert m["key"].decode() == row["station"], m
        assert set(row) == {"station", "window_start", "window_end", "entries", "exits",
                            "events", "final"}, row
        if not row["final"]:
            continue
        key = (row["station"], row["window_start"], row["window_end"])
        counts[key] += 1
        values[key].add((row["entries"], row["exits"], row["events"]))
    return counts, values


def oracle_over_topic(broker, expected_messages):
    """The oracle over the input topic as the daemon reads it (each partition in offset
    order), skipping records that do not parse. Also checks that each station's records are in
    one partition, so that one results row per window is what exactly once means."""
    o = oracle.Oracle(4 * HOUR_MS)
    clock = oracle.LocalClock("America/New_York")
    partitions_of = collections.defaultdict(set)
    for partition, _, _, value, _ in sorted(consume_all(broker.address, TOPIC,
                                                        expected_messages)):
        try:
            rec = oracle.parse_mta(value.decode(), clock)
        except (ValueError, UnicodeDecodeError):
            continue
        if rec is not None:
            partitions_of[rec[0]].add(partition)
            o.add(*rec)
    split = {s: p for s, p in partitions_of.items() if len(p) > 1}
    assert not split, f"stations in several partitions: {list(split.items())[:5]}"
    return o.rows()


def week_rows(week):
    return sum(1 for line in oracle.read_text(week_path(week)).splitlines()
               if oracle.parse_mta(line, oracle.LocalClock("UTC")) is not None)


def broker_honours_read_committed(broker):
    """Whether a read_committed reader of this broker skips an aborted transaction's rows."""
    topic = "read-committed-probe"
    p = Producer({"bootstrap.servers": broker.address, "transactional.id": "probe"})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, key=b"k", value=b"aborted")
    p.flush(30)
    p.abort_transaction(30)
    return not read_topic(broker.address, topic)


def topic_end(broker, topic):
    """The sum of `topic`'s partitions' end offsets (0 while it does not exist yet)."""
    c = Consumer({"bootstrap.servers": broker.address, "group.id": f"ends-{time.monotonic_ns()}"})
    try:
        parts = c.list_topics(topic, timeout=30).topics[topic].partitions or {}
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                   for p in parts)
    finally:
        c.close()


def test_kill_9_at_random_moments_a_read_committed_reader_sees_every_window_once(
        tmp_path, broker_factory):
    week = require_mta_weeks()[0]
    broker = broker_factory(partitions=PARTITIONS, topics=(TOPIC, RESULTS, PROGRESS))
    cfg = write_config(tmp_path / "run.yaml", broker, "kill9", tmp_path / "state")
    rng = random.Random(os.environ.get("TURNSTILED_TEST_SEED", str(time.time_ns())))
    # The feed lasts 30 s, and up to 2 minutes in the sanitizer runs, where a restart takes
    # 10 s or more: long enough for the kills to land while windows still close.
    producer = paced_replay(broker, week, tmp_path / "produce.log", SPEEDUP / min(SLOW, 4))
    proc = None
    skipped = "already committed by an earlier run were skipped"
    kills = 0
    try:
        seen = committed(broker, "kill9")
        # Three kills, and more (up to eight, while the feed lasts) until a restart has
        # re-emitted windows a killed run had committed: a kill that lands before any row past
        # the last checkpoint was committed leaves the restart nothing to skip.
        for kill in range(8):
            if kill >= 3 and (producer.poll() is not None or any(
                    skipped in (tmp_path / f"run-{k}.log").read_text() for k in range(1, kill))):
                break
            kills = kill + 1
            proc = start(["run", "-c", cfg], tmp_path / f"run-{kill}.log")
            # A checkpoint became durable (which needs the sink's commit of the rows before
            # it), then a kill at a random moment shortly after. The moment is taken after a
            # transaction that followed the checkpoint (a new progress cursor; there is one
            # only while windows close), when one comes within a few seconds: its rows are
            # ones a restart from that checkpoint emits again and must skip, unless the next
            # checkpoint comes first.
            seen = wait_for(
                lambda: (lambda now: now if sum(now.values()) > sum(seen.values()) else None)(
                    committed(broker, "kill9")), 90, "offsets committed by a checkpoint", proc,
                interval=0.2)
            cursors = topic_end(broker, PROGRESS)
            deadline = time.monotonic() + 3 * SLOW
            while (time.monotonic() < deadline and proc.poll() is None
                   and topic_end(broker, PROGRESS) <= cursors):
                time.sleep(0.05)
            time.sleep(rng.uniform(0, 0.3))
            kill9(proc)
            seen = committed(broker, "kill9")
        assert producer.wait(timeout=120 * SLOW) == 0, (tmp_path / "produce.log").read_text()
    finally:
        for p in (proc, producer):
            if p is not None and p.poll() is None:
                kill9(p)

    result = run(["run", "-c", cfg, "--available-now"])
    (tmp_path / "final.log").write_text(result.stderr)
    assert "input complete" in result.stderr
    logs = [(tmp_path / f"run-{k}.log").read_text() for k in range(kills)] + [result.stderr]
    # The restarts emitted windows the killed runs had committed, and the sink skipped them.
    assert any(skipped in log for log in logs[1:]), logs[1][-3000:]

    expected = oracle_over_topic(broker, week_rows(week))
    counts, values = final_windows(read_topic(broker.address, RESULTS))
    differing = {k: v for k, v in values.items() if len(v) > 1}
    assert not differing, f"a window with different numbers: {list(differing.items())[:5]}"
    actual = {k: next(iter(v)) for k, v in values.items()}
    problems = oracle.diff(expected, actual)
    assert not problems, problems
    twice = {k: n for k, n in counts.items() if n > 1}
    if twice and not broker_honours_read_committed(broker):
        pytest.xfail(f"{len(twice)} windows read twice, e.g. {list(twice.items())[:3]}: the "
                     "embedded broker shows read_committed readers the rows of transactions "
                     "that a kill -9 left open (its fetches ignore isolation.level)")
    assert not twice, f"{len(twice)} windows read more than once: {list(twice.items())[:5]}"


def produce_at(broker, values):
    """Produces each (partition, value) and returns [(partition, offset, value)]."""
    p = Producer({"bootstrap.servers": broker.address, "linger.ms": 5,
                  "message.max.bytes": 4_000_000})
    placed = []

    def delivered(err, msg):
        assert err is None, err
        placed.append((msg.partition(), msg.offset(), msg.value()))

    for partition, value in values:
        p.produce(TOPIC, value=value, partition=partition, on_delivery=delivered)
    assert p.flush(60) == 0
    return placed


def test_the_kafka_dead_letter_holds_each_bad_record_with_where_and_why(tmp_path,
                                                                        broker_factory):
    week = require_mta_weeks()[0]
    # No progress topic: the sink has it made (on the embedded broker, whose metadata requests
    # predate allow.auto.create.topics, asking for it auto-creates it).
    broker = broker_factory(partitions=PARTITIONS, topics=(TOPIC, RESULTS, DEAD))
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay",
                    week_path(week)])
    assert "failures=0" in produced.stderr
    bad_number = b"A1,R1,00-00-00,TEST ST,1,IRT,01/06/2024,04:00:00,REGULAR,abc,0"
    oversized = b"X" * 100_000
    bad = produce_at(broker, [(0, b"garbage"), (3, bad_number), (5, oversized),
                              (1, b"not,a,turnstile,row")])
    reasons = {b"garbage": "bad_field_count", bad_number: "bad_number",
               oversized: "oversized", b"not,a,turnstile,row": "bad_field_count"}
    cfg = write_config(tmp_path / "dl.yaml", broker, "dead-letter", tmp_path / "state",
                       dead_letter={"type": "kafka", "topic": DEAD,
                                    "max_record_bytes": "1KiB"})
    result = run(["run", "-c", cfg, "--available-now"])
    assert "input complete" in result.stderr

    letters = read_topic(broker.address, DEAD)
    by_place = {(int(m["headers"]["partition"]), int(m["headers"]["offset"])): m
                for m in letters}
    for partition, offset, value in bad:
        m = by_place.get((partition, offset))
        assert m is not None, (partition, offset, value[:40], [m["headers"] for m in letters])
        h = m["headers"]
        assert h["reason"] == reasons[value], h
        assert h["topic"] == TOPIC, h
        if value == oversized:
            assert m["value"] == value[:1024]
            assert h["raw_truncated"] == "true" and h["raw_bytes"] == str(len(value)), h
        else:
            assert m["value"] == value
            assert "raw_truncated" not in h and "raw_bytes" not in h, h
    # The real week itself has no bad lines for this format: only ours are there.
    assert len(letters) == len(bad), [m["headers"] for m in letters]

    expected = oracle_over_topic(broker, week_rows(week) + len(bad))
    counts, values = final_windows(read_topic(broker.address, RESULTS))
    assert all(n == 1 for n in counts.values())
    problems = oracle.diff(expected, {k: next(iter(v)) for k, v in values.items()})
    assert not problems, problems


def test_transactional_false_writes_the_oracle_s_rows_at_least_once(tmp_path, broker_factory):
    week = require_mta_weeks()[0]
    broker = broker_factory(partitions=PARTITIONS, topics=(TOPIC, RESULTS))
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay",
                    week_path(week)])
    assert "failures=0" in produced.stderr
    cfg = write_config(tmp_path / "run.yaml", broker, "plain", tmp_path / "state",
                       transactional=False)
    result = run(["run", "-c", cfg, "--available-now"])
    assert "input complete" in result.stderr
    assert "transactional_id=-" in result.stderr

    messages = read_topic(broker.address, RESULTS, isolation="read_uncommitted")
    counts, values = final_windows(messages)
    # At least once; a run without failures sends each row once.
    assert all(n == 1 for n in counts.values()), [k for k, n in counts.items() if n > 1][:5]
    problems = oracle.diff(oracle_over_topic(broker, week_rows(week)),
                           {k: next(iter(v)) for k, v in values.items()})
    assert not problems, problems
    # No progress topic without transactions.
    c = Consumer({"bootstrap.servers": broker.address, "group.id": "meta"})
    try:
        assert PROGRESS not in c.list_topics(timeout=30).topics
    finally:
        c.close()
