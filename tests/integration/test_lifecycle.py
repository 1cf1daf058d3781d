"""SPEC §7: readiness, liveness, the systemd protocol, signals and exit codes, as a service
manager and a load balancer see them.

- /readyz is 503 while no broker is reachable (and /healthz 200), 200 once partitions are
  assigned, and 503 again when a sink goes down.
- A test playing systemd (its own NOTIFY_SOCKET and WATCHDOG_USEC) sees READY=1 only after the
  assignment, WATCHDOG=1 at least every half interval, and STOPPING=1 on SIGTERM. One that
  never reads its socket cannot hold up a stop.
- SIGTERM during start-up (--available-now waiting for an unreachable broker) ends the run at
  once; SIGHUP reopens the dead-letter file after logrotate moved it.
- Every documented exit code: 0 done, 1 runtime failure, 2 usage error, 78 config error.
- Each thread is named for its job (shard-N, source-N, sink-<name>, sync-<name>, ...).
"""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import (FAST_GROUP, SLOW, background, free_port, require_mta_weeks, run, stop,
                      turnstiled_bin, wait_for, week_path)

TOPIC = "turnstile-stream"


def write_config(tmp_path, bootstrap, port, lake=None, group="life", extra=None):
    cfg = {
        "source": {"type": "kafka", "kafka": {"bootstrap_servers": bootstrap, "topics": [TOPIC],
                                              "group_id": group, "consumer_threads": 1,
                                              "properties": FAST_GROUP}},
        "format": {"type": "mta-csv", "timezone": "America/New_York"},
        "window": {"type": "tumbling", "size": "4h", "idle_timeout": "2s"},
        "sinks": [{"name": "lake", "type": "file", "path": str(lake or tmp_path / "lake"),
                   "format": "csv", "compression": "none", "flush_interval": "100ms"}],
        "metrics": {"listen": f"127.0.0.1:{port}"},
        "state": {"dir": str(tmp_path / "state")},
        "pipeline": {"shutdown_timeout": "10s"},
        **(extra or {}),
    }
    path = tmp_path / f"{group}.yaml"
    path.write_text(json.dumps(cfg))
    return path


def probe(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def test_readyz_follows_the_broker_and_the_sinks(tmp_path, broker_factory):
    # No broker: not ready, but alive.
    port = free_port()
    dead = f"127.0.0.1:{free_port()}"
    cfg = write_config(tmp_path, dead, port, lake=tmp_path / "lake0", group="nobroker")
    with background(["run", "-c", cfg], tmp_path / "nobroker.log") as proc:
        started = time.monotonic()
        wait_for(lambda: probe(port, "/readyz")[0] == 503, 5 * SLOW, "/readyz 503", proc)
        assert time.monotonic() - started < 5 * SLOW
        status, body = probe(port, "/readyz")
        assert "no partitions assigned" in body, body
        assert probe(port, "/healthz")[0] == 200
        time.sleep(1)
        assert probe(port, "/readyz")[0] == 503
        assert stop(proc) == 0

    # A broker: ready after the assignment; a sink that goes down: not ready.
    broker = broker_factory(partitions=2, topics=(TOPIC,))
    lake = tmp_path / "lake"
    lake.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "turnstiled-test", str(lake)],
                      capture_output=True).returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("cannot mount a tmpfs (CI must run as root with CAP_SYS_ADMIN)")
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        port = free_port()
        cfg = write_config(tmp_path, broker.address, port, lake=lake, group="withbroker")
        log = tmp_path / "withbroker.log"
        with background(["run", "-c", cfg], log) as proc:
            wait_for(lambda: probe(port, "/readyz")[0] == 200, 60 * SLOW, "/readyz 200", proc)
            assert "partitions assigned" in log.read_text()
            subprocess.run(["mount", "-o", "remount,ro", str(lake)], check=True)
            week = week_path(require_mta_weeks()[0])
            produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", week])
            assert "failures=0" in produced.stderr
            wait_for(lambda: probe(port, "/readyz")[0] == 503, 60 * SLOW,
                     "/readyz 503 with the sink down", proc, interval=0.2)
            status, body = probe(port, "/readyz")
            assert "sink lake" in body, body
            assert probe(port, "/healthz")[0] == 200  # down, waiting: alive
            subprocess.run(["mount", "-o", "remount,rw", str(lake)], check=True)
            wait_for(lambda: probe(port, "/readyz")[0] == 200, 60 * SLOW,
                     "/readyz 200 once the sink is back", proc, interval=0.2)
            assert stop(proc) == 0
    finally:
        subprocess.run(["umount", "-l", str(lake)], check=False)


