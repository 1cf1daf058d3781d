"""`turnstiled run`: the file sink's rows equal, row for row, an independent oracle (oracle.py)
on every real MTA week, via the file source and via Kafka, for tumbling and hopping windows and
for delta-mode streams from the generator.

Each run reads the real binary's output from disk; the oracle computes the same rows from the
same records by another method. Where they differ the test prints the first differences.
"""
import collections
import json
import os
import pathlib

import pytest

import oracle
from conftest import (FAST_GROUP, consume_all, mta_weeks_or_skip, require_mta_weeks, run,
                      week_path)

HOUR_MS = 3600 * 1000
TOPIC = "turnstile-stream"


def write_config(tmp_path, source, fmt, window, name="run", extra=None):
    """A config file for one run; JSON is YAML, so no YAML writer is needed."""
    cfg = {
        "source": source,
        "format": fmt,
        "window": window,
        "sinks": [{"name": "lake", "type": "file", "path": str(tmp_path / name / "lake"),
                   "format": "csv", "compression": "none"}],
        "dead_letter": {"type": "file", "path": str(tmp_path / name / "dead-letter")},
        "metrics": {"enabled": False},
        "state": {"dir": str(tmp_path / name / "state")},
    }
    cfg.update(extra or {})
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(cfg, indent=1))
    return path, tmp_path / name / "lake"


MTA_FORMAT = {"type": "mta-csv", "timezone": "America/New_York", "counters": "cumulative"}
TUMBLING_4H = {"type": "tumbling", "size": "4h"}
HOPPING_1H_15M = {"type": "hopping", "size": "1h", "slide": "15m"}


def kafka_source(broker, group):
    return {"type": "kafka", "kafka": {"bootstrap_servers": broker.address, "topics": [TOPIC],
                                       "group_id": group, "consumer_threads": 2,
                                       "properties": FAST_GROUP}}


def oracle_for_file(path, window_ms):
    size, slide = window_ms
    o = oracle.Oracle(size, slide)
    clock = oracle.LocalClock("America/New_York")
    for line in oracle.read_text(path).splitlines():
        rec = oracle.parse_mta(line, clock)
        if rec is not None:
            o.add(*rec)
    return o


def assert_same_rows(expected, actual):
    assert actual, "the sink wrote no rows"
    problems = oracle.diff(expected, actual)
    assert not problems, problems


@pytest.mark.parametrize("window,window_ms", [
    (TUMBLING_4H, (4 * HOUR_MS, None)),
    (HOPPING_1H_15M, (HOUR_MS, HOUR_MS // 4)),
], ids=["tumbling-4h", "hopping-1h-15m"])
@pytest.mark.parametrize("week", mta_weeks_or_skip())
def test_file_source_matches_the_oracle_on_a_real_week(tmp_path, week, window, window_ms):
    path = week_path(week)
    config, lake = write_config(tmp_path, {"type": "file", "file": {"paths": [str(path)]}},
                                MTA_FORMAT, window)
    result = run(["run", "-c", config])
    assert "input complete" in result.stderr
    expected = oracle_for_file(path, window_ms)
    assert_same_rows(expected.rows(), oracle.read_lake(lake))


def test_file_source_over_every_week_at_once_matches_the_oracle(tmp_path):
    # One run over all the weeks, in name order, as config/file-source.yaml does: a device's
    # baseline carries from one week to the next, and no week is "future" to an earlier one.
    paths = [str(week_path(w)) for w in require_mta_weeks()]
    config, lake = write_config(tmp_path, {"type": "file", "file": {"paths": paths}},
                                MTA_FORMAT, TUMBLING_4H)
    run(["run", "-c", config])
    o = oracle.Oracle(4 * HOUR_MS)
    clock = oracle.LocalClock("America/New_York")
    for path in paths:
        for line in oracle.read_text(path).splitlines():
            rec = oracle.parse_mta(line, clock)
            if rec is not None:
                o.add(*rec)
    assert_same_rows(o.rows(), oracle.read_lake(lake))
    dead = tmp_path / "run" / "dead-letter" / "dead-letter.jsonl"
    reasons = collections.Counter(json.loads(x)["reason"] for x in dead.read_text().splitlines())
    assert reasons == {k: v for k, v in o.dropped.items() if k != "counter_reset" and v}


@pytest.mark.parametrize("week", mta_weeks_or_skip())
def test_kafka_source_matches_the_oracle_on_a_real_week(tmp_path, broker, week):
    path = week_path(week)
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", path])
    assert "failures=0" in produced.stderr
    config, lake = write_config(
        tmp_path,
        kafka_source(broker, "oracle-test"),
        MTA_FORMAT, TUMBLING_4H)
    result = run(["run", "-c", config, "--available-now"])
    assert "input complete" in result.stderr

    # The oracle reads the topic with an independent client, in each partition's order.
    rows = sum(1 for line in oracle.read_text(path).splitlines()
               if oracle.parse_mta(line, oracle.LocalClock("UTC")) is not None)
    messages = sorted(consume_all(broker.address, TOPIC, rows))
    o = oracle.Oracle(4 * HOUR_MS)
    clock = oracle.LocalClock("America/New_York")
    for _, _, _, value, _ in messages:
        o.add(*oracle.parse_mta(value.decode(), clock))
    assert_same_rows(o.rows(), oracle.read_lake(lake))


@pytest.mark.parametrize("fmt", ["seed-csv", "json"])
def test_delta_streams_from_the_generator_match_the_oracle(tmp_path, broker, fmt):
    count = 40000
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--generate", "--count",
                    count, "--seed", 7, "--format", fmt])
    assert "failures=0" in produced.stderr
    config, lake = write_config(
        tmp_path,
        kafka_source(broker, "delta-test"),
        {"type": fmt, "timezone": "America/New_York", "counters": "delta"},
        {"type": "tumbling", "size": "1h"})
    run(["run", "-c", config, "--available-now"])

    parse = oracle.parse_seed_csv if fmt == "seed-csv" else oracle.parse_json
    clock = oracle.LocalClock("America/New_York")
    o = oracle.Oracle(HOUR_MS, counters="delta")
    for _, _, _, value, _ in sorted(consume_all(broker.address, TOPIC, count)):
        o.add(*parse(value.decode(), clock))
    expected = o.rows()
    assert sum(v[2] for v in expected.values()) == count
    assert_same_rows(expected, oracle.read_lake(lake))


