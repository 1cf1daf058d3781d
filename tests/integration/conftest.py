"""Shared fixtures for the integration tests: the built binary, free ports, the embedded broker,
the real MTA weeks, and an independent Kafka client (python3-confluent-kafka).

Every process a test starts is stopped by its PID, and every wait is on a condition (a file
appearing, a count reached) with a generous deadline, never a bare sleep.
"""
import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

SOURCE_DIR = pathlib.Path(
    os.environ.get("TURNSTILED_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
SHARED_DIR = pathlib.Path(os.environ.get("TURNSTILED_SHARED_DIR", SOURCE_DIR.parent / "shared"))
MTA_DIR = SHARED_DIR / "data" / "mta"
MTA_WEEKS = sorted(p.name for p in MTA_DIR.glob("turnstile_*.txt*")) if MTA_DIR.is_dir() else []
# The sanitizer runs check threads and memory, not data coverage: they set this to fewer weeks.
if os.environ.get("TURNSTILED_TEST_WEEKS"):
    MTA_WEEKS = MTA_WEEKS[:int(os.environ["TURNSTILED_TEST_WEEKS"])]
NO_MTA = f"real MTA weeks not found in {MTA_DIR} (set TURNSTILED_SHARED_DIR)"
# Under CI (CI=true, as GitHub Actions and most CI services set it) missing real data fails the
# tests that need it: a CI run must never pass by skipping them. Elsewhere they skip.
IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")

# Sanitizer builds run many times slower; deadlines scale with this.
SLOW = float(os.environ.get("TURNSTILED_TEST_SLOWDOWN", "1"))


# Consumer settings for the embedded broker: its group rebalances take about session.timeout.ms,
# so short sessions keep a late-joining consumer thread from stalling a run (docs/BROKER.md).
FAST_GROUP = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}


def turnstiled_bin():
    binary = os.environ.get("TURNSTILED_BIN")
    if not binary:
        pytest.fail("TURNSTILED_BIN is not set; run through ctest or set it to the built binary")
    return binary


def missing_mta(detail=NO_MTA):
    """Real data a test needs is absent: fail under CI, skip with `detail` otherwise."""
    if IN_CI:
        pytest.fail(f"{detail}; CI=true, so this fails instead of skipping", pytrace=False)
    pytest.skip(f"{detail}: skipped")


def require_mta_weeks():
    """MTA_WEEKS, or fail (CI) / skip when there are none."""
    if not MTA_WEEKS:
        missing_mta()
    return MTA_WEEKS


def week_path(name):
    """The path of one real week, or fail (CI) / skip the test with a clear message."""
    path = MTA_DIR / name
    if not path.is_file():
        missing_mta(NO_MTA if not MTA_WEEKS else f"real MTA week {path} not found")
    return path


def mta_weeks_or_skip():
    """Parametrize over every real week; a single case "absent" when there are none, which
    skips, or fails under CI (week_path fails on it)."""
    if MTA_WEEKS:
        return MTA_WEEKS
    if IN_CI:
        return ["absent"]
    return [pytest.param("absent", marks=pytest.mark.skip(reason=f"{NO_MTA}: skipped"))]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout, what, proc=None, interval=0.05):
    """Polls `condition` until it returns a truthy value; fails with `what` after `timeout` s or
    as soon as `proc` exits."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: process exited with {proc.returncode} first")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout * SLOW:.0f}s waiting for {what}")
        time.sleep(interval)


def stop(proc, timeout=60):
    """SIGTERM one process we started, by PID, and return its exit code."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout * SLOW)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"pid {proc.pid} ignored SIGTERM for {timeout * SLOW:.0f}s")


def run(args, timeout=600, check=True, **kwargs):
    """Runs `turnstiled ARGS...` to completion and returns the CompletedProcess."""
    result = subprocess.run([turnstiled_bin(), *map(str, args)], capture_output=True, text=True,
                            timeout=timeout * SLOW, check=False, **kwargs)
    if check and result.returncode != 0:
        pytest.fail(f"turnstiled {' '.join(map(str, args))} exited {result.returncode}\n"
                    f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}")
    return result


class Broker:
    """`turnstiled broker` on loopback. `address` is its bootstrap address."""

    def __init__(self, tmp_path, partitions=6, topics=("turnstile-stream",), brokers=1):
        self.bootstrap_file = tmp_path / f"broker-{time.monotonic_ns()}.addr"
        args = [turnstiled_bin(), "broker", "--partitions", str(partitions), "--brokers",
                str(brokers), "--bootstrap-file", str(self.bootstrap_file)]
        for t in topics:
            args += ["--topic", t]
        self.log = open(tmp_path / "broker.log", "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.address = wait_for(lambda: self._read_address(), 30, "the broker's bootstrap file",
                                self.proc)
        self.exit_code = None

    def _read_address(self):
        try:
            return self.bootstrap_file.read_text().strip()
        except FileNotFoundError:
            return None

    def stop(self):
        if self.exit_code is None:
            self.exit_code = stop(self.proc)
            self.log.close()
        return self.exit_code


@pytest.fixture
def broker_factory(tmp_path):
    started = []

    def make(**kwargs):
        b = Broker(tmp_path, **kwargs)
        started.append(b)
        return b

    yield make
    for b in started:
        assert b.stop() == 0, f"broker exited {b.exit_code}; see {tmp_path / 'broker.log'}"


@pytest.fixture
def broker(broker_factory):
    return broker_factory()


def consume_all(bootstrap, topic, expected, timeout=120, group=None):
    """Reads `expected` messages from `topic` with python3-confluent-kafka, from the beginning.
    Returns a list of (partition, offset, key bytes, value bytes, timestamp ms)."""
    from confluent_kafka import Consumer, KafkaError

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group or f"reader-{time.monotonic_ns()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    })
    consumer.subscribe([topic])
    out = []
    deadline = time.monotonic() + timeout * SLOW
    try:
        while len(out) < expected:
            if time.monotonic() > deadline:
                pytest.fail(f"read {len(out)} of {expected} messages from {topic} in time")
            for m in consumer.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    pytest.fail(f"consumer error: {m.error()}")
                out.append((m.partition(), m.offset(), m.key(), m.value(), m.timestamp()[1]))
        # Nothing more should arrive.
        for m in consumer.consume(num_messages=1000, timeout=1.0):
            if not m.error():
                out.append((m.partition(), m.offset(), m.key(), m.value(), m.timestamp()[1]))
    finally:
        consumer.close()
    return out


@contextlib.contextmanager
def background(args, log_path, env=None):
    """Starts `turnstiled ARGS...` in the background; stops it by PID on exit."""
    log = open(log_path, "w")
    proc = subprocess.Popen([turnstiled_bin(), *map(str, args)], stdout=log,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            stop(proc)
        log.close()