def test_systemd_sees_ready_after_assignment_the_watchdog_and_stopping(tmp_path, broker):
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.1)
    watchdog_s = 2.0
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path),
           "WATCHDOG_USEC": str(int(watchdog_s * 1e6))}
    port = free_port()
    cfg = write_config(tmp_path, broker.address, port)
    log = tmp_path / "run.log"
    messages = []  # (monotonic time, message, whether the log had the assignment by then)

    def receive(until):
        while time.monotonic() < until:
            try:
                data = sock.recv(4096).decode()
            except socket.timeout:
                continue
            for line in data.splitlines():
                messages.append((time.monotonic(), line, "partitions assigned" in log.read_text()))

    try:
        with background(["run", "-c", cfg], log, env=env) as proc:
            receive(time.monotonic() + 8 * SLOW)
            assert proc.poll() is None, log.read_text()[-2000:]
            proc.send_signal(signal.SIGTERM)
            receive(time.monotonic() + 2)
            assert proc.wait(timeout=60 * SLOW) == 0
    finally:
        sock.close()
    ready = [m for m in messages if m[1] == "READY=1"]
    assert len(ready) == 1, messages
    assert ready[0][2], "READY=1 came before the partitions were assigned"
    beats = [t for t, line, _ in messages if line == "WATCHDOG=1"]
    assert len(beats) >= 4, messages
    gaps = [b - a for a, b in zip(beats, beats[1:])]
    assert max(gaps) <= watchdog_s / 2 * SLOW, gaps
    assert any(line == "STOPPING=1" for _, line, _ in messages), messages


def thread_names(pid):
    names = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as f:
                names.add(f.read().strip())
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return names


def test_each_thread_is_named_for_what_it_does(tmp_path, broker):
    """`top -H`, `ps -L` and a profiler tell the shards, sources, sink writers and syncers
    apart."""
    port = free_port()
    cfg = write_config(tmp_path, broker.address, port, group="names",
                       extra={"pipeline": {"shards": 2, "shutdown_timeout": "10s"}})
    log = tmp_path / "run.log"
    expected = {"shard-0", "shard-1", "source-0", "sink-lake", "sync-lake", "checkpoint",
                "lifecycle", "signals"}
    with background(["run", "-c", cfg], log) as proc:
        wait_for(lambda: probe(port, "/readyz")[0] == 200, 60, "/readyz", proc)
        wait_for(lambda: expected <= thread_names(proc.pid), 30,
                 f"threads named {sorted(expected)}", proc)
        assert stop(proc) == 0


def test_a_supervisor_that_never_reads_cannot_hold_up_a_stop(tmp_path, broker):
    """The notification socket's queue holds a handful of datagrams (net.unix.max_dgram_qlen).
    With a fast watchdog and nobody reading, it fills within a second; WATCHDOG=1 and
    STOPPING=1 must not block the daemon, so SIGTERM still ends the run."""
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "200000"}
    port = free_port()
    cfg = write_config(tmp_path, broker.address, port)
    log = tmp_path / "run.log"
    try:
        with background(["run", "-c", cfg], log, env=env) as proc:
            wait_for(lambda: probe(port, "/readyz")[0] == 200, 60 * SLOW, "ready", proc)
            queue_len = int(open("/proc/sys/net/unix/max_dgram_qlen").read())
            time.sleep(0.05 * (queue_len + 10))  # twice past a full queue at 50 ms a beat
            assert proc.poll() is None, log.read_text()[-2000:]
            assert probe(port, "/healthz")[0] == 200, log.read_text()[-2000:]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30 * SLOW) == 0, log.read_text()[-2000:]
    finally:
        sock.close()


def test_sigterm_during_start_up_ends_the_run(tmp_path):
    port = free_port()
    cfg = write_config(tmp_path, f"127.0.0.1:{free_port()}", port)
    log = tmp_path / "run.log"
    with background(["run", "-c", cfg, "--available-now"], log) as proc:
        wait_for(lambda: "starting" in log.read_text(), 10 * SLOW, "the start", proc)
        time.sleep(1)
        assert proc.poll() is None  # still waiting for the broker
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30 * SLOW) == 0
        assert time.monotonic() - sent < 5 * SLOW
    assert "stopped during start-up" in log.read_text()