def mta_row(station, device, date, time, entries, exits, desc="REGULAR"):
    ca, unit, scp = device.split(",")
    return f"{ca},{unit},{scp},{station},NQR,BMT,{date},{time},{desc},{entries},{exits}\n"


def test_readings_across_the_spring_dst_change_land_in_the_right_utc_windows(tmp_path):
    # America/New_York, 2024-03-10: 02:00 EST jumps to 03:00 EDT. Delta counts, 1 h windows, so
    # each reading's window is visible on its own. 02:30 does not exist on that day; like the tz
    # database's "pre" rule it is read with the offset before the change (EST), as 07:30Z.
    rows = [
        ("03/10/2024", "00:30:00", 1),  # EST -> 05:30Z
        ("03/10/2024", "01:30:00", 2),  # EST -> 06:30Z
        ("03/10/2024", "01:59:59", 4),  # EST -> 06:59:59Z
        ("03/10/2024", "02:30:00", 8),  # gap -> 07:30Z
        ("03/10/2024", "03:00:00", 16),  # EDT -> 07:00Z
        ("03/10/2024", "03:30:00", 32),  # EDT -> 07:30Z
        ("03/10/2024", "04:30:00", 64),  # EDT -> 08:30Z
        ("03/09/2024", "23:30:00", 128),  # EST -> 04:30Z
    ]
    data = tmp_path / "dst.txt"
    data.write_text("C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS\n" +
                    "".join(mta_row("DST", "A1,R1,00-00-00", d, t, n, 0) for d, t, n in rows))
    config, lake = write_config(tmp_path, {"type": "file", "file": {"paths": [str(data)]}},
                                {"type": "mta-csv", "timezone": "America/New_York",
                                 "counters": "delta"}, {"type": "tumbling", "size": "1h"})
    run(["run", "-c", config])
    assert oracle.read_lake(lake) == {
        ("DST", "2024-03-10T04:00:00Z", "2024-03-10T05:00:00Z"): (128, 0, 1),
        ("DST", "2024-03-10T05:00:00Z", "2024-03-10T06:00:00Z"): (1, 0, 1),
        ("DST", "2024-03-10T06:00:00Z", "2024-03-10T07:00:00Z"): (2 + 4, 0, 2),
        ("DST", "2024-03-10T07:00:00Z", "2024-03-10T08:00:00Z"): (8 + 16 + 32, 0, 3),
        ("DST", "2024-03-10T08:00:00Z", "2024-03-10T09:00:00Z"): (64, 0, 1),
    }


def test_the_cumulative_rule_on_hand_made_readings(tmp_path):
    # SPEC §3 case by case, with numbers a reader can check by hand (4 h windows, UTC).
    d = "A1,R1,00-00-00"
    lines = [
        mta_row("S", d, "01/06/2024", "00:00:00", 1000, 500),  # baseline: 0, 0, one event
        mta_row("S", d, "01/06/2024", "01:00:00", 1010, 505),  # +10 +5
        mta_row("S", d, "01/06/2024", "01:00:00", 1999, 999, "RECOVR AUD"),  # duplicate
        mta_row("S", d, "01/06/2024", "00:30:00", 1, 1),  # out of order
        mta_row("S", d, "01/06/2024", "02:00:00", 1004, 500),  # backwards: |-6| |-5|
        mta_row("S", d, "01/06/2024", "05:00:00", 50000, 520),  # reset on entries: 0, +20
        mta_row("S", d, "01/06/2024", "06:00:00", 50003, 9_000_000_000),  # +3, reset on exits
    ]
    data = tmp_path / "rule.txt"
    data.write_text("".join(lines))
    config, lake = write_config(tmp_path, {"type": "file", "file": {"paths": [str(data)]}},
                                {"type": "mta-csv", "timezone": "UTC"}, TUMBLING_4H)
    run(["run", "-c", config])
    assert oracle.read_lake(lake) == {
        ("S", "2024-01-06T00:00:00Z", "2024-01-06T04:00:00Z"): (16, 10, 3),
        ("S", "2024-01-06T04:00:00Z", "2024-01-06T08:00:00Z"): (3, 20, 2),
    }
    letters = [json.loads(x) for x in
               (tmp_path / "run" / "dead-letter" / "dead-letter.jsonl").read_text().splitlines()]
    assert sorted(x["reason"] for x in letters) == ["duplicate", "out_of_order"]
    assert all(x["raw"] in lines[2] + lines[3] and x["raw"] for x in letters)
