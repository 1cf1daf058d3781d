"""`turnstiled demo`: the embedded broker, the producer and the daemon together, into a folder it
names, then a summary of the busiest stations and windows. With real weeks it replays one; with
--generate (or without ../shared/data/mta) it generates readings. Its rows are whole and final,
and the numbers it prints are the numbers in the lake. With --live it streams until SIGINT, its
live view shows the windows closing as the lake gets them, and it leaves no process behind.
"""
import contextlib
import http.client
import os
import pathlib
import re
import signal
import subprocess
import time

import pytest

import oracle
from conftest import (MTA_DIR, SLOW, free_port, require_mta_weeks, run, turnstiled_bin,
                      wait_for, week_path)
from sse import Client


def check_demo_output(out, stdout):
    lake = out / "lake"
    rows = oracle.read_lake(lake)  # fails on a partial file or a repeated window
    assert rows, "the demo wrote no rows"
    m = re.search(r"results: (\d+) rows in (\d+) files under (\S+)", stdout)
    assert m, stdout
    assert int(m.group(1)) == len(rows)
    assert m.group(3) == str(lake)
    # The busiest station it names is the lake's busiest station, with the same total (a short
    # live run may have several with the same total, all 0 even: any of them will do).
    totals = {}
    for (station, _, _), (entries, _, _) in rows.items():
        totals[station] = totals.get(station, 0) + entries
    best = max(totals.values())
    first = re.search(r"busiest stations.*?\n\s+(\d+)\s+(.+)", stdout)
    assert first, stdout
    assert (int(first.group(1)), totals.get(first.group(2).strip())) == (best, best), \
        (first.group(0), best)
    assert (out / "demo.yaml").exists()


def test_demo_with_generated_data(tmp_path):
    out = tmp_path / "demo"
    result = run(["demo", "--generate", "--count", 30000, "--out", out, "--metrics",
                  "127.0.0.1:0"])
    check_demo_output(out, result.stdout)


def test_demo_replays_a_real_week(tmp_path):
    require_mta_weeks()
    out = tmp_path / "demo"
    result = run(["demo", "--mta-dir", MTA_DIR, "--out", out, "--metrics", "127.0.0.1:0"])
    assert "replay" in result.stdout.lower()
    check_demo_output(out, result.stdout)


# `demo --live`: the same broker, a paced producer and the pipeline streaming (no
# --available-now), the live view on --metrics, until SIGINT; then the results from the lake.

