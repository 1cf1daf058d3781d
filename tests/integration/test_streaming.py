"""The streaming daemon's behaviour over time, against the embedded broker: idle partitions stop
holding the watermark back, `emit: update` refreshes open windows before the final row, offsets
are committed only after the sinks have everything (never on receipt), and /metrics passes
promtool, counts what the oracle counts and times emits from the Kafka append time; and
librdkafka's own messages come out as our structured log lines.
"""
import json
import re
import subprocess
import types
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition

import oracle
from conftest import (FAST_GROUP, MTA_WEEKS, background, consume_all, free_port, run, stop, wait_for,
                      week_path)

TOPIC = "readings"


def row(device, time, entries, station="TEST ST", date="01/06/2024"):
    ca, unit, scp = device.split(",")
    return f"{ca},{unit},{scp},{station},1,IRT,{date},{time},REGULAR,{entries},0"


def config(tmp_path, broker, window=None, metrics_port=None, group="stream-test", threads=1,
           state=None):
    cfg = {
        "source": {"type": "kafka", "kafka": {"bootstrap_servers": broker.address,
                                              "topics": [TOPIC], "group_id": group,
                                              "consumer_threads": threads,
                                              "properties": FAST_GROUP}},
        "format": {"type": "mta-csv", "timezone": "UTC"},
        "window": {"type": "tumbling", "size": "1h", "allowed_lateness": "0s", **(window or {})},
        "sinks": [{"name": "lake", "type": "file", "path": str(tmp_path / "lake"),
                   "format": "csv", "compression": "none", "flush_interval": "100ms"}],
        "metrics": ({"listen": f"127.0.0.1:{metrics_port}"} if metrics_port
                    else {"enabled": False}),
        "state": {"dir": str(tmp_path / "state"), **(state or {})},
    }
    path = tmp_path / "stream.yaml"
    path.write_text(json.dumps(cfg))
    return path


def send(broker, values, partition=None):
    p = Producer({"bootstrap.servers": broker.address, "linger.ms": 0})
    for v in values:
        if partition is None:
            p.produce(TOPIC, key=b"TEST ST", value=v.encode())
        else:
            p.produce(TOPIC, key=b"TEST ST", value=v.encode(), partition=partition)
    assert p.flush(30) == 0


def lake_rows(lake):
    """Every csv row under the lake as a dict, in file order (updates and finals alike)."""
    import csv
    import io
    out = []
    for f in sorted(lake.rglob("part-*")) if lake.exists() else []:
        out += list(csv.DictReader(io.StringIO(f.read_text(), newline="")))
    return out


def committed(broker, group, partitions):
    c = Consumer({"bootstrap.servers": broker.address, "group.id": group})
    try:
        tps = c.committed([TopicPartition(TOPIC, p) for p in range(partitions)], timeout=30)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def test_an_idle_partition_stops_holding_the_watermark_back(tmp_path, broker_factory):
    broker = broker_factory(partitions=2, topics=(TOPIC,))
    cfg = config(tmp_path, broker, window={"idle_timeout": "1s"})
    with background(["run", "-c", cfg], tmp_path / "run.log") as proc:
        # Only partition 0 ever gets data; partition 1 has no high mark at all.
        send(broker, [row("A1,R1,00-00-00", f"0{h}:00:00", 100 + h) for h in range(3)], 0)
        wait_for(lambda: any(r["window_start"] == "2024-01-06T01:00:00Z"
                             for r in lake_rows(tmp_path / "lake")), 60,
                 "windows to close with partition 1 idle", proc)
        assert stop(proc) == 0


def test_emit_update_refreshes_open_windows_then_emits_the_final_row(tmp_path, broker_factory):
    broker = broker_factory(partitions=1, topics=(TOPIC,))
    cfg = config(tmp_path, broker, window={"emit": "update", "update_interval": "200ms"})
    lake = tmp_path / "lake"
    with background(["run", "-c", cfg], tmp_path / "run.log") as proc:
        send(broker, [row("A1,R1,00-00-00", "00:00:00", 100),
                      row("A1,R1,00-00-00", "00:20:00", 110)])
        first = wait_for(lambda: [r for r in lake_rows(lake) if r["final"] == "false"], 60,
                         "an update row for the open window", proc)
        assert (first[0]["window_start"], first[0]["entries"], first[0]["events"]) == (
            "2024-01-06T00:00:00Z", "10", "2")
        send(broker, [row("A1,R1,00-00-00", "00:40:00", 115),
                      row("A1,R1,00-00-00", "01:10:00", 120)])
        final = wait_for(lambda: [r for r in lake_rows(lake) if r["final"] == "true"], 60,
                         "the final row once the watermark passes 01:00", proc)
        assert (final[0]["window_start"], final[0]["entries"], final[0]["events"]) == (
            "2024-01-06T00:00:00Z", "15", "3")
        assert stop(proc) == 0


