"""SPEC §3, §8: values that parse but sit at the 64-bit limits cost only themselves.

Cumulative registers jumping between INT64_MAX and INT64_MIN are resets (their difference does
not fit in 64 bits), computed exactly like the oracle's Python integers; delta sums that would
pass INT64_MAX are held there, and the saturation is logged. The sanitizer runs (UBSan) run this
too: no undefined behaviour on the way.
"""
import json

import oracle
from conftest import run

MAX = 2**63 - 1
MIN = -2**63


def line(device, station, time, entries, exits=0):
    return f"{device},R,1,{station},1,IRT,01/06/2024,{time},REGULAR,{entries},{exits}\n"


def run_file(tmp_path, name, text, counters):
    data = tmp_path / f"{name}.txt"
    data.write_text(text)
    cfg = {
        "source": {"type": "file", "file": {"paths": [str(data)]}},
        "format": {"type": "mta-csv", "timezone": "UTC", "counters": counters},
        "window": {"type": "tumbling", "size": "4h"},
        "sinks": [{"name": "lake", "type": "file", "path": str(tmp_path / name / "lake"),
                   "format": "csv", "compression": "none"}],
        "metrics": {"enabled": False},
        "state": {"dir": str(tmp_path / name / "state")},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(cfg))
    result = run(["run", "-c", path])
    return oracle.read_lake(tmp_path / name / "lake"), result.stderr


def test_cumulative_registers_at_the_64_bit_limits_match_exact_integers(tmp_path):
    text = (line("A", "S", "00:00:00", MAX, MIN) + line("A", "S", "01:00:00", MIN, MAX) +
            line("A", "S", "02:00:00", MIN + 5, MAX - 7) + line("A", "S", "03:00:00", MAX, 0))
    rows, _ = run_file(tmp_path, "cumulative", text, "cumulative")
    o = oracle.Oracle(4 * 3600 * 1000)
    clock = oracle.LocalClock("UTC")
    for x in text.splitlines():
        o.add(*oracle.parse_mta(x, clock))
    assert rows == o.rows()
    assert rows[("S", "2024-01-06T00:00:00Z", "2024-01-06T04:00:00Z")] == (5, 7, 4)
    assert o.dropped["counter_reset"] == 4  # per counter: entries and exits, twice


def test_delta_sums_past_int64_max_are_held_at_the_limit_and_logged(tmp_path):
    text = line("B", "T", "00:00:00", MAX) + line("B", "T", "01:00:00", MAX) + line(
        "B", "T", "02:00:00", 5)
    rows, log = run_file(tmp_path, "delta", text, "delta")
    exact = MAX + MAX + 5
    assert exact > MAX
    assert rows == {("T", "2024-01-06T00:00:00Z", "2024-01-06T04:00:00Z"): (MAX, 0, 3)}
    assert log.count("a window sum would overflow 64 bits") == 1
