"""docs/LIVE.md: /events, the live view's Server-Sent Events, against the real daemon.

The input is a FIFO the test writes real MTA lines into, so that the stream runs while clients
watch, and ends when the test closes it (the run then emits every window and exits).
"""
import collections
import errno
import glob
import http.client
import json
import os
import re
import socket
import time

import zstandard

from conftest import FAST_GROUP, SLOW, background, free_port, run, stop, wait_for, week_path
from sse import Client

WEEK = "turnstile_240106.txt.zst"


def week_lines(name=WEEK):
    with open(week_path(name), "rb") as f:
        return zstandard.ZstdDecompressor().stream_reader(f).read().splitlines(keepends=True)


def write_config(tmp_path, port, live=None, metrics=True):
    cfg = {
        "source": {"type": "file", "file": {"paths": [str(tmp_path / "in.fifo")]}},
        "format": {"type": "mta-csv", "timezone": "America/New_York",
                   "counters": "cumulative"},
        "window": {"type": "tumbling", "size": "4h"},
        "sinks": [{"name": "lake", "type": "file", "path": str(tmp_path / "lake"),
                   "format": "jsonl", "compression": "none"}],
        "dead_letter": {"type": "file", "path": str(tmp_path / "dead-letter")},
        "metrics": {"enabled": metrics, "listen": f"127.0.0.1:{port}"},
        "state": {"dir": str(tmp_path / "state")},
    }
    if live is not None:
        cfg["live"] = live
    path = tmp_path / "live.yaml"
    path.write_text(json.dumps(cfg))
    return path


class Daemon:
    """`turnstiled run` over a FIFO; feed() writes lines, finish() closes the input."""

    def __init__(self, tmp_path, live=None, metrics=True):
        self.port = free_port()
        self.fifo = tmp_path / "in.fifo"
        os.mkfifo(self.fifo)
        self.config = write_config(tmp_path, self.port, live, metrics)
        self.log = tmp_path / "run.log"
        self.lake = tmp_path / "lake"
        self.fd = None

    def open_input(self, proc):
        def try_open():
            try:
                return os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno == errno.ENXIO:  # the daemon has not opened it yet
                    return None
                raise
        self.fd = wait_for(try_open, 60, "the daemon to open its input FIFO", proc)
        os.set_blocking(self.fd, True)

    def feed(self, lines):
        os.write(self.fd, b"".join(lines))

    def finish(self):
        os.close(self.fd)
        self.fd = None

    def lake_rows(self):
        rows = []
        for path in glob.glob(str(self.lake / "**" / "part-*"), recursive=True):
            with open(path) as f:
                rows += [json.loads(line) for line in f if line.strip()]
        return rows


