"""`turnstiled broker`: the embedded development broker, checked with an independent Kafka
client (python3-confluent-kafka): it tells its address on stdout and in --bootstrap-file,
creates each --topic with --partitions partitions, carries messages both ways, splits the
partitions of a topic between the members of a consumer group, keeps about 5 MiB per
partition (docs/BROKER.md), and stops with exit code 0 on SIGTERM or SIGINT.
"""
import collections
import re
import select
import signal
import subprocess
import threading

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import SLOW, consume_all, run, stop, turnstiled_bin, wait_for

TOPIC = "turnstile-stream"
ADDRESS = re.compile(r"^127\.0\.0\.1:\d+$")


def topics(address):
    """{topic: partition count} as the cluster's metadata tells it."""
    md = AdminClient({"bootstrap.servers": address}).list_topics(timeout=30)
    return {name: len(t.partitions) for name, t in md.topics.items()}


def produce(address, messages, topic=TOPIC, **conf):
    """Sends (key, value, partition or None) triples and waits for every delivery."""
    p = Producer({"bootstrap.servers": address, "linger.ms": 5, **conf})
    for key, value, partition in messages:
        if partition is None:
            p.produce(topic, key=key, value=value)
        else:
            p.produce(topic, key=key, value=value, partition=partition)
    assert p.flush(60 * SLOW) == 0


def watermarks(address, partition):
    c = Consumer({"bootstrap.servers": address, "group.id": "watermarks"})
    try:
        return c.get_watermark_offsets(TopicPartition(TOPIC, partition), timeout=30)
    finally:
        c.close()


def test_it_prints_its_bootstrap_address_and_writes_it_to_the_bootstrap_file(broker):
    printed = broker.proc.stdout.readline().strip()
    assert ADDRESS.match(printed), printed
    assert broker.bootstrap_file.read_text() == printed + "\n"
    assert broker.address == printed
    assert topics(printed) == {TOPIC: 6}


