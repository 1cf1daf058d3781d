"""Killing the daemon (SIGKILL, no chance to clean up) while its file sink writes never leaves a
partial file under a final name: every `part-*` file is whole (a complete zstd frame, a header,
whole rows ending in a newline). Temp files are dot files, which lake readers skip.

The input is the real weeks when present, otherwise generated readings written to a file.
"""
import csv
import io
import os
import random
import signal
import subprocess
import time
import json

import pytest

import oracle
from conftest import MTA_DIR, MTA_WEEKS, run, turnstiled_bin, wait_for


def input_paths(tmp_path):
    if MTA_WEEKS:
        return [str(MTA_DIR / w) for w in MTA_WEEKS]
    generated = tmp_path / "generated.txt"
    out = run(["produce", "--generate", "--count", 400000, "--seed", 3, "--dry-run"]).stdout
    generated.write_text("".join(line.split("\t", 1)[1] + "\n" for line in out.splitlines()))
    return [str(generated)]


def final_files(lake):
    return [p for p in lake.rglob("*") if p.is_file() and not p.name.startswith(".")]


def check_whole(path):
    text = oracle.read_text(path)  # zstd -dc fails on a truncated frame
    assert text.endswith("\n"), f"{path} does not end in a newline"
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0][:3] == ["station", "window_start", "window_end"], path
    assert len(rows) > 1 and all(len(r) == len(rows[0]) for r in rows), path


@pytest.mark.parametrize("round_", range(4))
def test_sigkill_during_writes_leaves_only_whole_files(tmp_path, round_):
    lake = tmp_path / "lake"
    config = tmp_path / "kill.yaml"
    config.write_text(json.dumps({
        "source": {"type": "file", "file": {"paths": input_paths(tmp_path)}},
        "format": {"type": "mta-csv", "timezone": "America/New_York"},
        "window": {"type": "hopping", "size": "1h", "slide": "15m"},
        "sinks": [{"name": "lake", "type": "file", "path": str(lake), "format": "csv",
                   "compression": "zstd", "batch_rows": 5000, "flush_interval": "100ms"}],
        "metrics": {"enabled": False},
        "state": {"dir": str(tmp_path / "state")},
    }))
    proc = subprocess.Popen([turnstiled_bin(), "run", "-c", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Kill once some files are out and more are on their way: some kills land mid-write.
        wait_for(lambda: len(final_files(lake)) >= 1 + round_ * 40, 120, "the first files", proc)
        time.sleep(random.Random(round_).uniform(0, 0.2))  # jitter, not a wait
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    files = final_files(lake)
    assert files, "nothing was written before the kill"
    for f in files:
        check_whole(f)
