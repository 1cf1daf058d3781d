"""An independent statement of SPEC §3–§4, in plain Python, for checking the daemon's numbers.

It shares no code and no approach with the C++ pipeline: it parses with str.split, converts
local times with the standard library's zoneinfo (fold=0: in a DST gap or overlap the offset in
force before the change applies), keeps every device in one dict and every window in another,
and processes records one by one in the order given. Give it records in the order the daemon
sees them: file order for a file source, (partition, offset) order for Kafka.
"""
import collections
import datetime
import json
import pathlib
import subprocess
import zoneinfo

UTC = datetime.timezone.utc


class LocalClock:
    """Local wall-clock times -> UTC epoch milliseconds, memoized (the feeds repeat timestamps)."""

    def __init__(self, zone):
        self.zone = zoneinfo.ZoneInfo(zone)
        self.cache = {}

    def to_ms(self, y, mo, d, h, mi, s):
        key = (y, mo, d, h, mi, s)
        ms = self.cache.get(key)
        if ms is None:
            local = datetime.datetime(y, mo, d, h, mi, s, tzinfo=self.zone, fold=0)
            ms = int(local.timestamp()) * 1000
            self.cache[key] = ms
        return ms


def parse_mta(line, clock):
    """One mta-csv data row -> (station, device, event_ms, entries, exits), or None for a header
    or blank line."""
    fields = line.rstrip("\r\n").split(",")
    if not fields or fields[0].strip() in ("C/A", "") or len(fields) not in (11, 13):
        return None
    date, time = fields[6], fields[7]
    if "/" in date:
        mo, d, y = date.split("/")
    else:
        mo, d, y = date.split("-")
    y = int(y)
    if y < 100:
        y += 2000
    h, mi, s = time.split(":")
    ms = clock.to_ms(y, int(mo), int(d), int(h), int(mi), int(s))
    return fields[3], ",".join(fields[0:3]), ms, int(fields[9]), int(fields[10])


def _unquote(field):
    field = field.strip()
    if len(field) >= 2 and field[0] in "'\"" and field[-1] == field[0]:
        return field[1:-1]
    return field


def parse_seed_csv(message, clock):
    """A seed-csv message (header line, then one value line) -> the record tuple."""
    for line in message.splitlines():
        if not line.strip() or line.split(",")[0].strip().strip("'\"") == "timestamp":
            continue
        f = [_unquote(x) for x in line.split(",")]
        assert len(f) == 7, f"unexpected seed-csv line {line!r}"
        when = datetime.datetime.strptime(f[6], "%Y-%m-%d %H:%M:%S")
        ms = clock.to_ms(when.year, when.month, when.day, when.hour, when.minute, when.second)
        return f[1], f[2] + "/" + f[3], ms, int(f[4]), int(f[5])
    return None


def parse_json(message, _clock):
    """A json message with the default field names and an RFC 3339 UTC time."""
    o = json.loads(message)
    when = datetime.datetime.fromisoformat(o["time"].replace("Z", "+00:00"))
    return o["station"], str(o["device"]), int(when.timestamp() * 1000), int(o["entries"]), int(
        o["exits"])


