"""`turnstiled demo`: the embedded broker, the producer and the daemon together, into a folder it
names, then a summary of the busiest stations and windows. With real weeks it replays one; with
--generate (or without ../shared/data/mta) it generates readings. Its rows are whole and final,
and the numbers it prints are the numbers in the lake.
"""
import re

import oracle
from conftest import MTA_DIR, require_mta_weeks, run


def check_demo_output(out, stdout):
    lake = out / "lake"
    rows = oracle.read_lake(lake)  # fails on a partial file or a repeated window
    assert rows, "the demo wrote no rows"
    m = re.search(r"results: (\d+) rows in (\d+) files under (\S+)", stdout)
    assert m, stdout
    assert int(m.group(1)) == len(rows)
    assert m.group(3) == str(lake)
    # The busiest station it names is the lake's busiest station, with the same total.
    totals = {}
    for (station, _, _), (entries, _, _) in rows.items():
        totals[station] = totals.get(station, 0) + entries
    best = max(totals, key=totals.get)
    first = re.search(r"busiest stations.*?\n\s+(\d+)\s+(.+)", stdout)
    assert first, stdout
    assert (int(first.group(1)), first.group(2).strip()) == (totals[best], best)
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
