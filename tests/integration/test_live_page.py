"""docs/LIVE.md, the page: GET /live in a real browser (headless Chromium, driven over its
DevTools protocol) while the daemon streams a paced replay of a real MTA week. The open windows
fill and change, the closed windows it shows are the rows the file sink wrote, the top-stations
chart adds up a window's rows, station names are text (never markup), and `end` is shown.

A scripted /events stream (a small server in this file) drives what the daemon cannot be made to
send on cue: more than 500 open rows, a window closing in parts across partitions after a newer
one, a reconnection with Last-Event-ID, a `gap` and the `end`.

Chromium is Debian's `chromium` (scripts/install-deps.sh). The DevTools client here uses the
standard library only: `--remote-debugging-pipe` speaks JSON messages separated by NUL bytes on
file descriptors 3 (to Chromium) and 4 (from it), so no websocket is needed.

Set TURNSTILED_LIVE_SCREENSHOT=PATH to keep the screenshot taken mid-stream (docs/live.png).
"""
import base64
import collections
import datetime
import fcntl
import http.client
import http.server
import json
import os
import pathlib
import queue
import re
import signal
import struct
import subprocess
import threading
import time

import pytest

import oracle
from conftest import (FAST_GROUP, IN_CI, SLOW, SOURCE_DIR, background, free_port, require_mta_weeks,
                      stop, wait_for, week_path)

PAGE = SOURCE_DIR / "src" / "live" / "live.html"
CHROMIUM = os.environ.get("TURNSTILED_CHROMIUM", "/usr/bin/chromium")
TOPIC = "readings"
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>window.__pwned=1</script>"


# ---------------------------------------------------------------------------------------------
# A DevTools client over a pipe.

def chromium_or_skip():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        detail = f"{CHROMIUM} not found (Debian package chromium, scripts/install-deps.sh)"
        if IN_CI:
            pytest.fail(f"{detail}; CI=true, so this fails instead of skipping", pytrace=False)
        pytest.skip(detail)
    return CHROMIUM