def _stat(pid):
    """(state, ppid, start time) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[1]), int(fields[19])


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return []


def _pids():
    return [int(p.name) for p in pathlib.Path("/proc").iterdir() if p.name.isdigit()]


def _alive(pid, started):
    """The process `pid` that started at `started` still runs (not gone, reused or a zombie)."""
    s = _stat(pid)
    return s is not None and s[2] == started and s[0] != "Z"


class LiveDemo:
    """`turnstiled demo --live ARGS...` with stdout and stderr in files. `children` maps "broker"
    and "produce" to (pid, start time); stop() sends SIGINT by PID and returns the exit code."""

    def __init__(self, tmp_path, out, args, name="demo"):
        self.out = out
        self.port = free_port()
        self.stdout_path = tmp_path / f"{name}.stdout"
        self.stderr_path = tmp_path / f"{name}.stderr"
        self._stdout = open(self.stdout_path, "w")
        self._stderr = open(self.stderr_path, "w")
        self.started = time.time()
        self.proc = subprocess.Popen(
            [turnstiled_bin(), "demo", "--live", "--out", str(out), "--metrics",
             f"127.0.0.1:{self.port}", *map(str, args)],
            stdout=self._stdout, stderr=self._stderr, text=True)
        self.children = {}
        self.exit_code = None

    def stdout(self):
        return self.stdout_path.read_text()

    def stderr(self):
        return self.stderr_path.read_text()

    def wait_url(self):
        m = wait_for(lambda: re.search(r"live view:\s+(\S+)\n", self.stdout()), 60,
                     "the live view's URL on stdout", self.proc)
        assert m.group(1) == f"http://127.0.0.1:{self.port}/live", self.stdout()
        # The broker and the producer are started by the time the URL is printed. The producer
        # may still be between fork and exec, when its command line is still the demo's: it is
        # waited for, not sampled once.
        def children():
            found = {}
            for pid in _pids():
                s = _stat(pid)
                if s is None or s[1] != self.proc.pid:
                    continue
                argv = _cmdline(pid)
                if len(argv) > 1 and argv[1] in (b"broker", b"produce"):
                    found[argv[1].decode()] = (pid, s[2])
            return found if set(found) == {"broker", "produce"} else None
        self.children = wait_for(children, 30, "the broker and the producer as the demo's "
                                 "children", self.proc)
        broker_argv = _cmdline(self.children["broker"][0])
        assert str(self.out / "broker.addr").encode() in broker_argv, broker_argv
        return m.group(1)

    def connect(self):
        """An /events client, as soon as the live view answers."""
        def try_connect():
            try:
                return Client(self.port)
            except (OSError, IndexError, ValueError):  # not listening yet, or cut off
                return None
        c = wait_for(try_connect, 60, "the live view to accept connections", self.proc)
        assert c.status == 200
        return c

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10 * SLOW)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.getheader("Content-Type", ""), r.read()
        finally:
            conn.close()

    def stop(self, timeout=90):
        """SIGINT by PID, then wait for the exit; fails (after SIGKILL) if it does not come."""
        if self.exit_code is None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.exit_code = self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(f"demo --live ignored SIGINT for {timeout * SLOW:.0f}s\n"
                            f"{self.stdout()[-3000:]}\n--- stderr\n{self.stderr()[-3000:]}")
            finally:
                self._stdout.close()
                self._stderr.close()
        return self.exit_code

    def kill(self):
        """Only after a failure: the demo and the children it started, each by its PID."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for pid, started in self.children.values():
            if _alive(pid, started):
                os.kill(pid, signal.SIGKILL)
        self.exit_code = self.proc.returncode

    def assert_no_children_left(self):
        assert self.children, "the children were never found"
        for name, (pid, started) in self.children.items():
            wait_for(lambda: not _alive(pid, started), 10, f"the demo's {name} (pid {pid}) to "
                     "be gone")
        # Nothing else of this demo runs either: nothing with its bootstrap file or its address.
        addr = str(self.out / "broker.addr").encode()
        bootstrap = re.search(r"broker at (\S+)", self.stdout()).group(1).encode()
        left = [(pid, _cmdline(pid)) for pid in _pids() if pid != os.getpid()]
        left = [(pid, argv) for pid, argv in left
                if (addr in argv or bootstrap in argv) and _stat(pid) and _stat(pid)[0] != "Z"]
        assert not left, f"processes of the demo still running: {left}"


@contextlib.contextmanager
def live_demo(tmp_path, out, args, name="demo"):
    demo = LiveDemo(tmp_path, out, args, name)
    try:
        yield demo
    finally:
        if demo.exit_code is None:
            if demo.proc.poll() is None:
                os.kill(demo.proc.pid, signal.SIGTERM)
                try:
                    demo.proc.wait(timeout=60 * SLOW)
                except subprocess.TimeoutExpired:
                    pass
            demo.kill()
            demo._stdout.close()
            demo._stderr.close()


def watch_then_interrupt(demo, closes=1, updates=5):
    """The URL, /live, then /events until `closes` close and `updates` update events; SIGINT;
    exit 0 with the results and no child left. Returns the /events client (read to its end)."""
    demo.wait_url()
    c = demo.connect()
    status, content_type, body = demo.get("/live")
    assert status == 200 and content_type.startswith("text/html"), (status, content_type)
    assert b"/events" in body
    wait_for(lambda: len(c.data("close")) >= closes and len(c.data("update")) >= updates, 120,
             f"{closes} close and {updates} update events", demo.proc)
    assert demo.stop() == 0, f"{demo.stdout()[-3000:]}\n--- stderr\n{demo.stderr()[-3000:]}"
    demo.assert_no_children_left()
    # The daemon ends every stream with `end` as it stops (docs/LIVE.md).
    wait_for(lambda: c.done.is_set(), 30, "the end of the /events stream")
    c.close()
    assert c.events and c.events[0][0] == "hello", c.events[:2]
    assert c.events[-1][0] == "end", c.events[-3:]
    assert all(not u["final"] for u in c.data("update"))
    assert all(x["final"] for x in c.data("close"))
    assert re.search(r"4\. results: \d+ rows in \d+ files under " + re.escape(str(demo.out)) +
                     r"/lake\n", demo.stdout()), demo.stdout()
    return c