def get(port, path, method="GET", headers=None, timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


def metric(port, name):
    _, body, _ = get(port, "/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def strip(row):
    return json.dumps({k: v for k, v in row.items() if k != "source"}, sort_keys=True)


def test_a_watched_run_streams_updates_then_exactly_the_closed_windows_the_sink_writes(tmp_path):
    lines = week_lines()
    # The end of the input closes every window at once (about 16,000 with the updates before
    # them, more than the default ring): the ring holds them all.
    d = Daemon(tmp_path, live={"buffer_events": 65536})
    with background(["run", "-c", d.config], d.log) as proc:
        d.open_input(proc)
        wait_for(lambda: _serving(d.port), 60, "the live endpoint", proc)
        c = Client(d.port)
        assert c.status == 200
        wait_for(lambda: c.of("hello"), 30, "the hello event", proc)
        hello = c.of("hello")[0][2]
        assert hello["window"]["type"] == "tumbling" and hello["window"]["size_ms"] == 4 * 3600000
        # A day and a half, then a pause in which the open windows are sent as updates.
        d.feed(lines[:40000])
        wait_for(lambda: c.of("update"), 30, "update events", proc)
        d.feed(lines[40000:])
        d.finish()
        wait_for(lambda: c.done.is_set(), 120, "the end of the stream", proc)
        assert proc.wait(timeout=60 * SLOW) == 0
    assert c.events[-1][0] == "end", c.events[-3:]
    assert c.events[0][0] == "hello"
    updates = c.of("update")
    assert all(not data["final"] for _, _, data in updates)
    closes = c.of("close")
    assert all(data["final"] for _, _, data in closes)
    ids = [eid for kind, eid, _ in c.events if kind in ("update", "close")]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "ids grow by one per event"
    assert not c.of("gap")
    lake = collections.Counter(strip(r) for r in d.lake_rows())
    streamed = collections.Counter(strip(data) for _, _, data in closes)
    assert sum(lake.values()) > 10000
    assert streamed == lake
    beats = c.of("heartbeat")
    assert beats and beats[-1][2]["records"] > 0 and beats[-1][2]["lag"] is None


def _serving(port):
    try:
        return get(port, "/readyz", timeout=1)[0] in (200, 503)
    except OSError:
        return False


def test_past_the_client_cap_a_new_client_gets_503_until_one_leaves(tmp_path):
    d = Daemon(tmp_path, live={"max_clients": 2})
    with background(["run", "-c", d.config], d.log) as proc:
        d.open_input(proc)
        wait_for(lambda: _serving(d.port), 60, "the live endpoint", proc)
        a, b = Client(d.port), Client(d.port)
        assert (a.status, b.status) == (200, 200)
        wait_for(lambda: a.of("hello") and b.of("hello"), 30, "both clients' hello", proc)
        status, body, headers = get(d.port, "/events")
        assert status == 503 and headers.get("Retry-After") == "5"
        assert b"live.max_clients" in body
        assert metric(d.port, "turnstiled_live_clients_refused_total") == 1
        assert metric(d.port, "turnstiled_live_clients ") == 2
        # The probes are not clients: they still answer.
        assert get(d.port, "/metrics")[0] == 200
        a.close()
        wait_for(lambda: metric(d.port, "turnstiled_live_clients ") == 1, 30,
                 "the daemon to notice a client left", proc)
        c = Client(d.port)
        assert c.status == 200
        c.close()
        b.close()
        d.finish()
        assert proc.wait(timeout=60 * SLOW) == 0


def test_a_client_that_stops_reading_is_dropped_and_the_others_get_everything(tmp_path):
    weeks = week_lines() + week_lines("turnstile_240113.txt.zst")
    # The end of a bounded input closes every window at once: about 32,000 here. The ring
    # holds them all, so that a client that keeps reading misses none.
    d = Daemon(tmp_path, live={"buffer_events": 65536})
    with background(["run", "-c", d.config], d.log) as proc:
        d.open_input(proc)
        wait_for(lambda: _serving(d.port), 60, "the live endpoint", proc)
        # A client with a tiny receive buffer that never reads after its request.
        stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", d.port))
        stalled.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        good = Client(d.port)
        wait_for(lambda: metric(d.port, "turnstiled_live_clients ") == 2, 30, "two clients",
                 proc)
        wait_for(lambda: good.of("hello"), 30, "the hello event", proc)
        for i in range(0, len(weeks), 20000):
            d.feed(weeks[i:i + 20000])
        wait_for(lambda: metric(d.port, 'turnstiled_live_clients_dropped_total{reason="slow"}')
                 == 1, 120, "the stalled client to be dropped", proc)
        assert metric(d.port, "turnstiled_live_clients ") == 1
        d.finish()
        wait_for(lambda: good.done.is_set(), 120, "the end of the stream", proc)
        assert proc.wait(timeout=60 * SLOW) == 0
        stalled.close()
    status = open(d.log).read()
    assert good.events[-1][0] == "end"
    lake = collections.Counter(strip(r) for r in d.lake_rows())
    assert collections.Counter(strip(data) for _, _, data in good.of("close")) == lake, status


def test_last_event_id_resumes_after_it_and_an_id_the_ring_no_longer_holds_gets_a_gap(tmp_path):
    lines = week_lines()
    d = Daemon(tmp_path, live={"buffer_events": 64})
    with background(["run", "-c", d.config], d.log) as proc:
        d.open_input(proc)
        wait_for(lambda: _serving(d.port), 60, "the live endpoint", proc)
        watcher = Client(d.port)  # keeps events recorded
        wait_for(lambda: watcher.of("hello"), 30, "the hello event", proc)
        d.feed(lines[:30000])
        wait_for(lambda: [e for e in watcher.events if e[1] is not None and e[1] >= 40], 60,
                 "40 events", proc)
        # The ring must still hold the id resumed from below, so nothing may push it on
        # meanwhile: wait until the input is read and every event made of it has reached the
        # watcher (with no new input no event comes). A slow build once read it mid-stream.
        wait_for(lambda: metric(d.port, "turnstiled_consumed_records_total") >= 30000, 120,
                 "the 30000 lines read", proc)
        polls = []

        def settled():
            newest = max((e[1] for e in watcher.events if e[1] is not None), default=None)
            polls.append((metric(d.port, "turnstiled_live_events_total"), newest))
            return len(polls) >= 2 and polls[-1] == polls[-2]
        wait_for(settled, 60, "the live view to publish everything and go quiet", proc,
                 interval=0.5)
        last = max(e[1] for e in watcher.events if e[1] is not None)
        # Resume within the ring: exactly the events after the id asked for.
        resumed = Client(d.port, last_event_id=last - 10)
        wait_for(lambda: [e for e in resumed.events if e[1] is not None], 30, "resumed events",
                 proc)
        first = [e for e in resumed.events if e[1] is not None][0]
        assert first[1] == last - 9
        assert first[2] == [e for e in watcher.events if e[1] == last - 9][0][2]
        assert not resumed.of("gap")
        # Resume from further back than 64 events: a gap first, then the oldest kept.
        old = Client(d.port, last_event_id=1)
        wait_for(lambda: old.of("gap"), 30, "the gap event", proc)
        gap = old.of("gap")[0][2]
        assert gap["after"] == 1 and gap["first_id"] > 2
        wait_for(lambda: [e for e in old.events if e[1] is not None], 30, "events after the gap",
                 proc)
        # Every event is the one after the previous, or the oldest kept after a gap (the ring
        # is small: a later gap may follow while the client is sent the first one).
        expected = None
        for kind, eid, data in list(old.events):
            if kind == "gap":
                assert expected is None or data["first_id"] >= expected
                expected = data["first_id"]
            elif eid is not None:
                assert eid == expected, (eid, expected)
                expected += 1
        for c in (watcher, resumed, old):
            c.close()
        d.finish()
        assert proc.wait(timeout=60 * SLOW) == 0


def test_nothing_is_encoded_while_nobody_watches(tmp_path, broker):
    # A Kafka source closes windows while it streams (a file source closes them at its end).
    run(["produce", "-b", broker.address, "--topic", "turnstile-stream", "--replay",
         week_path(WEEK)])
    port = free_port()
    cfg = json.loads(write_config(tmp_path, port).read_text())
    cfg["source"] = {"type": "kafka", "kafka": {
        "bootstrap_servers": broker.address, "topics": ["turnstile-stream"],
        "group_id": "live-nobody", "consumer_threads": 1, "properties": FAST_GROUP}}
    cfg["window"]["idle_timeout"] = "2s"
    path = tmp_path / "kafka.yaml"
    path.write_text(json.dumps(cfg))
    with background(["run", "-c", path], tmp_path / "run.log") as proc:
        wait_for(lambda: _serving(port) and metric(port, "turnstiled_windows_emitted_total") > 1000,
                 120, "windows to close", proc)
        assert metric(port, "turnstiled_live_events_total") == 0
        assert metric(port, "turnstiled_live_clients ") == 0
        assert stop(proc) == 0


def test_the_live_view_can_be_moved_to_its_own_port_or_turned_off(tmp_path):
    live_port = free_port()
    (tmp_path / "moved").mkdir()
    d = Daemon(tmp_path / "moved", live={"listen": f"127.0.0.1:{live_port}"})
    with background(["run", "-c", d.config], d.log) as proc:
        d.open_input(proc)
        wait_for(lambda: _serving(d.port), 60, "the metrics endpoint", proc)
        wait_for(lambda: _answers(live_port, "/live"), 60, "the live endpoint", proc)
        status, page, headers = get(live_port, "/live")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split(
            "script-src")[1].split(";")[0]
        # The page's script is served apart, so that no inline script may run.
        assert b'<script src="/live.js"></script>' in page
        assert not re.search(rb"<script>(?!</script>)", page)
        status, script, headers = get(live_port, "/live.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        assert b"EventSource" in script
        assert get(live_port, "/live", "HEAD")[0:2] == (200, b"")
        assert get(live_port, "/events", "POST")[0] == 405
        assert get(live_port, "/metrics")[0] == 404
        assert get(d.port, "/live")[0] == 404
        assert get(d.port, "/metrics")[0] == 200
        d.finish()
        assert proc.wait(timeout=60 * SLOW) == 0

    (tmp_path / "off").mkdir()
    d = Daemon(tmp_path / "off", live={"enabled": False})
    with background(["run", "-c", d.config], d.log) as proc:
        d.open_input(proc)
        wait_for(lambda: _serving(d.port), 60, "the metrics endpoint", proc)
        assert get(d.port, "/live")[0] == 404
        assert get(d.port, "/events")[0] == 404
        assert b"turnstiled_live_clients" not in get(d.port, "/metrics")[1]
        d.finish()
        assert proc.wait(timeout=60 * SLOW) == 0


def _answers(port, path):
    try:
        return get(port, path, timeout=1)[0] == 200
    except OSError:
        return False


def test_a_stop_ends_every_stream_with_end(tmp_path):
    d = Daemon(tmp_path)
    with background(["run", "-c", d.config], d.log) as proc:
        d.open_input(proc)
        wait_for(lambda: _serving(d.port), 60, "the live endpoint", proc)
        c = Client(d.port)
        wait_for(lambda: c.of("hello"), 30, "the hello event", proc)
        d.feed(week_lines()[:20000])
        started = time.monotonic()
        assert stop(proc) == 0
        assert c.done.wait(10 * SLOW), "the stream stayed open after the daemon stopped"
        assert c.events[-1][0] == "end"
        assert time.monotonic() - started < 60 * SLOW
        d.finish()