class Browser:
    """One headless Chromium with one page, driven over --remote-debugging-pipe."""

    def __init__(self, tmp_path, width=1400, height=1000):
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        # Chromium reads fd 3 and writes fd 4. The child's ends are moved above 9 so that the
        # shell's `3<&A 4>&B` can never overwrite one of them with the other.
        child_in = fcntl.fcntl(to_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_r)
        os.close(from_w)
        args = [chromium_or_skip(), "--headless", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-sync", "--disable-background-networking", "--disable-component-update",
                "--disable-default-apps", "--disable-dev-shm-usage", "--mute-audio",
                "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows", "--hide-scrollbars",
                f"--window-size={width},{height}", f"--user-data-dir={tmp_path / 'chromium'}",
                "--remote-debugging-pipe", "about:blank"]
        self.log_path = tmp_path / "chromium.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c",
             f'exec "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-', "bash",
             *args],
            pass_fds=(child_in, child_out), stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=subprocess.STDOUT)
        os.close(child_in)
        os.close(child_out)
        self._w = os.fdopen(to_w, "wb", buffering=0)
        self._r = os.fdopen(from_r, "rb", buffering=0)
        self._lock = threading.Lock()
        self._next_id = 0
        self._waiting = {}
        self.events = []  # (method, params) of every event, in order
        self.session = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            try:
                data = self._r.read(1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                msg = json.loads(raw)
                if "id" in msg:
                    waiter = self._waiting.get(msg["id"])
                    if waiter is not None:
                        waiter.put(msg)
                    continue
                self.events.append((msg.get("method"), msg.get("params", {})))
                if msg.get("method") == "Page.javascriptDialogOpening":
                    # Recorded above; dismissed so that it cannot block the page.
                    threading.Thread(target=self._dismiss, args=(msg.get("sessionId"),),
                                     daemon=True).start()
        for waiter in list(self._waiting.values()):
            waiter.put({"error": {"message": "Chromium closed its DevTools pipe"}})

    def _dismiss(self, session):
        try:
            self.send("Page.handleJavaScriptDialog", {"accept": False}, session, timeout=10)
        except Exception:  # noqa: BLE001 - the page may be gone already
            pass

    def send(self, method, params=None, session=None, timeout=60):
        with self._lock:
            self._next_id += 1
            mid = self._next_id
            waiter = self._waiting[mid] = queue.Queue()
            msg = {"id": mid, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            try:
                self._w.write(json.dumps(msg).encode() + b"\0")
            except OSError as e:
                self._waiting.pop(mid, None)
                pytest.fail(f"DevTools {method}: Chromium is gone ({e}); see {self.log_path}")
        try:
            reply = waiter.get(timeout=timeout * SLOW)
        except queue.Empty:
            pytest.fail(f"DevTools {method}: no answer in {timeout * SLOW:.0f}s")
        finally:
            self._waiting.pop(mid, None)
        if "error" in reply:
            pytest.fail(f"DevTools {method}: {reply['error']}; see {self.log_path}")
        return reply.get("result", {})

    def open(self, url):
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        self.page("Page.enable")
        self.page("Runtime.enable")
        self.page("Log.enable")
        self.page("Page.navigate", {"url": url})
        wait_for(lambda: self.eval("document.readyState") == "complete", 60, f"{url} to load")

    def page(self, method, params=None, timeout=60):
        return self.send(method, params, self.session, timeout)

    def eval(self, expression):
        r = self.page("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in r:
            pytest.fail(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def snapshot(self):
        return json.loads(self.eval(SNAPSHOT_JS))

    def dialogs(self):
        return [p for m, p in self.events if m == "Page.javascriptDialogOpening"]

    def console_errors(self):
        """Uncaught exceptions, console.error calls and content security policy violations."""
        return [p for m, p in self.events
                if m == "Runtime.exceptionThrown"
                or (m == "Runtime.consoleAPICalled" and p.get("type") == "error")
                or (m == "Log.entryAdded" and "Content Security Policy"
                    in p.get("entry", {}).get("text", ""))]

    def screenshot(self):
        return base64.b64decode(self.page("Page.captureScreenshot", {"format": "png"})["data"])

    def close(self):
        if self.proc.poll() is None:
            try:
                with self._lock:
                    self._w.write(json.dumps({"id": 0, "method": "Browser.close"}).encode()
                                  + b"\0")
            except OSError:
                pass
            try:
                self.proc.wait(timeout=30 * SLOW)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._w.close()
        self.log.close()


# Everything a test reads from the page, in one evaluation: as the page shows it (the text of
# each cell) and as it keeps it (data attributes).
SNAPSHOT_JS = r"""JSON.stringify((() => {
  const text = (el, sel) => { const e = el.querySelector(sel); return e ? e.textContent : null; };
  const row = tr => ({key: tr.dataset.key, window_start: tr.dataset.windowStart,
    source: tr.dataset.source, station: text(tr, 'td.station'), window: text(tr, 'td.window'),
    entries: text(tr, 'td.entries'), exits: text(tr, 'td.exits'), events: text(tr, 'td.events')});
  const top = document.getElementById('top');
  const notice = document.getElementById('notice');
  return {
    status: document.body.dataset.status, events: Number(document.body.dataset.events),
    closes: Number(document.body.dataset.closes),
    open: [...document.querySelectorAll('#open tbody tr')].map(row),
    closed: [...document.querySelectorAll('#closed tbody tr')].map(row),
    top_window: top.dataset.windowStart || null,
    bars: [...top.querySelectorAll('.bar')].map(b => ({station: text(b, '.station'),
      entries: text(b, 'span.entries'), exits: text(b, 'span.exits')})),
    header: Object.fromEntries(['watermark', 'lag', 'rate', 'records', 'status'].map(
      id => [id, document.getElementById(id).textContent])),
    notices: Object.fromEntries([...notice.querySelectorAll('p')].map(
      p => [p.className, p.textContent])),
    imgs: document.querySelectorAll('img').length,
    scripts: document.scripts.length,
    pwned: typeof window.__pwned,
  };
})())"""


# What the daemon sends for /live: the page's one inline script moves out to /live.js, so that
# the page's content security policy can forbid inline script (src/live/http.cc).
CSP = ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def split_page():
    page = PAGE.read_text()
    start = page.index("<script>")
    end = page.index("</script>", start)
    return (page[:start] + '<script src="/live.js"></script>' + page[end + len("</script>"):],
            page[start + len("<script>"):end])


def count(text):
    """A number as the page shows it ("4,211") -> 4211."""
    assert re.fullmatch(r"\d{1,3}(,\d{3})*", text), text
    return int(text.replace(",", ""))


def shown(row):
    return (row["station"], row["window_start"], count(row["entries"]), count(row["exits"]),
            count(row["events"]))


def check_png(png, path, keep=False):
    """A real screenshot: a PNG of the whole viewport with plenty drawn on it. `keep`: also
    written to $TURNSTILED_LIVE_SCREENSHOT when set (the README's picture)."""
    path.write_bytes(png)
    if keep and os.environ.get("TURNSTILED_LIVE_SCREENSHOT"):
        pathlib.Path(os.environ["TURNSTILED_LIVE_SCREENSHOT"]).write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n", png[:16]
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) >= (800, 600), (width, height)
    # A blank or nearly blank page compresses to a few KB; tables, text and bars do not.
    assert len(png) > 40_000, len(png)


def assert_nothing_injected(browser, snap):
    assert snap["imgs"] == 0, "an <img> element exists: a station name was parsed as markup"
    assert snap["scripts"] == 1, "a <script> element was added: a station name became markup"
    assert snap["pwned"] == "undefined", "window.__pwned is set: a station name ran as script"
    assert not browser.dialogs(), f"a dialog opened: {browser.dialogs()}"


def test_the_page_is_one_self_contained_document_that_never_renders_markup():
    html = PAGE.read_text()
    assert len(html.encode()) < 32 * 1024
    # Embedded as a C++ raw string literal R"TSLIVE(...)TSLIVE".
    assert ')TSLIVE"' not in html
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "srcdoc"):
        assert sink not in html, f"the page uses {sink}"
    # Nothing is fetched from anywhere else: no script, style sheet or image by URL.
    assert not re.search(r"https?://", html)
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=\"(?!data:)", html, re.I)
    assert "new EventSource('/events')" in html
    # The daemon serves the one inline script apart, as /live.js (src/live/http.cc).
    assert html.count("<script") == 1 and html.count("</script>") == 1


# ---------------------------------------------------------------------------------------------
# The real daemon: a paced replay through the embedded broker.

def paced_slices(week):
    """About the first two days of a real week in event-time order, up to a 4 h window's end,
    cut into one-hour slices of event time, with two busy stations renamed to hostile markup.
    Returns ([[(station, line)...] per slice], the last window's start as the sinks write it)."""
    clock = oracle.LocalClock("America/New_York")
    rows = []
    for line in oracle.read_text(week).splitlines():
        parsed = oracle.parse_mta(line, clock)
        if parsed is not None:
            rows.append((parsed[2], parsed[0], line))
    rows.sort(key=lambda r: r[0])
    first = rows[0][0]
    window = 4 * 3_600_000
    end = (first + 48 * 3_600_000) // window * window
    renames = {"34 ST-PENN STA": IMG, "GRD CNTRL-42 ST": SCRIPT}
    slices = collections.defaultdict(list)
    for t, station, line in rows:
        if t >= end:
            break
        if station in renames:
            fields = line.split(",")
            fields[3] = station = renames[station]
            line = ",".join(fields)
        slices[(t - first) // 3_600_000].append((station, line))
    assert {IMG, SCRIPT} <= {s for hour in slices.values() for s, _ in hour}
    return [slices[h] for h in sorted(slices)], oracle.iso(end - window)


def lake_rows(lake):
    """Every row of a jsonl file sink: {(station, window_start): (row, file name)}."""
    out = {}
    for f in sorted(lake.rglob("part-*.jsonl")) if lake.exists() else []:
        for line in f.read_text().splitlines():
            r = json.loads(line)
            key = (r["station"], r["window_start"])
            assert key not in out, f"{key} written twice"
            out[key] = (r, f.name)
    return out


def get(port, path, timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


def served(port, path):
    try:
        return get(port, path, timeout=2)[0] == 200
    except OSError:
        return False


def test_the_page_shows_the_windows_of_a_paced_replay_as_the_sinks_write_them(
        tmp_path, broker_factory):
    week = week_path(require_mta_weeks()[0])
    chromium_or_skip()
    slices, last = paced_slices(week)
    broker = broker_factory(partitions=2, topics=(TOPIC,))
    port = free_port()
    lake = tmp_path / "lake"
    cfg = {
        "source": {"type": "kafka", "kafka": {"bootstrap_servers": broker.address,
                                              "topics": [TOPIC], "group_id": "live-page",
                                              "consumer_threads": 1, "properties": FAST_GROUP}},
        "format": {"type": "mta-csv", "timezone": "America/New_York", "counters": "cumulative"},
        "window": {"type": "tumbling", "size": "4h", "allowed_lateness": "0s",
                   "idle_timeout": "2s"},
        "sinks": [{"name": "lake", "type": "file", "path": str(lake), "format": "jsonl",
                   "compression": "none", "flush_interval": "100ms"}],
        "metrics": {"listen": f"127.0.0.1:{port}"},
        # A ring that holds the whole run (about 30,000 updates and 2,787 closes): the page's
        # writer runs at SCHED_IDLE, and on a loaded machine (a sanitizer run beside another
        # test) it can fall further behind than the default 16,384 events and get a gap,
        # after which the page cannot show every close.
        "live": {"enabled": True, "coalesce": "250ms", "heartbeat": "500ms",
                 "buffer_events": 65536},
        "state": {"dir": str(tmp_path / "state")},
    }
    cfg_path = tmp_path / "live.yaml"
    cfg_path.write_text(json.dumps(cfg))

    with background(["run", "-c", cfg_path], tmp_path / "run.log") as proc:
        # Ready: the consumer has its partitions, so the paced slices are read as they come.
        wait_for(lambda: served(port, "/readyz"), 60, "the daemon to be ready", proc)
        # The page as built in: src/live/live.html, its script served apart as /live.js.
        status, body, headers = get(port, "/live")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in headers.get("Content-Security-Policy", ""), headers
        status, script, headers = get(port, "/live.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        assert split_page() == (body.decode(), script.decode()), \
            "GET /live and /live.js are not src/live/live.html (a stale build?)"

        browser = Browser(tmp_path)
        try:
            browser.open(f"http://127.0.0.1:{port}/live")
            # Connected before the first record: every window closes while the page watches.
            wait_for(lambda: browser.snapshot()["status"] == "connected", 60,
                     "the page to connect to /events", proc)

            produced = threading.Event()
            failure = []

            def produce():
                from confluent_kafka import Producer
                try:
                    p = Producer({"bootstrap.servers": broker.address, "linger.ms": 5})
                    for hour in slices:
                        for station, line in hour:
                            p.produce(TOPIC, key=station.encode(), value=line.encode())
                        assert p.flush(60) == 0
                        # About one update per open window per slice. The coalescing
                        # interval sets this pace, not the daemon's speed, so a sanitizer
                        # build slows it by at most 2.
                        time.sleep(0.35 * min(SLOW, 2))
                except Exception as e:  # noqa: BLE001 - reported by the test thread
                    failure.append(repr(e))
                finally:
                    produced.set()

            producer = threading.Thread(target=produce, daemon=True)
            producer.start()

            # a. Station names and counts appear in the open windows, and change over time:
            # the page is read again and again until one row shows other counts than before.
            seen = {}

            def changed():
                rows = browser.snapshot()["open"]
                moved = [(seen[r["key"]], shown(r)) for r in rows
                         if r["key"] in seen and seen[r["key"]] != shown(r)]
                seen.update((r["key"], shown(r)) for r in rows)
                return moved
            moved = wait_for(changed, 120, "an open window's counts to change on the page",
                             proc, interval=0.1)
            # A window only grows: more events, never fewer entries or exits.
            assert all(a[2] >= b[2] and a[3] >= b[3] and a[4] > b[4] for b, a in moved), moved

            # c. Hostile station names show as text.
            def hostile_shown():
                s = browser.snapshot()
                names = {r["station"] for r in s["open"] + s["closed"]}
                return IMG in names and SCRIPT in names and s
            snap = wait_for(hostile_shown, 120, "the hostile station names as text", proc,
                            interval=0.2)
            assert_nothing_injected(browser, snap)

            # d. Mid-stream: windows open and closed, the chart drawn with ten busy stations
            # (the first window holds the devices' first readings: counts of 0).
            mid = wait_for(lambda: (s := browser.snapshot())["open"] and s["closed"]
                           and len(s["bars"]) == 10
                           and all(count(b["entries"]) > 0 for b in s["bars"]) and s, 120,
                           "open and closed windows and the chart, mid-stream", proc,
                           interval=0.2)
            assert mid["header"]["watermark"].endswith("UTC"), mid["header"]
            assert count(mid["header"]["records"]) > 0
            check_png(browser.screenshot(), tmp_path / "live.png", keep=True)

            # b. Each closed window shown is its row in the file sink.
            def in_lake(rows):
                have = lake_rows(lake)
                return all((r["station"], r["window_start"]) in have for r in rows) and have
            have = wait_for(lambda: in_lake(mid["closed"]), 60, "the closed windows in the lake",
                            proc)
            for r in mid["closed"]:
                row, name = have[(r["station"], r["window_start"])]
                assert shown(r) == (row["station"], row["window_start"], row["entries"],
                                    row["exits"], row["events"])
                assert r["source"].startswith(f"{TOPIC}-") and f"-{r['source']}" in name, (r, name)

            # The end of the replay: idle partitions let every window close.
            wait_for(produced.is_set, 300, "the paced replay", proc)
            assert not failure, failure

            def last_window(have):  # the last window's entries and exits by station, rows added up
                totals = collections.Counter()
                exits = collections.Counter()
                for (station, ws), (row, _) in have.items():
                    if ws == last:
                        totals[station] += row["entries"]
                        exits[station] += row["exits"]
                return totals, exits

            def top_ten(have):  # the chart the page should draw: by entries, then by name
                totals, exits = last_window(have)
                return sorted(((s, totals[s], exits[s]) for s in totals),
                              key=lambda b: (-b[1], b[0]))[:10]

            previous = {}

            def all_closed():
                have = lake_rows(lake)
                page = browser.snapshot()
                bars = [(b["station"], count(b["entries"]), count(b["exits"]))
                        for b in page["bars"]]
                # The lake and the page both catch up after the last close: a moment when each
                # holds the same number of rows is not the end unless they hold the same last
                # window and the lake has stopped growing. The chart is drawn a moment after the
                # closes are counted: wait for it too.
                settled = have == previous.get("have")
                previous["have"] = have
                return (settled and any(ws == last for _, ws in have) and not page["open"]
                        and page["closes"] == len(have) and page["top_window"] == last
                        and bars == top_ten(have) and (have, page))
            # Every window closed while the page watched: it handled one close per lake row.
            have, end = wait_for(all_closed, 120, f"every window up to {last} to close, on the "
                                 "page and in the lake", proc, interval=0.2)
            assert max(ws for _, ws in have) == last
            assert len(end["closed"]) == 50
            for r in end["closed"]:
                row, name = have[(r["station"], r["window_start"])]
                assert shown(r) == (row["station"], row["window_start"], row["entries"],
                                    row["exits"], row["events"])
                assert f"-{r['source']}" in name
            # (Newest first is the order the closes came in: one partition may close the
            # window before the last after another closed the last, so which windows the 50
            # newest are of depends on timing. The chart below is of the last window.)

            # The chart: the last window's top ten stations by entries, rows added up.
            totals, exits = last_window(have)
            assert end["top_window"] == last
            bars = [(b["station"], count(b["entries"]), count(b["exits"])) for b in end["bars"]]
            assert len(bars) == min(10, len(totals))
            assert [e for _, e, _ in bars] == sorted(totals.values(), reverse=True)[:10]
            assert bars == [(s, totals[s], exits[s]) for s, _, _ in bars]
            assert end["events"] > end["closes"]
            assert_nothing_injected(browser, end)
            # /metrics is served beside the page here, so the footer keeps its link.
            assert browser.eval("document.querySelector('#metrics-link a') !== null")

            # The daemon stops: the page says the stream ended.
            assert stop(proc) == 0
            wait_for(lambda: browser.snapshot()["status"] == "ended", 60,
                     "the page to show the end of the stream")
            assert not browser.console_errors(), browser.console_errors()
        finally:
            browser.close()


# ---------------------------------------------------------------------------------------------
# A scripted stream: what the daemon cannot be made to send on cue.

def iso(hours):
    return (datetime.datetime(2024, 1, 6, tzinfo=datetime.timezone.utc)
            + datetime.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def row(station, hour, entries, exits, events, source, final):
    return {"station": station, "window_start": iso(hour), "window_end": iso(hour + 1),
            "entries": entries, "exits": exits, "events": events, "final": final,
            "first_event": iso(hour), "last_event": iso(hour), "source": source}


class ScriptedStream:
    """Serves the page and two scripted /events connections: the first ends without `end`
    (the browser reconnects with Last-Event-ID), the second starts with a `gap` and ends."""

    def __init__(self):
        self.first, self.second = [], []
        self.last_event_ids = []
        self.ids = 0
        self.proceed = threading.Event()  # the second connection is answered once set
        stream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path in ("/live", "/live.js"):
                    html, script = split_page()
                    body = (html if self.path == "/live" else script).encode()
                    self.send_response(200)
                    if self.path == "/live":
                        self.send_header("Content-Type", "text/html; charset=utf-8")
                        self.send_header("Content-Security-Policy", CSP)
                    else:
                        self.send_header("Content-Type", "text/javascript; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if self.path != "/events" or len(stream.last_event_ids) >= 2:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                stream.last_event_ids.append(self.headers.get("Last-Event-ID"))
                if len(stream.last_event_ids) == 2 and not stream.proceed.wait(120 * SLOW):
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                script = stream.first if len(stream.last_event_ids) == 1 else stream.second
                self.wfile.write(b"retry: 200\n\n" + b"".join(script))
                self.wfile.flush()
                self.close_connection = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def event(self, script, name, data, with_id=False):
        text = f"event: {name}\n"
        if with_id:
            self.ids += 1
            text += f"id: {self.ids}\n"
        script.append((text + "data: " + json.dumps(data) + "\n\n").encode())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.proceed.set()
        self.server.shutdown()
        self.server.server_close()


def test_the_page_keeps_its_bounds_adds_up_partitions_and_survives_reconnects(tmp_path):
    chromium_or_skip()
    with ScriptedStream() as s:
        hello = {"version": "test", "window": {"type": "tumbling", "size_ms": 3_600_000,
                                                "slide_ms": 3_600_000},
                 "coalesce_ms": 250, "heartbeat_ms": 1000, "last_id": 0}
        # First connection: 602 open rows (the page keeps the 500 largest), one updated in place.
        s.event(s.first, "hello", hello)
        for i in range(600):
            s.event(s.first, "update", row(f"S{i:03d}", 0, i, 2 * i, 1, "t-0", False), True)
        s.event(s.first, "update", row(IMG, 0, 5000, 1, 3, "t-1", False), True)
        s.event(s.first, "update", row(SCRIPT, 0, 4000, 2, 4, "t-0", False), True)
        s.event(s.first, "update", row("S599", 0, 7000, 11, 9, "t-0", False), True)
        s.event(s.first, "heartbeat", {"time": iso(5), "watermark": iso(0.5), "lag": None,
                                       "records": 1234567, "records_per_second": 2500.4,
                                       "open_windows": 602, "clients": 1})
        first_last_id = s.ids
        # The connection ends without `end`: the browser comes back with Last-Event-ID, and gets
        # a gap, window 0's largest rows closing, window 2 opening, window 1 closing in two
        # partitions each, the hostile rows of window 0 closing last: first in the list, not in
        # the chart (older), and a watermark past window 1: the rest of window 0 (whose closes
        # the gap lost, say) leaves the open table too.
        s.event(s.second, "hello", {**hello, "last_id": s.ids + 10})
        s.event(s.second, "gap", {"after": s.ids, "first_id": s.ids + 5})
        s.ids += 4
        for i in range(540, 600):
            s.event(s.second, "close", row(f"S{i:03d}", 0, i, 2 * i, 1, "t-0", True), True)
        for i in range(5):
            s.event(s.second, "update", row(f"U{i}", 2, 10 * i, i, 1, "t-1", False), True)
        w1, w1x = collections.Counter(), collections.Counter()
        for i in range(30):
            for part in range(2):
                entries, exits = 100 + (i * 37) % 50 + part * i, 10 * part + i
                s.event(s.second, "close", row(f"T{i:02d}", 1, entries, exits, 2, f"t-{part}",
                                               True), True)
                w1[f"T{i:02d}"] += entries
                w1x[f"T{i:02d}"] += exits
        s.event(s.second, "close", row(IMG, 0, 5001, 1, 4, "t-1", True), True)
        s.event(s.second, "close", row(SCRIPT, 0, 4001, 2, 5, "t-0", True), True)
        s.event(s.second, "heartbeat", {"time": iso(6), "watermark": iso(2), "lag": 42,
                                        "records": 2000000, "records_per_second": 0,
                                        "open_windows": 0, "clients": 1})
        s.event(s.second, "end", {})
        closes = 60 + 60 + 2
        updates_second = 5

        browser = Browser(tmp_path)
        try:
            browser.open(f"http://127.0.0.1:{s.port}/live")
            # Between the two connections: the 500 largest open rows, largest first.
            snap = wait_for(lambda: (x := browser.snapshot())["status"] == "reconnecting"
                            and len(s.last_event_ids) == 2 and len(x["open"]) == 500 and x,
                            60, "the first connection's rows, and the browser reconnecting")
            assert s.last_event_ids == [None, str(first_last_id)]
            expect = ([("S599", iso(0), 7000, 11, 9), (IMG, iso(0), 5000, 1, 3),
                       (SCRIPT, iso(0), 4000, 2, 4)]
                      + [(f"S{i:03d}", iso(0), i, 2 * i, 1) for i in range(598, 101, -1)])
            assert [shown(r) for r in snap["open"]] == expect
            assert len({r["key"] for r in snap["open"]}) == 500
            assert snap["events"] == first_last_id and snap["closes"] == 0
            assert snap["header"] == {"watermark": "2024-01-06 00:30:00 UTC", "lag": "—",
                                      "rate": "2,500 records/s", "records": "1,234,567",
                                      "status": "reconnecting"}
            assert_nothing_injected(browser, snap)

            s.proceed.set()
            snap = wait_for(lambda: (x := browser.snapshot())["status"] == "ended"
                            and x["closes"] == closes and x["top_window"] and x, 60,
                            "the second connection's events on the page")
            assert snap["events"] == first_last_id + updates_second + closes

            # Rows leave the open table when they close or the watermark passes their end.
            assert [shown(r) for r in snap["open"]] == [
                (f"U{i}", iso(2), 10 * i, i, 1) for i in range(4, -1, -1)]

            # Closed: the 50 newest, newest first, with data-window-start as received.
            closed = [shown(r) for r in snap["closed"]]
            assert len(closed) == 50
            assert closed[:2] == [(SCRIPT, iso(0), 4001, 2, 5), (IMG, iso(0), 5001, 1, 4)]
            assert [r["window_start"] for r in snap["closed"]] == [iso(0)] * 2 + [iso(1)] * 48
            assert [r["source"] for r in snap["closed"][:4]] == ["t-0", "t-1", "t-1", "t-0"]
            assert snap["closed"][1]["window"] == "2024-01-06 00:00–01:00"
            assert closed[2] == ("T29", iso(1), 100 + (29 * 37) % 50 + 29, 39, 2)

            # The chart: window 1 (the newest), each station's two partitions added up.
            assert snap["top_window"] == iso(1)
            bars = [(b["station"], count(b["entries"]), count(b["exits"])) for b in snap["bars"]]
            top = sorted(w1.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
            assert bars == [(k, v, w1x[k]) for k, v in top]

            assert snap["header"] == {"watermark": "2024-01-06 02:00:00 UTC", "lag": "42",
                                      "rate": "0 records/s",
                                      "records": "2,000,000", "status": "ended"}
            assert "stream ended" in snap["notices"]["end"]
            gap = snap["notices"]["gap"]
            assert "gap" in gap and f"resuming at {first_last_id + 5}" in gap, gap
            assert_nothing_injected(browser, snap)
            # This server answers /metrics with 404 (as the live port does with live.listen
            # set): the page drops the footer's link instead of pointing at it.
            wait_for(lambda: browser.eval("document.getElementById('metrics-link') === null"),
                     30, "the footer's /metrics link to go")
            check_png(browser.screenshot(), tmp_path / "scripted.png")
            assert not browser.console_errors(), browser.console_errors()
        finally:
            browser.close()