def test_sighup_reopens_the_dead_letter_file(tmp_path, broker):
    from confluent_kafka import Producer

    port = free_port()
    dl = tmp_path / "dead-letter"
    cfg = write_config(tmp_path, broker.address, port,
                       extra={"dead_letter": {"type": "file", "path": str(dl)}})
    producer = Producer({"bootstrap.servers": broker.address})

    def bad(n, tag):
        for i in range(n):
            producer.produce(TOPIC, value=f"{tag} garbage {i}".encode())
        assert producer.flush(30) == 0

    current = dl / "dead-letter.jsonl"
    with background(["run", "-c", cfg], tmp_path / "run.log") as proc:
        wait_for(lambda: probe(port, "/readyz")[0] == 200, 60 * SLOW, "ready", proc)
        bad(3, "before")
        wait_for(lambda: current.exists() and current.read_text().count("\n") == 3, 30 * SLOW,
                 "three dead letters", proc)
        rotated = dl / "dead-letter.jsonl.1"
        current.rename(rotated)  # what logrotate does
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "dead-letter file reopened" in (tmp_path / "run.log").read_text(),
                 10 * SLOW, "the reopen", proc)
        bad(2, "after")
        wait_for(lambda: current.exists() and current.read_text().count("\n") == 2, 30 * SLOW,
                 "two dead letters in the new file", proc)
        assert stop(proc) == 0
    assert all("before" in x for x in rotated.read_text().splitlines())
    assert all("after" in x for x in current.read_text().splitlines())


def test_each_exit_code(tmp_path, broker):
    def code(args, **kw):
        return subprocess.run([turnstiled_bin(), *map(str, args)], capture_output=True,
                              text=True, timeout=120 * SLOW, **kw).returncode

    # 2: usage errors, whatever part of the command line is wrong.
    assert code([]) == 2
    assert code(["runn"]) == 2
    assert code(["run"]) == 2
    assert code(["run", "-c", "x.yaml", "--no-such-flag"]) == 2
    assert code(["produce", "--rate", "fast"]) == 2
    # 78: a config that cannot work.
    bad = tmp_path / "bad.yaml"
    bad.write_text("window: {size: 4 hours}\n")
    assert code(["run", "-c", bad]) == 78
    assert code(["run", "-c", tmp_path / "missing.yaml"]) == 78
    # 1: a runtime failure (a sink that can never work).
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = write_config(tmp_path, broker.address, free_port(), lake=blocker / "lake",
                       group="exit1")
    assert code(["run", "-c", cfg]) == 1
    # 0: done.
    cfg = write_config(tmp_path, broker.address, free_port(), group="exit0")
    assert code(["run", "-c", cfg, "--available-now"]) == 0


def test_log_flags_json_lines_a_progress_line_and_the_end_summary(tmp_path, broker):
    week = week_path(require_mta_weeks()[0])
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", week])
    assert "failures=0" in produced.stderr
    dl = tmp_path / "dead-letter"
    cfg = write_config(tmp_path, broker.address, free_port(),
                       extra={"dead_letter": {"type": "file", "path": str(dl)},
                              "log": {"level": "info", "format": "logfmt",
                                      "progress_interval": "200ms"}})
    result = run(["run", "-c", cfg, "--available-now", "--log-format", "json"])
    lines = [json.loads(x) for x in result.stderr.splitlines()]  # every line is JSON
    progress = [x for x in lines if x["msg"] == "progress"]
    assert progress, result.stderr[-2000:]
    last = progress[-1]
    for key in ("records", "records_per_second", "watermark", "lag", "windows"):
        assert key in last, last
    summary = [x for x in lines if x["msg"] == "input complete"][-1]
    assert summary["sink_lake"].startswith(f"file {tmp_path / 'lake'} rows="), summary
    assert " files=" in summary["sink_lake"]
    assert summary["dead_letters"].endswith(f" in {dl}"), summary
    # --log-level warn: the info lines are gone.
    quiet = run(["run", "-c", cfg, "--available-now", "--log-level", "warn"])
    assert "level=info" not in quiet.stderr

    # Bad values: on the command line a usage error (2), in the config a config error (78).
    assert run(["run", "-c", cfg, "--log-level", "loud"], check=False).returncode == 2
    assert run(["run", "-c", cfg, "--log-format", "xml"], check=False).returncode == 2
    bad = tmp_path / "bad-log.yaml"
    text = json.loads(cfg.read_text())
    text["log"] = {"format": "xml"}
    bad.write_text(json.dumps(text))
    refused = run(["run", "-c", bad], check=False)
    assert refused.returncode == 78
    assert "log.format: invalid value 'xml'; expected one of: logfmt, json" in refused.stderr
