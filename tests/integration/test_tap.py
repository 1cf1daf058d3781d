"""`turnstiled tap` (docs/LIVE.md): first against a fake `/events` written here, which scripts
each connection and records its request, then against the real daemon, whose closed windows tap
must print exactly as the file sink writes them."""
import collections
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
from conftest import (SLOW, background, free_port, require_mta_weeks, stop, turnstiled_bin,
                      wait_for, week_path)

HEADER_FORMAT = "%-6s  %-24s  %-20s  %-20s  %10s  %10s  %8s\n"
ROW_FORMAT = "%-6s  %-24s  %-20s  %-20s  %10d  %10d  %8d\n"
HEADER = HEADER_FORMAT % ("EVENT", "STATION", "WINDOW_START", "WINDOW_END", "ENTRIES", "EXITS",
                          "EVENTS")
LOST = "tap: connection lost (the daemon closed the connection), reconnecting\n"


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def sse(event, data=None, event_id=None, eol="\n"):
    """One event as the daemon writes it: every JSON object on one data line."""
    lines = [] if event_id is None else [f"id: {event_id}"]
    lines.append(f"event: {event}")
    if data is not None:
        lines.append("data: " + (data if isinstance(data, str) else compact(data)))
    return eol.join(lines) + eol + eol


def hello(last_id=0, window=("tumbling", 4 * 3600_000, 4 * 3600_000)):
    return sse("hello", {"version": 1,
                         "window": {"type": window[0], "size_ms": window[1], "slide_ms": window[2]},
                         "coalesce_ms": 250, "heartbeat_ms": 1000, "last_id": last_id})


HEARTBEAT = sse("heartbeat", {"time": "2024-01-06T05:00:00Z", "watermark": None, "lag": None,
                              "records": 10, "records_per_second": 5.0, "open_windows": 3,
                              "clients": 1})
END = sse("end", {})


def row(station, hour, entries, final=True):
    """A row in the daemon's key order (docs/LIVE.md)."""
    return {"station": station, "window_start": f"2024-01-06T{hour:02}:00:00Z",
            "window_end": f"2024-01-06T{hour + 4:02}:00:00Z", "entries": entries,
            "exits": entries // 2, "events": entries % 97, "final": final,
            "first_event": f"2024-01-06T{hour:02}:00:00Z",
            "last_event": f"2024-01-06T{hour + 3:02}:59:00Z", "source": ""}


def table_line(event, r):
    return ROW_FORMAT % (event, r["station"], r["window_start"], r["window_end"], r["entries"],
                         r["exits"], r["events"])