def test_offsets_are_committed_only_with_a_checkpoint_or_once_the_sinks_have_every_row(
        tmp_path, broker_factory):
    broker = broker_factory(partitions=2, topics=(TOPIC,))
    values = [row("A1,R1,00-00-00", f"0{h}:00:00", 100 + h) for h in range(4)]
    send(broker, values, 0)
    send(broker, [row("B1,R1,00-00-00", "00:30:00", 1, station="OTHER")], 1)

    # Running, having read and even emitted, but no checkpoint yet: nothing is committed.
    # SIGTERM checkpoints the open windows and baselines, then commits what they cover.
    cfg = config(tmp_path, broker, window={"idle_timeout": "1s"}, group="commit-test",
                 state={"checkpoint_interval": "1h"})
    with background(["run", "-c", cfg], tmp_path / "run.log") as proc:
        wait_for(lambda: lake_rows(tmp_path / "lake"), 60, "some emitted rows", proc)
        assert all(o < 0 for o in committed(broker, "commit-test", 2).values())
        assert stop(proc) == 0
    assert committed(broker, "commit-test", 2) == {0: 4, 1: 1}
    snapshots = sorted(p.name for p in (tmp_path / "state" / "commit-test" / TOPIC).iterdir())
    assert snapshots == ["0.snap", "1.snap"]
    assert "partition restored" not in (tmp_path / "run.log").read_text()

    # --available-now: restores both partitions from state.dir, has nothing more to read, emits
    # the restored open windows, and commits the end offsets.
    result = run(["run", "-c", cfg, "--available-now"])
    assert result.stderr.count("partition restored") == 2, result.stderr
    assert committed(broker, "commit-test", 2) == {0: 4, 1: 1}
    assert [(r["station"], r["window_start"], r["entries"]) for r in lake_rows(tmp_path / "lake")
            if r["window_start"] >= "2024-01-06T03:00:00Z" or r["station"] == "OTHER"] == [
        ("OTHER", "2024-01-06T00:00:00Z", "0"), ("TEST ST", "2024-01-06T03:00:00Z", "1")]


def metric_value(body, name, **labels):
    for line in body.splitlines():
        m = re.match(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            return float(m.group(2))
    raise AssertionError(f"{name} {labels} not in /metrics")


def test_metrics_pass_promtool_and_count_what_the_oracle_counts(tmp_path, broker_factory):
    broker = broker_factory(partitions=6, topics=(TOPIC,))
    week = week_path(MTA_WEEKS[0]) if MTA_WEEKS else None
    if week is not None:
        run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", week])
        expected_count = sum(1 for line in oracle.read_text(week).splitlines()
                             if oracle.parse_mta(line, oracle.LocalClock("UTC")))
    else:
        expected_count = 20000
        run(["produce", "-b", broker.address, "--topic", TOPIC, "--generate", "--count",
             expected_count])
    messages = sorted(consume_all(broker.address, TOPIC, expected_count))
    o = oracle.Oracle(3600 * 1000)
    clock = oracle.LocalClock("UTC")
    for m in messages:
        o.add(*oracle.parse_mta(m[3].decode(), clock))

    port = free_port()
    cfg = config(tmp_path, broker, window={"allowed_lateness": "0s"}, metrics_port=port,
                 threads=2)
    url = f"http://127.0.0.1:{port}/metrics"
    with background(["run", "-c", cfg], tmp_path / "run.log") as proc:
        def scrape():
            try:
                return urllib.request.urlopen(url, timeout=10).read().decode()
            except OSError:
                return None
        wait_for(lambda: (b := scrape()) and metric_value(
            b, "turnstiled_consumed_records_total") >= expected_count, 120,
            "every record consumed", proc)
        # The shards count per batch, just behind the consumers: wait until they settle.
        settled = {}

        def shards_settled():
            b = scrape()
            drops = (metric_value(b, "turnstiled_dropped_records_total", reason="duplicate"),
                     metric_value(b, "turnstiled_dropped_records_total", reason="out_of_order"))
            done = settled.get("last") == drops and settled.get("body") is not None
            settled.update(last=drops, body=b)
            return done and b
        body = wait_for(shards_settled, 60, "the shards' counters to settle", proc, interval=0.5)
        check = subprocess.run(["promtool", "check", "metrics"], input=body, text=True,
                               capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert metric_value(body, "turnstiled_consumed_records_total") == expected_count
        assert metric_value(body, "turnstiled_dropped_records_total",
                            reason="duplicate") == o.dropped["duplicate"]
        assert metric_value(body, "turnstiled_dropped_records_total",
                            reason="out_of_order") == o.dropped["out_of_order"]
        assert metric_value(body, "turnstiled_windows_emitted_total") > 0
        assert metric_value(body, "turnstiled_queue_depth_batches", shard="0") >= 0

        # Once the sink acknowledges emitted rows, emit delay and end-to-end latency (from the
        # Kafka append time of the newest record behind them) are observed, once per emit.
        def latency_seen():
            b = scrape()
            return b and metric_value(b, "turnstiled_end_to_end_latency_seconds_count",
                                      sink="lake") > 0 and b
        acked = wait_for(latency_seen, 60, "a sink acknowledgement", proc)
        count = metric_value(acked, "turnstiled_end_to_end_latency_seconds_count", sink="lake")
        assert metric_value(acked, "turnstiled_emit_delay_seconds_count", sink="lake") >= count
        # The records were appended moments ago: a mean of hours would mean a wrong clock or unit.
        mean = metric_value(acked, "turnstiled_end_to_end_latency_seconds_sum", sink="lake") / count
        assert 0 <= mean < 3600, mean
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert health.status == 200
        assert stop(proc) == 0


def test_librdkafka_speaks_in_our_structured_log_lines(tmp_path):
    # Nothing listens on this port: librdkafka reports the refused connections through its log
    # callback, which must come out as our logfmt lines, never as raw "%3|..." lines.
    cfg = config(tmp_path, types.SimpleNamespace(address=f"127.0.0.1:{free_port()}"))
    log = tmp_path / "run.log"
    with background(["run", "-c", cfg], log) as proc:
        wait_for(lambda: "msg=librdkafka" in log.read_text(), 60,
                 "librdkafka's report of the refused connection", proc)
        assert stop(proc) == 0
    lines = log.read_text().splitlines()
    raw = [line for line in lines if line.startswith("%")]
    assert not raw, raw
    kafka = [line for line in lines if "msg=librdkafka" in line]
    # The consumers log as component=kafka, the changelog's producer as component=state.
    assert all(line.startswith("ts=") and ("component=kafka" in line or "component=state" in line)
               and "facility=" in line for line in kafka), kafka
