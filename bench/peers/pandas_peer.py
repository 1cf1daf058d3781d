"""pandas peer for bench/run.sh (SPEC §9): the rows turnstiled computes, with a groupby.

    /usr/bin/python3 bench/peers/pandas_peer.py FILE...

FILEs are MTA weekly files (plain text, or .zst where the zstandard module is installed), in
the order turnstiled's file source reads them (sorted). Computes, as turnstiled does with
`counters: cumulative`, `timezone: America/New_York` and 4 h tumbling windows:
  - device = C/A+UNIT+SCP; local DATE TIME read in America/New_York (a wall time repeated by
    fall-back is its first occurrence, one skipped by spring-forward gets the offset before
    the change, as turnstiled and Python's zoneinfo with fold=0), then UTC;
  - SPEC §3: per device, in arrival order (file order, then line order), a reading whose time
    is not after the last accepted reading's time is dropped (duplicate or out_of_order).
    Accepted times rise strictly, so "not after the last accepted" is "not after every earlier
    reading of the device": a shifted running max. The first accepted reading is the
    baseline (0, 0); then |d| counts if |d| <= 10000, else 0 (a reset), and the baseline
    moves either way (diff over the accepted readings);
  - per (STATION, 4 h window from the epoch): sums of entries and exits, and events = the
    accepted readings.
Prints one line: pandas wall=S rows=N entries=E exits=X events=V input=R version=V
(wall from the start of reading to the result; the import of pandas is not in it).
"""
import sys
import time

import numpy as np
import pandas as pd

MAX_DELTA = 10000
WINDOW_S = 4 * 3600
NAMES = ["ca", "unit", "scp", "station", "linename", "division", "date", "time", "desc",
         "entries", "exits"]


def read(path):
    if path.endswith(".zst"):
        import zstandard  # not in Debian's python3-pandas; run.sh passes plain files
        with open(path, "rb") as f:
            data = zstandard.ZstdDecompressor().stream_reader(f)
            return read_csv(data)
    return read_csv(path)


def read_csv(src):
    return pd.read_csv(src, header=0, names=NAMES, dtype={n: str for n in NAMES[:9]} |
                       {"entries": "int64", "exits": "int64"}, quoting=3, engine="c")


def main(paths):
    start = time.perf_counter()
    df = pd.concat([read(p) for p in paths], ignore_index=True)  # index = arrival order
    n_input = len(df)
    fmt = "%m/%d/%Y %H:%M:%S"
    dt = df["date"] + " " + df["time"]
    if dt.str.contains("-", regex=False).any():
        fmt = "mixed"
    local = pd.to_datetime(dt, format=fmt)
    utc = local.dt.tz_localize("America/New_York", ambiguous=np.ones(n_input, dtype=bool),
                               nonexistent=pd.Timedelta(hours=1)).dt.tz_convert("UTC")
    df["t"] = utc.astype("int64") // 10**9
    df["device"] = df["ca"] + "+" + df["unit"] + "+" + df["scp"]
    # Arrival order within each device (a stable sort keeps the index order).
    df = df[["device", "station", "t", "entries", "exits"]].sort_values("device", kind="stable")
    seen = df.groupby("device", sort=False)["t"].cummax()
    seen = seen.groupby(df["device"], sort=False).shift(1)
    df = df[seen.isna() | (df["t"] > seen)]
    g = df.groupby("device", sort=False)
    for c in ("entries", "exits"):
        d = g[c].diff().abs()
        df[c + "_d"] = d.where(d <= MAX_DELTA, 0).fillna(0).astype("int64")
    df["window_start"] = df["t"] - df["t"] % WINDOW_S
    out = df.groupby(["station", "window_start"], sort=False).agg(
        entries=("entries_d", "sum"), exits=("exits_d", "sum"), events=("t", "size"))
    wall = time.perf_counter() - start
    print(f"pandas wall={wall:.3f} rows={len(out)} entries={out['entries'].sum()}"
          f" exits={out['exits'].sum()} events={out['events'].sum()} input={n_input}"
          f" version={pd.__version__}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1:])