def check_closes_in_lake(c, lake):
    """Every close event is a row of the lake, with the same numbers. When the client joined
    before the pipeline had consumed anything (its first heartbeat says 0 records), it saw every
    window close, and the lake holds exactly those rows. Returns whether that was the case."""
    rows = oracle.read_lake(lake)
    streamed = {}
    for x in c.data("close"):
        key = (x["station"], x["window_start"], x["window_end"])
        assert key not in streamed, f"window {key} closed twice"
        streamed[key] = (x["entries"], x["exits"], x["events"])
    wrong = {k: (v, rows.get(k)) for k, v in streamed.items() if rows.get(k) != v}
    assert not wrong, f"{len(wrong)} closed windows not in the lake as streamed " \
        f"(streamed, lake): {sorted(wrong.items())[:10]}"
    joined_first = c.data("heartbeat")[0]["records"] == 0
    if joined_first:
        assert streamed == rows, oracle.diff(rows, streamed)
    return joined_first


def test_demo_live_replays_a_real_week_until_sigint(tmp_path):
    week_path("turnstile_240106.txt.zst")  # the week the demo replays: fail (CI) or skip
    out = tmp_path / "demo"
    with live_demo(tmp_path, out, ["--mta-dir", MTA_DIR, "--minutes", 1]) as demo:
        c = watch_then_interrupt(demo, closes=1, updates=5)
    stdout = demo.stdout()
    assert "replaying the real MTA week" in stdout and "in about 1 min" in stdout, stdout
    check_demo_output(out, stdout)
    check_closes_in_lake(c, out / "lake")


def test_demo_live_with_generated_data_until_sigint(tmp_path):
    out = tmp_path / "demo"
    with live_demo(tmp_path, out, ["--generate", "--count", 60000, "--minutes", 1]) as demo:
        c = watch_then_interrupt(demo, closes=1, updates=5)
    assert "generating 60000 readings" in demo.stdout(), demo.stdout()
    check_demo_output(out, demo.stdout())
    check_closes_in_lake(c, out / "lake")


def test_demo_live_twice_in_one_folder_starts_afresh(tmp_path):
    out = tmp_path / "demo"
    args = ["--generate", "--count", 60000, "--minutes", 1]
    with live_demo(tmp_path, out, args, "first") as first:
        watch_then_interrupt(first, closes=1, updates=1)
    assert oracle.read_lake(out / "lake"), "the first run wrote no rows"
    # Mark what the first run left: every file an hour old, and one more file in each folder.
    old = time.time() - 3600
    for folder in ("lake", "state", "dead-letter"):
        (out / folder).mkdir(exist_ok=True)
        (out / folder / "left-by-the-first-run").write_text("stale\n")
        for f in (out / folder).rglob("*"):
            os.utime(f, (old, old))

    with live_demo(tmp_path, out, args, "second") as second:
        c = watch_then_interrupt(second, closes=1, updates=1)
    stdout, stderr = second.stdout(), second.stderr()
    for folder in ("lake", "state", "dead-letter"):
        assert not (out / folder / "left-by-the-first-run").exists(), f"{folder} was not wiped"
    stale = [f for f in (out / "lake").rglob("*") if f.stat().st_mtime < second.started - 60]
    assert not stale, f"files of the first run in the second run's lake: {stale}"
    # Nothing of the first run's state: every partition starts fresh, no offset goes back.
    # (A rebalance within the run may restore a partition from the run's own snapshot later.)
    first = {}
    for m in re.finditer(r"msg=(\"no snapshot[^\"]*\"|\"partition restored\").*? partition=(\d+)",
                         stderr):
        first.setdefault(int(m.group(2)), m.group(1))
    assert sorted(first) == list(range(6)), stderr[-3000:]
    assert all(msg.startswith('"no snapshot') for msg in first.values()), first
    assert "offset reset" not in (stdout + stderr).lower(), stderr[-3000:]
    check_demo_output(out, stdout)
    check_closes_in_lake(c, out / "lake")