class FakeDaemon:
    """A fake `/events` on a free loopback port. Connection i is answered by script[i] (the last
    entry again once they run out), a function of the request handler; `requests` keeps each
    request's headers."""

    def __init__(self, script, family=socket.AF_INET, host="127.0.0.1"):
        fake = self

        class Server(http.server.ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's name
                with fake.lock:
                    fake.requests.append(self.headers)
                    step = fake.script[min(len(fake.requests), len(fake.script)) - 1]
                self.close_connection = True
                try:
                    step(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.script = script
        self.requests = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.server = Server((host, 0), Handler)
        port = self.server.server_address[1]
        self.url = f"http://{'[::1]' if family == socket.AF_INET6 else host}:{port}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.closed = False

    def close(self):
        """Stops listening: a new connection is refused from now on."""
        if not self.closed:
            self.closed = True
            self.stopping.set()
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def fake_daemon():
    made = []

    def make(*script, **kwargs):
        fake = FakeDaemon(list(script), **kwargs)
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.close()


def start_stream(h, content_type="text/event-stream", chunked=False):
    h.send_response(200)
    h.send_header("Content-Type", content_type)
    h.send_header("Cache-Control", "no-cache")
    h.send_header("Connection", "close")
    if chunked:
        h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()


def events(*chunks, end=True, chunked=False, piece=0, content_type="text/event-stream",
           then=None):
    """A step: 200, each chunk in turn, then `end` unless end=False (then the connection just
    closes). piece=N writes N bytes at a time, with a pause, so that lines and chunks are cut
    anywhere. then() runs once everything is written."""

    def step(h):
        start_stream(h, content_type, chunked)
        data = "".join([*chunks, *([END] if end else [])]).encode()
        size = piece or len(data)
        for at in range(0, len(data), size):
            part = data[at:at + size]
            h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            h.wfile.flush()
            if piece:
                time.sleep(0.002)
        if chunked:
            h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()
        if then is not None:
            then()

    return step


def answer(code, reason, body):
    def step(h):
        h.send_response(code, reason)
        h.send_header("Content-Type", "text/plain")
        h.send_header("Retry-After", "5")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(body)

    return step


def forever(fake, rows=False):
    """A step that streams until the fake stops: heartbeats, or rows every 10 ms."""

    def step(h):
        start_stream(h)
        h.wfile.write(hello().encode())
        n = 0
        while not fake.stopping.is_set():
            n += 1
            data = sse("close", row(f"S{n}", 0, n), n) if rows else HEARTBEAT
            h.wfile.write(data.encode())
            h.wfile.flush()
            time.sleep(0.01 if rows else 0.2)

    return step


def tap(url, *args, timeout=30):
    return subprocess.run([turnstiled_bin(), "tap", "--url", url, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout * SLOW, check=False)


def connected(url):
    return f"tap: connected to {url} (window tumbling 4h)\n"


def test_table_prints_a_header_then_one_aligned_line_per_row(fake_daemon):
    a0, a4, b0 = row("34 ST-PENN STA", 0, 4211), row("34 ST-PENN STA", 4, 90), row("A", 0, 7)
    update = row("34 ST-PENN STA", 0, 4000, final=False)
    fake = fake_daemon(events(hello(), HEARTBEAT, sse("update", update, 1), HEARTBEAT,
                              sse("close", a0, 2), sse("close", b0, 3), sse("close", a4, 4),
                              ": a comment\n\n"))
    result = tap(fake.url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == connected(fake.url)
    assert result.stdout == (HEADER + table_line("update", update) + table_line("close", a0) +
                             table_line("close", b0) + table_line("close", a4))


def test_json_prints_each_row_exactly_as_the_daemon_sent_it(fake_daemon):
    # Spacing and escapes the daemon would not write: tap must not touch them.
    odd = '{"station": "\\u00c9TOILE \\"Q\\"",  "window_start":"2024-01-06T00:00:00Z",' \
          '"window_end":"2024-01-06T04:00:00Z","entries":1,"exits":2,"events":3,"final":true,' \
          '"source":"turnstile-stream-3"}'
    rows = [compact(row("A", 0, 5, final=False)), compact(row("A", 0, 9)), odd]
    fake = fake_daemon(events(hello(), sse("update", rows[0], 1), HEARTBEAT,
                              sse("close", rows[1], 2), sse("close", rows[2], 3)))
    result = tap(fake.url, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(r + "\n" for r in rows)
    assert result.stderr == connected(fake.url)


def test_station_keeps_only_the_named_stations_by_exact_name(fake_daemon):
    names = ["A", "B C", "A2", "b c", "D"]
    rows = [row(name, 0, i + 1) for i, name in enumerate(names)]
    fake = fake_daemon(events(hello(), *(sse("close", r, i + 1) for i, r in enumerate(rows))))
    result = tap(fake.url, "--station", "A", "--station", "B C", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == compact(rows[0]) + "\n" + compact(rows[1]) + "\n"


def test_closed_only_skips_the_updates_of_open_windows(fake_daemon):
    updates = [row("A", 0, 1, final=False), row("A", 0, 2, final=False)]
    closed = row("A", 0, 3)
    fake = fake_daemon(events(hello(), sse("update", updates[0], 1), sse("update", updates[1], 2),
                              sse("close", closed, 3), sse("update", row("B", 4, 1, False), 4)))
    result = tap(fake.url, "--closed-only")
    assert result.returncode == 0, result.stderr
    assert result.stdout == HEADER + table_line("close", closed)


def test_a_gap_is_noted_on_stderr_and_the_stream_goes_on(fake_daemon):
    r = row("A", 0, 3)
    fake = fake_daemon(events(hello(), sse("gap", {"after": 10, "first_id": 15}),
                              sse("close", r, 15)))
    result = tap(fake.url, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (connected(fake.url) +
                             "tap: 4 events were lost (the daemon's buffer moved on)\n")
    assert result.stdout == compact(r) + "\n"


def test_chunked_crlf_comments_and_events_cut_anywhere_are_read(fake_daemon):
    a, b = row("A", 0, 3), row("B", 4, 8, final=False)
    # One row's JSON over two data lines: they are joined with a newline, still one object.
    split = compact(b).replace(',"entries"', ',\r\ndata: "entries"')
    fake = fake_daemon(events(hello().replace("\n", "\r\n"), ":keepalive\r\n\r\n",
                              sse("close", a, 1, eol="\r\n"), sse("update", split, 2, eol="\r\n"),
                              chunked=True, piece=7))
    result = tap(fake.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == HEADER + table_line("close", a) + table_line("update", b)


def test_control_bytes_in_a_station_print_as_question_marks_in_the_table(fake_daemon):
    r = row("EVIL\x1b[2J\x07NAME", 0, 1)
    fake = fake_daemon(events(hello(), sse("close", r, 1)))
    result = tap(fake.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == HEADER + table_line("close", dict(r, station="EVIL?[2J?NAME"))


def test_an_error_status_exits_1_with_its_first_line(fake_daemon):
    fake = fake_daemon(answer(503, "Service Unavailable", b"too many clients (64)\nretry later\n"))
    result = tap(fake.url)
    assert result.returncode == 1
    assert result.stderr == (f"tap: {fake.url} answered 503 Service Unavailable: "
                             "too many clients (64)\n")
    assert result.stdout == ""
    assert len(fake.requests) == 1


def test_an_answer_that_is_not_an_event_stream_exits_1(fake_daemon):
    fake = fake_daemon(events("# HELP x\n", content_type="text/plain; version=0.0.4"))
    result = tap(fake.url)
    assert result.returncode == 1
    assert result.stderr == (f"tap: {fake.url} is not an event stream "
                             "(Content-Type: text/plain; version=0.0.4)\n")


def test_a_dropped_connection_resumes_after_the_last_event_id(fake_daemon):
    rows = [row("A", 0, 1, final=False), row("A", 0, 2), row("B", 0, 3), row("B", 4, 4)]
    fake = fake_daemon(
        events(hello(), sse("update", rows[0], 1), sse("close", rows[1], 2), end=False),
        events(hello(last_id=2), HEARTBEAT, sse("close", rows[2], 3), sse("close", rows[3], 4)))
    result = tap(fake.url, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(compact(r) + "\n" for r in rows)  # each once, in order
    assert result.stderr == (connected(fake.url) + LOST +
                             f"tap: reconnected to {fake.url} (window tumbling 4h)\n")
    assert len(fake.requests) == 2
    assert fake.requests[0]["Last-Event-ID"] is None
    assert fake.requests[1]["Last-Event-ID"] == "2"
    for request in fake.requests:
        assert request["Accept"] == "text/event-stream"
        assert request["Cache-Control"] == "no-cache"
        assert request["Host"] == fake.url.split("/")[2]


def test_events_filtered_out_still_move_the_resume_point(fake_daemon):
    closed = row("A", 0, 2)
    fake = fake_daemon(
        events(hello(), sse("close", closed, 1), sse("update", row("A", 4, 1, False), 2),
               sse("close", row("Z", 0, 1), 3), end=False),
        events(hello(last_id=3)))
    result = tap(fake.url, "--closed-only", "--station", "A", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == compact(closed) + "\n"
    assert fake.requests[1]["Last-Event-ID"] == "3"


def test_a_connection_dropped_before_any_row_resumes_from_hello(fake_daemon):
    """A first connection starts from now: hello's last_id is where it stands, so the windows
    that close while tap reconnects are not lost."""
    closed = row("A", 0, 2)
    fake = fake_daemon(events(hello(last_id=7), HEARTBEAT, end=False),
                       events(hello(last_id=8), sse("close", closed, 8)))
    result = tap(fake.url, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert fake.requests[1]["Last-Event-ID"] == "7"
    assert result.stdout == compact(closed) + "\n"


def test_tap_gives_up_30s_after_the_daemon_went_away(fake_daemon):
    fake = fake_daemon(events(hello(), HEARTBEAT, end=False,
                              then=lambda: threading.Thread(target=fake.close).start()))
    started = time.monotonic()
    result = tap(fake.url, timeout=90)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert result.stderr == (
        connected(fake.url) + LOST + f"tap: cannot reconnect to {fake.url} for 30 s: Connection "
        "refused (is turnstiled running with metrics or live enabled?)\n")
    assert 29 < elapsed < 40 * SLOW


def test_cannot_connect_at_first_fails_at_once():
    url = f"http://127.0.0.1:{free_port()}/events"
    started = time.monotonic()
    result = tap(url)
    assert result.returncode == 1
    assert result.stderr == (f"tap: cannot connect to {url}: Connection refused "
                             "(is turnstiled running with metrics or live enabled?)\n")
    assert time.monotonic() - started < 5 * SLOW


@pytest.mark.parametrize("url, why", [
    ("https://127.0.0.1:9464/events", "https is not supported: the live view is plain http"),
    ("ftp://127.0.0.1/events", "expected http://host:port/path"),
    ("127.0.0.1:9464/events", "expected http://host:port/path"),
    ("http://:9464/events", "expected a host name, an IPv4 address or an [IPv6] address"),
    ("http://::1:9464/events", "expected a host name, an IPv4 address or an [IPv6] address"),
    ("http://user@127.0.0.1:9464/events",
     "expected a host name, an IPv4 address or an [IPv6] address"),
    ("http://[::1/events", "unclosed '['"),
    ("http://[::1]x/events", "expected ':port' after ']'"),
    ("http://127.0.0.1:0/events", "the port must be a number from 1 to 65535"),
    ("http://127.0.0.1:65536/events", "the port must be a number from 1 to 65535"),
    ("http://127.0.0.1:/events", "the port must be a number from 1 to 65535"),
    ("http://127.0.0.1:9464/ev ents", "the path holds a space or a control character"),
])
def test_a_url_tap_cannot_use_is_a_usage_error(url, why):
    result = tap(url)
    assert result.returncode == 2
    assert result.stderr == f"tap: --url {url}: {why}\n"


@pytest.mark.parametrize("url", ["http://[::1]/events", "http://127.0.0.1/events",
                                 "http://localhost:1", "http://127.0.0.1:1/a?b=c#frag"])
def test_a_url_without_a_port_or_path_is_not_a_usage_error(url):
    """Port 80 and path / as in any URL; whatever answers there, tap gets no event stream."""
    result = tap(url)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("tap: "), result.stderr


def test_a_host_name_is_resolved(fake_daemon):
    fake = fake_daemon(events(hello(), sse("close", row("A", 0, 1), 1)))
    url = fake.url.replace("127.0.0.1", "localhost")
    result = tap(url, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == compact(row("A", 0, 1)) + "\n"


def test_an_ipv6_address_in_brackets(fake_daemon):
    try:
        fake = fake_daemon(events(hello(), sse("close", row("A", 0, 1), 1)),
                           family=socket.AF_INET6, host="::1")
    except OSError as e:
        pytest.skip(f"no IPv6 loopback here ({e}): skipped")
    result = tap(fake.url, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == compact(row("A", 0, 1)) + "\n"
    assert fake.requests[0]["Host"] == fake.url.split("/")[2]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_end_tap_with_0(fake_daemon, tmp_path, sig):
    fake = fake_daemon(None)
    fake.script = [forever(fake)]
    err = tmp_path / "tap.err"
    with open(err, "w") as err_file:
        proc = subprocess.Popen([turnstiled_bin(), "tap", "--url", fake.url],
                                stdout=subprocess.DEVNULL, stderr=err_file)
    try:
        wait_for(lambda: "connected" in err.read_text(), 10, "tap to connect", proc)
        time.sleep(0.3)  # a heartbeat or two
        os.kill(proc.pid, sig)
        assert proc.wait(timeout=5 * SLOW) == 0
    finally:
        if proc.poll() is None:
            stop(proc)
    assert err.read_text() == connected(fake.url)


def test_a_closed_standard_output_ends_tap_quietly_with_0(fake_daemon):
    fake = fake_daemon(None)
    fake.script = [forever(fake, rows=True)]
    proc = subprocess.Popen([turnstiled_bin(), "tap", "--url", fake.url, "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stdout.readline()  # like `| head -1`
        assert json.loads(first)["station"] == "S1"
        proc.stdout.close()
        assert proc.wait(timeout=10 * SLOW) == 0
    finally:
        if proc.poll() is None:
            stop(proc)
    assert proc.stderr.read().decode() == connected(fake.url)


# The acceptance test: the real daemon.


def lake_lines(root):
    """Every line of the file sink's jsonl files, skipping dot files (being written)."""
    lines = []
    for f in sorted(root.rglob("*.jsonl")):
        if not f.name.startswith("."):
            lines += f.read_text().splitlines()
    return lines


SOURCE_KEY = re.compile(r',"source":"(?:[^"\\]|\\.)*"}$')


def test_tap_prints_exactly_the_closed_windows_the_file_sink_writes(tmp_path):
    week = week_path(require_mta_weeks()[0])
    import zstandard  # Debian's python3-zstandard

    fifo = tmp_path / "input.fifo"
    os.mkfifo(fifo)
    port = free_port()
    lake = tmp_path / "lake"
    cfg = {
        "source": {"type": "file", "file": {"paths": [str(fifo)]}},
        "format": {"type": "mta-csv", "timezone": "America/New_York", "counters": "cumulative"},
        "window": {"type": "tumbling", "size": "4h"},
        "sinks": [{"name": "lake", "type": "file", "path": str(lake), "format": "jsonl",
                   "compression": "none"}],
        "metrics": {"listen": f"127.0.0.1:{port}"},
        # The end of a bounded input closes every window at once (about 16,000 for a week):
        # the ring must hold them all, or a client that reads as fast as it can still gets a
        # gap (docs/LIVE.md, buffer_events).
        "live": {"enabled": True, "buffer_events": 65536},
        "state": {"dir": str(tmp_path / "state")},
    }
    config = tmp_path / "tap.yaml"
    config.write_text(json.dumps(cfg))
    url = f"http://127.0.0.1:{port}/events"

    def open_writer():  # succeeds once the daemon opened the FIFO for reading
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return None

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    with background(["run", "-c", config], tmp_path / "run.log") as daemon:
        fd = wait_for(open_writer, 60, "the daemon to open the FIFO", daemon)
        os.set_blocking(fd, True)
        wait_for(listening, 60, "the daemon's HTTP port", daemon)
        err = tmp_path / "tap.err"
        with open(tmp_path / "tap.out", "w") as out_file, open(err, "w") as err_file:
            proc = subprocess.Popen([turnstiled_bin(), "tap", "--url", url, "--closed-only",
                                     "--format", "json"], stdout=out_file, stderr=err_file)
        try:
            wait_for(lambda: "tap: connected to" in err.read_text(), 30, "tap to connect", proc)
            with os.fdopen(fd, "wb") as writer, open(week, "rb") as compressed:
                reader = zstandard.ZstdDecompressor().stream_reader(compressed)
                while block := reader.read(1 << 20):
                    writer.write(block)
            assert daemon.wait(timeout=300 * SLOW) == 0, (tmp_path / "run.log").read_text()
            assert proc.wait(timeout=30 * SLOW) == 0, err.read_text()
        finally:
            if proc.poll() is None:
                stop(proc)
    assert err.read_text() == f"tap: connected to {url} (window tumbling 4h)\n"

    tapped = (tmp_path / "tap.out").read_text().splitlines()
    written = lake_lines(lake)
    assert len(written) > 1000, "the week should close thousands of windows"
    # Row by row, every field, and in the same order and spelling: tap's line less its
    # trailing "source" is the file sink's line.
    tap_rows = collections.Counter()
    for line in tapped:
        r = json.loads(line, object_pairs_hook=list)
        assert r[-1] == ("source", ""), line  # a file source owns no partition
        tap_rows[json.dumps(r[:-1])] += 1
    lake_rows = collections.Counter(json.dumps(json.loads(line, object_pairs_hook=list))
                                    for line in written)
    assert tap_rows == lake_rows, (
        f"only tap: {list((tap_rows - lake_rows).elements())[:5]}; "
        f"only the lake: {list((lake_rows - tap_rows).elements())[:5]}")
    assert collections.Counter(SOURCE_KEY.sub("}", line) for line in tapped) == \
        collections.Counter(written)