class Oracle:
    """Window rows for a stream of records, by the SPEC rules."""

    def __init__(self, size_ms, slide_ms=None, offset_ms=0, counters="cumulative",
                 max_delta=10000):
        self.size = size_ms
        self.slide = slide_ms or size_ms
        self.offset = offset_ms
        assert self.size > 0 and self.slide > 0, (size_ms, slide_ms)
        self.counters = counters
        self.max_delta = max_delta
        self.last = {}  # device -> (t0, e0, x0)
        self.windows = collections.defaultdict(lambda: [0, 0, 0])  # (station, start) -> sums
        self.dropped = collections.Counter()
        self.starts_cache = {}  # event time -> its window starts

    def window_starts(self, t):
        """Every start = offset + k*slide with start <= t < start + size, by brute force: each
        start on the grid within [t - size - slide, t + slide] is tested against the SPEC's
        condition as written, and only that test decides. Any window holding t starts in
        (t - size, t], so the search range has a whole slide to spare on each side: the integer
        division that finds a first k near the low end cannot drop a window even if it were one
        k off. Memoized: the feeds repeat timestamps."""
        starts = self.starts_cache.get(t)
        if starts is None:
            lo, hi = t - self.size - self.slide, t + self.slide
            k = (lo - self.offset) // self.slide  # a grid point at or just below lo
            starts = []
            while self.offset + k * self.slide <= hi:
                start = self.offset + k * self.slide
                if start <= t < start + self.size:
                    starts.append(start)
                k += 1
            starts = tuple(starts)
            self.starts_cache[t] = starts
        return starts

    def add(self, station, device, t, e, x):
        de = dx = 0
        if self.counters == "delta":
            de, dx = e, x
        else:
            prev = self.last.get(device)
            if prev is not None:
                t0, e0, x0 = prev
                if t == t0:
                    self.dropped["duplicate"] += 1
                    return
                if t < t0:
                    self.dropped["out_of_order"] += 1
                    return
                de, dx = abs(e - e0), abs(x - x0)
                if de > self.max_delta:
                    de = 0
                    self.dropped["counter_reset"] += 1
                if dx > self.max_delta:
                    dx = 0
                    self.dropped["counter_reset"] += 1
            self.last[device] = (t, e, x)
        for start in self.window_starts(t):
            w = self.windows[(station, start)]
            w[0] += de
            w[1] += dx
            w[2] += 1

    def rows(self):
        """{(station, window_start, window_end): (entries, exits, events)} with ISO UTC times."""
        return {(station, iso(start), iso(start + self.size)): tuple(v)
                for (station, start), v in self.windows.items()}


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_text(path):
    """A plain or .zst file's text. A truncated or damaged zstd frame raises."""
    path = pathlib.Path(path)
    if path.suffix == ".zst":
        import zstandard  # Debian's python3-zstandard: thousands of lake files, no subprocess each
        raw = path.read_bytes()
        out = []
        while raw:  # one or more whole frames, like zstd -dc
            d = zstandard.ZstdDecompressor().decompressobj()
            out.append(d.decompress(raw))
            if not d.eof:
                raise ValueError(f"{path}: truncated zstd frame")
            raw = d.unused_data
        return b"".join(out).decode()
    return path.read_text()


def read_lake(root):
    """Every row of a file sink's csv tree: {(station, start, end): (entries, exits, events)}.
    Skips dot files (being written), as lake readers do. Fails on a window written twice
    anywhere under root, a truncated file, a row in a file not named for its window, or a row
    whose station or date is not its folders'."""
    import csv
    import io
    import urllib.parse

    rows = {}
    root = pathlib.Path(root)
    for f in sorted(root.rglob("*")):
        if f.is_dir() or f.name.startswith("."):
            continue  # a file being written: readers skip dot files
        assert f.name.startswith("part-"), f"unexpected file in the lake: {f}"
        # part-<start>-<end>[-<topic>-<partition>][-<n>].csv[.zst]
        stamp_start, stamp_end = f.name.split(".")[0].split("-")[1:3]
        folders = dict(p.split("=", 1) for p in f.relative_to(root).parent.parts)
        text = read_text(f)
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader)
        assert header[:7] == ["station", "window_start", "window_end", "entries", "exits",
                              "events", "final"], header
        for r in reader:
            key = (r[0], r[1], r[2])
            assert key not in rows, f"window {key} written twice (again in {f})"
            assert r[6] == "true", f"non-final row in a final-mode run: {r}"
            assert r[1].replace("-", "").replace(":", "") == stamp_start, (f, r)
            assert r[2].replace("-", "").replace(":", "") == stamp_end, (f, r)
            if "station" in folders:
                assert urllib.parse.unquote(folders["station"]) == r[0], (f, r[0])
            if "date" in folders:
                assert folders["date"] == r[1][:10], (f, r[1])
            if "hour" in folders:
                assert folders["hour"] == r[1][11:13], (f, r[1])
            rows[key] = (int(r[3]), int(r[4]), int(r[5]))
    return rows


def diff(expected, actual, limit=10):
    """A readable description of how two row dicts differ, or '' when they are equal."""
    lines = []
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    wrong = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    if missing:
        lines.append(f"{len(missing)} windows missing, e.g.: " +
                     "; ".join(f"{k}={expected[k]}" for k in missing[:limit]))
    if extra:
        lines.append(f"{len(extra)} unexpected windows, e.g.: " +
                     "; ".join(f"{k}={actual[k]}" for k in extra[:limit]))
    if wrong:
        lines.append(f"{len(wrong)} windows differ (expected vs actual), e.g.: " +
                     "; ".join(f"{k}: {expected[k]} vs {actual[k]}" for k in wrong[:limit]))
    return "\n".join(lines)