def test_without_a_bootstrap_file_it_prints_the_address_only(tmp_path):
    proc = subprocess.Popen([turnstiled_bin(), "broker"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=tmp_path)
    try:
        wait_for(lambda: select.select([proc.stdout], [], [], 0)[0], 30, "the address", proc)
        printed = proc.stdout.readline().strip()
        assert ADDRESS.match(printed), printed
        assert topics(printed) == {TOPIC: 6}
    finally:
        assert stop(proc) == 0
    assert list(tmp_path.iterdir()) == []


def test_each_topic_is_created_with_the_given_partitions(broker_factory):
    b = broker_factory(partitions=3, topics=("readings", "results", "dead-letter"))
    assert topics(b.address) == {"readings": 3, "results": 3, "dead-letter": 3}


def test_a_topic_it_was_not_told_of_is_created_on_first_use_with_4_partitions(broker):
    # The mock cluster's own default, whatever --partitions says: create topics with --topic.
    produce(broker.address, [(b"k", b"v", None)], topic="elsewhere")
    assert topics(broker.address) == {TOPIC: 6, "elsewhere": 4}


def test_an_independent_client_reads_back_what_it_produced(broker):
    sent = [(f"station-{i % 37}".encode(), f"value-{i}".encode(), None) for i in range(3000)]
    produce(broker.address, sent)
    got = consume_all(broker.address, TOPIC, len(sent))
    assert len(got) == len(sent)
    assert collections.Counter((k, v) for _, _, k, v, _ in got) == \
        collections.Counter((k, v) for k, v, _ in sent)
    # Each key sits in one partition, in the order it was sent.
    by_key = collections.defaultdict(list)
    parts = collections.defaultdict(set)
    for part, _, key, value, _ in sorted(got, key=lambda m: (m[0], m[1])):
        by_key[key].append(value)
        parts[key].add(part)
    assert all(len(p) == 1 for p in parts.values())
    for key, values in by_key.items():
        assert values == [v for k, v, _ in sent if k == key]


class Member(threading.Thread):
    """One consumer-group member polling in its own thread, recording its assignment and what
    it reads."""

    def __init__(self, address, group):
        super().__init__(daemon=True)
        self.consumer = Consumer({
            "bootstrap.servers": address, "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            # The mock cluster waits about a session timeout for members to rejoin.
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
        })
        self.lock = threading.Lock()
        self.assigned = set()
        self.messages = []
        self.stopping = threading.Event()
        self.error = None

    def on_assign(self, consumer, partitions):
        with self.lock:
            self.assigned = {tp.partition for tp in partitions}

    def on_revoke(self, consumer, partitions):
        with self.lock:
            self.assigned = set()

    def run(self):
        try:
            self.consumer.subscribe([TOPIC], on_assign=self.on_assign, on_revoke=self.on_revoke)
            while not self.stopping.is_set():
                for m in self.consumer.consume(num_messages=1000, timeout=0.1):
                    if m.error():
                        self.error = str(m.error())
                        continue
                    with self.lock:
                        self.messages.append((m.partition(), m.value()))
        except Exception as e:  # reported by the test thread
            self.error = repr(e)
        finally:
            self.consumer.close()

    def snapshot(self):
        with self.lock:
            return set(self.assigned), list(self.messages)


def test_a_group_of_two_splits_the_partitions_between_its_members(broker):
    members = [Member(broker.address, "split-test") for _ in range(2)]
    for m in members:
        m.start()
    try:
        def split():
            a, b = (m.snapshot()[0] for m in members)
            return a and b and not (a & b) and (a | b) == set(range(6))

        wait_for(split, 120, "two members with disjoint, non-empty shares of 6 partitions")
        # Data sent after the split goes to the member that owns each partition, once.
        produce(broker.address, [(b"k", f"{p}-{i}".encode(), p)
                                 for p in range(6) for i in range(50)])
        wait_for(lambda: sum(len(m.snapshot()[1]) for m in members) >= 300, 60,
                 "every message to reach a member")
        (a_parts, a_msgs), (b_parts, b_msgs) = (m.snapshot() for m in members)
        assert a_parts and b_parts and not (a_parts & b_parts)
        assert a_parts | b_parts == set(range(6))
        assert {p for p, _ in a_msgs} == a_parts
        assert {p for p, _ in b_msgs} == b_parts
        values = sorted(v for _, v in a_msgs + b_msgs)
        assert values == sorted(f"{p}-{i}".encode() for p in range(6) for i in range(50))
        assert all(m.error is None for m in members), [m.error for m in members]
    finally:
        for m in members:
            m.stopping.set()
        for m in members:
            m.join(timeout=60 * SLOW)


def test_it_keeps_about_5_mib_per_partition_and_deletes_older_data(broker):
    # Uncompressed 10 KiB messages into partition 0: 3 MiB all stay...
    value = b"x" * 10240
    produce(broker.address, [(b"k", value, 0)] * 300, **{"compression.type": "none"})
    assert watermarks(broker.address, 0) == (0, 300)
    # ...but at 8 MiB the oldest are gone, while the offsets keep counting.
    produce(broker.address, [(b"k", value, 0)] * 500, **{"compression.type": "none"})
    low, high = watermarks(broker.address, 0)
    assert high == 800
    assert 0 < low < 800 - 400, (low, high)


def test_sigterm_stops_it_with_exit_code_0(broker):
    assert broker.stop() == 0


def test_sigint_stops_it_with_exit_code_0(tmp_path):
    proc = subprocess.Popen([turnstiled_bin(), "broker", "--bootstrap-file", tmp_path / "addr"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (tmp_path / "addr").exists(), 30, "the bootstrap file", proc)
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(timeout=60 * SLOW) == 0
    finally:
        stop(proc)  # only if SIGINT did not stop it


def test_a_cluster_of_three_brokers_carries_messages(broker_factory):
    b = broker_factory(brokers=3, partitions=6)
    md = AdminClient({"bootstrap.servers": b.address}).list_topics(timeout=30)
    assert len(md.brokers) == 3
    sent = [(f"s{i % 11}".encode(), str(i).encode(), None) for i in range(600)]
    produce(b.address, sent)
    got = consume_all(b.address, TOPIC, len(sent))
    assert sorted(v for _, _, _, v, _ in got) == sorted(v for _, v, _ in sent)


def test_bad_options_are_refused():
    for args in (["--partitions", "0"], ["--brokers", "17"], ["--no-such-option"]):
        result = run(["broker", *args], timeout=30, check=False)
        assert result.returncode != 0, args
