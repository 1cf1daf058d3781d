"""SPEC §5, §8: the dead letter is bounded and private.

- Ten 1 MB bad messages leave a dead letter under 1 MB: each is stored cut at
  max_record_bytes (64 KiB by default), with its full length and a flag.
- With max_bytes 1MiB and 10 MB of bad input, the dead-letter folder stays under 2 MiB.
- Dead-letter and lake files are 0640, their folders 0750.
"""
import json
import os
import stat

from confluent_kafka import Producer

from conftest import FAST_GROUP, run

TOPIC = "turnstile-stream"
GOOD = "A1,R1,00-00-00,TEST ST,1,IRT,01/06/2024,{:02d}:00:00,REGULAR,{},0"


def config(tmp_path, broker, dead_letter=None):
    cfg = {
        "source": {"type": "kafka", "kafka": {"bootstrap_servers": broker.address,
                                              "topics": [TOPIC], "group_id": "dl-test",
                                              "consumer_threads": 1, "properties": FAST_GROUP}},
        "format": {"type": "mta-csv", "timezone": "UTC"},
        "window": {"type": "tumbling", "size": "1h"},
        "sinks": [{"name": "lake", "type": "file", "path": str(tmp_path / "lake"),
                   "format": "csv", "compression": "none"}],
        "dead_letter": {"type": "file", "path": str(tmp_path / "dead-letter"),
                        **(dead_letter or {})},
        "metrics": {"enabled": False},
        "state": {"dir": str(tmp_path / "state")},
    }
    path = tmp_path / "dl.yaml"
    path.write_text(json.dumps(cfg))
    return path


def send(broker, values):
    p = Producer({"bootstrap.servers": broker.address, "linger.ms": 5,
                  "message.max.bytes": 4_000_000, "compression.type": "zstd"})
    for v in values:
        p.produce(TOPIC, key=b"TEST ST", value=v)
    assert p.flush(60) == 0


def folder_bytes(path):
    return sum(f.stat().st_size for f in path.iterdir())


def test_big_bad_messages_are_stored_cut_and_the_folder_stays_small(tmp_path, broker_factory):
    broker = broker_factory(partitions=1, topics=(TOPIC,))
    big = [bytes([65 + i]) * 1_000_000 for i in range(10)]  # 1 MB each, oversized
    send(broker, big + [GOOD.format(h, 100 + h).encode() for h in range(3)])
    run(["run", "-c", config(tmp_path, broker), "--available-now"])
    dead = tmp_path / "dead-letter"
    assert folder_bytes(dead) < 1_000_000
    letters = [json.loads(x) for x in (dead / "dead-letter.jsonl").read_text().splitlines()]
    assert [x["reason"] for x in letters] == ["oversized"] * 10
    assert all(x["raw_truncated"] and x["raw_bytes"] == 1_000_000 and len(x["raw"]) == 65536
               for x in letters)
    # Private: files 0640, folders 0750.
    assert stat.S_IMODE(os.stat(dead / "dead-letter.jsonl").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(dead).st_mode) == 0o750
    lake_files = [f for f in (tmp_path / "lake").rglob("part-*")]
    assert lake_files
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o640 for f in lake_files)
    assert all(stat.S_IMODE(f.parent.stat().st_mode) == 0o750 for f in lake_files)


def test_max_bytes_rotates_so_the_dead_letter_never_outgrows_it(tmp_path, broker_factory):
    broker = broker_factory(partitions=1, topics=(TOPIC,))
    # 10 MB of bad input: 2,000 malformed messages of 5 kB.
    send(broker, [b"not,a,turnstile,row," + bytes([97 + i % 26]) * 5000 for i in range(2000)])
    run(["run", "-c", config(tmp_path, broker, {"max_bytes": "1MiB"}), "--available-now"])
    dead = tmp_path / "dead-letter"
    assert folder_bytes(dead) < 2 * 1024 * 1024
    assert sorted(f.name for f in dead.iterdir()) == ["dead-letter.1.jsonl", "dead-letter.jsonl"]
    for f in dead.iterdir():
        for line in f.read_text().splitlines():
            assert json.loads(line)["reason"] == "bad_field_count"
