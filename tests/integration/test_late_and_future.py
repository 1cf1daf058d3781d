"""A running daemon against the embedded broker: a late record is dropped, counted and sent to the
dead letter; a record stamped a year ahead is rejected as `future` and does not make the records
after it late; SIGTERM stops the daemon with exit 0.

The daemon runs continuously (no --available-now). Each step waits for its effect on disk or on
/metrics before the next record is sent, so the order of events is the test's, not the clock's.
"""
import datetime
import json
import re
import urllib.request

from confluent_kafka import Producer

import oracle
from conftest import FAST_GROUP, background, free_port, stop, wait_for

TOPIC = "readings"
DEVICE_A = "A1,R1,00-00-00"
DEVICE_B = "B1,R1,00-00-00"


def row(device, date, time, entries, exits=0):
    ca, unit, scp = device.split(",")
    return f"{ca},{unit},{scp},TEST ST,1,IRT,{date},{time},REGULAR,{entries},{exits}"


def event_ms(value):
    """The UTC time of a row(), in epoch milliseconds."""
    f = value.split(",")
    return int(datetime.datetime.strptime(f[6] + " " + f[7], "%m/%d/%Y %H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000)


class Daemon:
    def __init__(self, tmp_path, broker):
        self.tmp = tmp_path
        self.lake = tmp_path / "lake"
        self.dead_letter = tmp_path / "dead-letter" / "dead-letter.jsonl"
        self.metrics_port = free_port()
        config = {
            "source": {"type": "kafka", "kafka": {
                "bootstrap_servers": broker.address, "topics": [TOPIC], "group_id": "late-test",
                "consumer_threads": 1, "properties": FAST_GROUP}},
            "format": {"type": "mta-csv", "timezone": "UTC", "counters": "cumulative"},
            "window": {"type": "tumbling", "size": "1h", "allowed_lateness": "0s",
                       "idle_timeout": "1h", "max_future": "1d"},
            "sinks": [{"name": "lake", "type": "file", "path": str(self.lake), "format": "csv",
                       "compression": "none", "flush_interval": "100ms"}],
            "dead_letter": {"type": "file", "path": str(tmp_path / "dead-letter")},
            "metrics": {"listen": f"127.0.0.1:{self.metrics_port}"},
            "state": {"dir": str(tmp_path / "state")},
        }
        self.config = tmp_path / "late.yaml"
        self.config.write_text(json.dumps(config))
        self.producer = Producer({"bootstrap.servers": broker.address, "linger.ms": 0})

    def send(self, *values, live=False):
        """live: each message's timestamp is its reading's time, as in a live feed (otherwise
        the producer stamps it now)."""
        for v in values:
            extra = {"timestamp": event_ms(v)} if live else {}
            self.producer.produce(TOPIC, key=b"TEST ST", value=v.encode(), **extra)
        assert self.producer.flush(30) == 0

    def rows(self):
        return oracle.read_lake(self.lake) if self.lake.exists() else {}

    def wait_for_row(self, start, proc):
        return wait_for(lambda: any(k[1] == start for k in self.rows()), 60,
                        f"the window starting {start} in the lake", proc)

    def letters(self):
        if not self.dead_letter.exists():
            return []
        return [json.loads(x) for x in self.dead_letter.read_text().splitlines()]

    def metric(self, name, **labels):
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                      timeout=10).read().decode()
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in body.splitlines():
            m = re.match(rf"^{name}\{{([^}}]*)\}} (\S+)$", line)
            if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
                return float(m.group(2))
        raise AssertionError(f"{name}{{{want}}} not in /metrics")


def test_a_late_record_is_dropped_counted_and_dead_lettered(tmp_path, broker_factory):
    broker = broker_factory(partitions=1, topics=(TOPIC,))
    d = Daemon(tmp_path, broker)
    with background(["run", "-c", d.config], tmp_path / "run.log") as proc:
        d.send(*(row(DEVICE_A, "01/06/2024", f"0{h}:00:00", 1000 + 10 * h) for h in range(6)))
        # The watermark is at 05:00, so [04:00, 05:00) closes and reaches the lake.
        d.wait_for_row("2024-01-06T04:00:00Z", proc)
        before = d.rows()
        assert before[("TEST ST", "2024-01-06T02:00:00Z", "2024-01-06T03:00:00Z")] == (10, 0, 1)

        late = row(DEVICE_B, "01/06/2024", "02:30:00", 5000)
        d.send(late)
        letter = wait_for(lambda: [x for x in d.letters() if x["reason"] == "late"], 60,
                          "the late record in the dead letter", proc)[0]
        assert letter["raw"] == late
        assert letter["partition"] == 0 and letter["offset"] == 6
        assert letter["topic"] == TOPIC
        assert letter["event_time"] == "2024-01-06T02:30:00Z"
        wait_for(lambda: d.metric("turnstiled_dropped_records_total", reason="late") == 1, 30,
                 "dropped_records_total{reason=late} to reach 1", proc)
        assert d.rows() == before, "a late record changed a window already written"
        assert stop(proc) == 0


def test_a_record_a_year_ahead_does_not_make_later_records_late(tmp_path, broker_factory):
    broker = broker_factory(partitions=1, topics=(TOPIC,))
    d = Daemon(tmp_path, broker)
    with background(["run", "-c", d.config], tmp_path / "run.log") as proc:
        # A live feed: each message is appended when its reading was taken, so a reading a
        # year ahead of when it was written is `future` (SPEC §4).
        d.send(row(DEVICE_A, "01/06/2024", "00:00:00", 1000),
               row(DEVICE_A, "01/06/2024", "01:00:00", 1010), live=True)
        d.wait_for_row("2024-01-06T00:00:00Z", proc)

        ahead = row(DEVICE_A, "01/06/2025", "01:30:00", 1020)
        d.producer.produce(TOPIC, key=b"TEST ST", value=ahead.encode(),
                           timestamp=event_ms(row(DEVICE_A, "01/06/2024", "01:30:00", 0)))
        assert d.producer.flush(30) == 0
        letter = wait_for(lambda: [x for x in d.letters() if x["reason"] == "future"], 60,
                          "the future record in the dead letter", proc)[0]
        assert letter["raw"] == ahead

        # The stream goes on in 2024; none of it is late, and the year-ahead reading never moved
        # the device's baseline (1010 -> 1030 counts 20).
        d.send(row(DEVICE_A, "01/06/2024", "02:00:00", 1030),
               row(DEVICE_A, "01/06/2024", "03:00:00", 1035),
               row(DEVICE_A, "01/06/2024", "04:00:00", 1036), live=True)
        d.wait_for_row("2024-01-06T03:00:00Z", proc)
        assert d.rows() == {
            ("TEST ST", "2024-01-06T00:00:00Z", "2024-01-06T01:00:00Z"): (0, 0, 1),
            ("TEST ST", "2024-01-06T01:00:00Z", "2024-01-06T02:00:00Z"): (10, 0, 1),
            ("TEST ST", "2024-01-06T02:00:00Z", "2024-01-06T03:00:00Z"): (20, 0, 1),
            ("TEST ST", "2024-01-06T03:00:00Z", "2024-01-06T04:00:00Z"): (5, 0, 1),
        }
        assert [x["reason"] for x in d.letters()] == ["future"]
        assert d.metric("turnstiled_dropped_records_total", reason="future") == 1
        assert d.metric("turnstiled_dropped_records_total", reason="late") == 0
        assert stop(proc) == 0
