"""SPEC §5 `postgres`, §6 and §8 against a real PostgreSQL 15 server that each test starts itself
(pg.PgServer):

- A real week through Kafka into the table equals the oracle row for row; a replay with a new
  group repairs rows changed or deleted since, adds no duplicate and rewrites no unchanged row.
- PostgreSQL stopped for 10 s under a paced real week: the sink reports itself down (/readyz,
  turnstiled_sink_up, a warning naming it), recovers on its own, and the table ends exact.
- A server restart while the sink's connection is idle costs no failed flush.
- A table the rows cannot go into (a wrong column type, no unique key, a missing column) stops
  the job within seconds with an error naming the sink and the problem, and commits no offset.
- A wrong password is a permanent error, and the password is never printed, in either DSN form.
- Station names with quotes, backslashes, tabs and non-ASCII letters arrive byte for byte in a
  table the sink creates, named `Analytics.Order` (folded to analytics."order", a reserved word,
  so it must be quoted).
"""
import json
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import oracle
from conftest import (FAST_GROUP, SLOW, background, consume_all, free_port, require_mta_weeks,
                      run, stop, turnstiled_bin, wait_for, week_path)
from pg import PgServer

TOPIC = "turnstile-stream"
WINDOW_MS = 4 * 3600 * 1000
PARTITIONS = 6
# A real week (7 days of event time) replayed in about 25 s (50 s in the sanitizer builds): every
# partition gets records far more often than idle_timeout, so none turns idle while the stream
# flows, and the stream outlasts the daemon's start and a 10 s outage. A sanitized daemon keeps
# up with this pace easily; only its start and its reactions are slower, and those have their
# own deadlines, so the stream is not slowed by the whole factor.
SPEEDUP = 7 * 86400 / (25 * min(SLOW, 2))


@pytest.fixture
def pg():
    server = PgServer()
    yield server
    server.close()


def write_config(tmp_path, name, source, dsn, table="station_window", metrics_port=None):
    cfg = {
        "source": source,
        "format": {"type": "mta-csv", "timezone": "America/New_York"},
        "window": {"type": "tumbling", "size": "4h", "idle_timeout": "2s"},
        "sinks": [{"name": "warehouse", "type": "postgres", "dsn": dsn, "table": table,
                   "flush_interval": "100ms"}],
        "metrics": ({"listen": f"127.0.0.1:{metrics_port}"} if metrics_port
                    else {"enabled": False}),
        "state": {"dir": str(tmp_path / name / "state")},
        "pipeline": {"shutdown_timeout": "10s"},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(cfg, indent=1))
    return path


def kafka(broker, group):
    return {"type": "kafka", "kafka": {"bootstrap_servers": broker.address, "topics": [TOPIC],
                                       "group_id": group, "consumer_threads": 2,
                                       "properties": FAST_GROUP}}


def week_lines(week):
    return [x for x in oracle.read_text(week).splitlines()
            if oracle.parse_mta(x, oracle.LocalClock("UTC")) is not None]


def oracle_rows(values):
    """The oracle's rows for mta-csv messages in the order the daemon reads them."""
    o = oracle.Oracle(WINDOW_MS)
    clock = oracle.LocalClock("America/New_York")
    for v in values:
        rec = oracle.parse_mta(v, clock)
        if rec is not None:
            o.add(*rec)
    return o.rows()


def topic_rows(broker, count):
    """Every message on the topic, in (partition, offset) order, through the oracle."""
    return oracle_rows(m[3].decode() for m in sorted(consume_all(broker.address, TOPIC, count)))


def produce_lines(broker, lines):
    p = Producer({"bootstrap.servers": broker.address, "linger.ms": 5})
    for line in lines:
        p.produce(TOPIC, key=line.split(",")[3].encode(), value=line.encode())
    assert p.flush(30) == 0


def committed(broker, group):
    c = Consumer({"bootstrap.servers": broker.address, "group.id": group})
    try:
        tps = c.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=30)
        return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}
    finally:
        c.close()


def scrape(port, path="/metrics"):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def metric(body, name, **labels):
    for line in body.splitlines():
        m = re.match(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            return float(m.group(2))
    return None


def sink_up(port):
    return metric(scrape(port)[1], "turnstiled_sink_up", sink="warehouse")


def paused(port):
    return metric(scrape(port)[1], "turnstiled_paused_partitions")


def wait_for_table(pg, expected, timeout, what, proc):
    """Waits until the table equals `expected`; on a timeout, fails with how they differ."""
    try:
        wait_for(lambda: pg.rows() == expected, timeout, what, proc, interval=0.5)
    except pytest.fail.Exception as e:
        pytest.fail(f"{e}\n{oracle.diff(expected, pg.rows())}", pytrace=False)


def test_a_real_week_is_upserted_exactly_and_a_replay_repairs_without_duplicates(
        tmp_path, broker, pg):
    week = week_path(require_mta_weeks()[0])
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", week])
    assert "failures=0" in produced.stderr
    expected = topic_rows(broker, len(week_lines(week)))

    run(["run", "-c", write_config(tmp_path, "first", kafka(broker, "pg-first"), pg.dsn),
         "--available-now"])
    problems = oracle.diff(expected, pg.rows())
    assert not problems, problems
    assert pg.count() == len(expected)
    assert pg.psql("SELECT count(*) FROM station_window WHERE final IS NOT TRUE OR "
                   "first_event IS NULL OR last_event < first_event OR "
                   "first_event < window_start OR last_event >= window_end") == [["0"]]

    # Damage the table as a replay must repair it: changed counts and deleted rows.
    stations = sorted({k[0] for k in expected})[:5]
    listed = ", ".join("'" + s.replace("'", "''") + "'" for s in stations)
    pg.psql(f"UPDATE station_window SET entries = entries + 7, events = 0 "
            f"WHERE station IN ({listed})")
    pg.psql("DELETE FROM station_window WHERE ctid IN "
            "(SELECT ctid FROM station_window ORDER BY station DESC LIMIT 25)")
    untouched = (f"SELECT station, window_start, updated_at FROM station_window "
                 f"WHERE station NOT IN ({listed})")
    before = {tuple(r) for r in pg.psql(untouched)}

    run(["run", "-c", write_config(tmp_path, "again", kafka(broker, "pg-again"), pg.dsn),
         "--available-now"])
    problems = oracle.diff(expected, pg.rows())
    assert not problems, problems
    assert pg.count() == len(expected)
    # Rows already right are left alone: a replay rewrites nothing it does not change.
    after = {tuple(r) for r in pg.psql(untouched)}
    assert len(before) > 1000 and before <= after, sorted(before - after)[:5]


def test_postgres_down_for_ten_seconds_mid_stream_loses_nothing(tmp_path, broker, pg):
    week = week_path(require_mta_weeks()[0])
    port = free_port()
    cfg = write_config(tmp_path, "stream", kafka(broker, "pg-stream"), pg.dsn, metrics_port=port)
    log = tmp_path / "run.log"
    with background(["run", "-c", cfg], log) as proc, \
            background(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", week,
                        "--speedup", SPEEDUP], tmp_path / "produce.log") as producer:
        wait_for(lambda: pg.exists() and pg.count() > 0, 60, "the first rows in the table",
                 proc, interval=0.2)
        assert sink_up(port) == 1
        assert producer.poll() is None, "the stream ended before the outage; slow it down"

        pg.stop("fast")
        down = time.monotonic()

        def names_the_sink():
            status, body = scrape(port, "/readyz")
            return status == 503 and "warehouse" in body

        wait_for(names_the_sink, 30, "/readyz to report 503 naming the sink", proc)
        status, body = scrape(port, "/readyz")
        assert pg.password not in body
        wait_for(lambda: sink_up(port) == 0, 30, 'turnstiled_sink_up{sink="warehouse"} 0', proc)
        # Fetching pauses while the sink is down, rather than reading what cannot be written.
        wait_for(lambda: (paused(port) or 0) > 0, 30,
                 "fetching paused", proc, interval=0.2)
        time.sleep(max(0.0, 10 - (time.monotonic() - down)))  # the outage lasts 10 s
        assert proc.poll() is None, "the daemon exited while PostgreSQL was down"
        assert producer.poll() is None, "the stream ended during the outage; slow it down"
        pg.start()

        wait_for(lambda: sink_up(port) == 1, 60, 'turnstiled_sink_up{sink="warehouse"} 1', proc)
        wait_for(lambda: paused(port) == 0, 60,
                 "fetching resumed", proc, interval=0.2)
        assert producer.wait(timeout=120 * SLOW) == 0
        assert "failures=0" in (tmp_path / "produce.log").read_text()
        expected = topic_rows(broker, len(week_lines(week)))
        # The last windows close once every partition has been idle for 2 s.
        wait_for_table(pg, expected, 60, "the whole week in the table", proc)
        assert stop(proc) == 0
    problems = oracle.diff(expected, pg.rows())
    assert not problems, problems
    assert pg.count() == len(expected)
    text = log.read_text()
    warnings = [x for x in text.splitlines() if "level=warn" in x and "sink=warehouse" in x]
    assert warnings, text[-3000:]
    assert "fetching paused" in text and "reason=\"a sink is down\"" in text, text[-3000:]
    assert "fetching resumed" in text
    assert pg.password not in text


def test_a_server_restart_between_flushes_costs_no_failed_flush(tmp_path, broker, pg):
    def readings(hours):
        return [f"A002,R051,02-00-0{d},59 ST,NQR456W,BMT,01/06/2024,{h:02d}:00:00,REGULAR,"
                f"{1000 + 10 * h + d},{500 + h}" for h in hours for d in range(3)]

    cfg = write_config(tmp_path, "restart", kafka(broker, "pg-restart"), pg.dsn)
    log = tmp_path / "run.log"
    with background(["run", "-c", cfg], log) as proc:
        before = readings(range(0, 12, 4))
        produce_lines(broker, before)
        # Every partition idle for 2 s: every window up to the last reading closes, and then
        # nothing more is emitted until new readings arrive.
        wait_for(pg.exists, 60, "the sink to create its table", proc, interval=0.2)
        wait_for_table(pg, oracle_rows(before), 60, "the first readings in the table", proc)
        pg.stop("fast")  # the sink's connection is idle: no flush is under way
        pg.start()
        after = readings(range(12, 24, 4))
        produce_lines(broker, after)
        wait_for_table(pg, oracle_rows(before + after), 60, "every reading in the table", proc)
        assert stop(proc) == 0
    text = log.read_text()
    assert "sink operation failed" not in text, text[-3000:]
    assert text.count("postgres connected") == 2, text[-3000:]


WRONG_TABLES = {
    "a wrong column type": (
        "CREATE TABLE station_window (station text, window_start timestamptz, "
        "window_end timestamptz, entries text, exits bigint, events bigint, "
        "PRIMARY KEY (station, window_start, window_end))",
        "table public.station_window: column entries has type text, expected bigint"),
    "no unique key": (
        "CREATE TABLE station_window (station text, window_start timestamptz, "
        "window_end timestamptz, entries bigint, exits bigint, events bigint)",
        "table public.station_window: no primary key or unique constraint on (station, "
        "window_start, window_end)"),
    "a missing column": (
        "CREATE TABLE station_window (station varchar(80), window_start timestamptz, "
        "window_end timestamptz, entries bigint, exits bigint, "
        "UNIQUE (window_end, station, window_start))",
        "table public.station_window: column events is missing (expected bigint)"),
}


@pytest.mark.parametrize("case", list(WRONG_TABLES))
def test_a_table_of_the_wrong_shape_stops_the_job_and_commits_nothing(tmp_path, broker, pg,
                                                                     case):
    create, message = WRONG_TABLES[case]
    pg.psql(create, user=pg.user)
    produce_lines(broker, [
        f"A002,R051,02-00-0{d},59 ST,NQR456W,BMT,01/06/2024,{h:02d}:00:00,REGULAR,{1000 + h},{h}"
        for d in range(3) for h in range(0, 24, 4)])
    cfg = write_config(tmp_path, "wrong", kafka(broker, "pg-wrong"), pg.dsn)
    started = time.monotonic()
    try:
        result = subprocess.run([turnstiled_bin(), "run", "-c", str(cfg), "--available-now"],
                                capture_output=True, text=True, timeout=30 * SLOW, check=False)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"run still going after {30 * SLOW:.0f}s: a permanent sink error must stop "
                    f"the job\n{(e.stderr or b'')[-3000:]!r}")
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr[-3000:]
    assert elapsed < 5 * SLOW, f"took {elapsed:.1f}s to stop"
    errors = [x for x in result.stderr.splitlines()
              if "level=error" in x and "warehouse" in x and message in x]
    assert errors, result.stderr[-3000:]
    assert committed(broker, "pg-wrong") == {}
    assert pg.psql("SELECT count(*) FROM station_window") == [["0"]]


@pytest.mark.parametrize("form", ["key-value", "uri"])
def test_a_wrong_password_stops_the_job_and_is_never_printed(tmp_path, pg, form):
    wrong = "Wr0ng-" + pg.password[::-1]
    dsn = (f"host=127.0.0.1 port={pg.port} dbname={pg.dbname} user={pg.user} password={wrong}"
           if form == "key-value"
           else f"postgresql://{pg.user}:{wrong}@127.0.0.1:{pg.port}/{pg.dbname}")
    data = tmp_path / "week.txt"
    data.write_text("A002,R051,02-00-00,59 ST,NQR456W,BMT,01/06/2024,00:00:00,REGULAR,10,5\n")
    cfg = write_config(tmp_path, "auth", {"type": "file", "file": {"paths": [str(data)]}}, dsn)
    log = tmp_path / "run.log"
    with background(["run", "-c", cfg], log) as proc:
        try:
            proc.wait(timeout=15 * SLOW)
        except subprocess.TimeoutExpired:
            pass
        text = log.read_text()
        assert wrong not in text
        assert "password authentication failed" in text, text[-3000:]
        assert proc.poll() is not None, "still running: an authentication failure is permanent"
        assert proc.returncode == 1, text[-3000:]


def test_station_names_arrive_byte_for_byte_in_a_schema_qualified_reserved_word_table(tmp_path,
                                                                                     pg):
    pg.psql("CREATE SCHEMA analytics AUTHORIZATION turnstiled")
    names = ["O'NEIL \"Q\" ST", "BACK\\SLASH \\N", "TAB\tSTATION", "ÉTOILE-Ü 中", "PIPE|ST"]
    lines = []
    for i, name in enumerate(names):
        for h in range(0, 12, 4):
            lines.append(f"A00{i},R051,02-00-00,{name},1,IRT,01/06/2024,{h:02d}:00:00,REGULAR,"
                         f"{100 + 3 * h + i},{2 * h}")
    data = tmp_path / "names.txt"
    data.write_text("\n".join(lines) + "\n")
    cfg = write_config(tmp_path, "names", {"type": "file", "file": {"paths": [str(data)]}},
                       pg.dsn, table="Analytics.Order")
    run(["run", "-c", cfg])
    got = {}
    for hexname, start, entries, exits, events in pg.psql(
            "SELECT encode(convert_to(station, 'UTF8'), 'hex'), "
            "(extract(epoch FROM window_start) * 1000)::bigint, entries, exits, events "
            'FROM analytics."order"'):
        got[(bytes.fromhex(hexname).decode(), oracle.iso(int(start)))] = (
            int(entries), int(exits), int(events))
    expected = {(k[0], k[1]): v for k, v in oracle_rows(lines).items()}
    assert got == expected
    # The sink created the table with its key and every column.
    assert pg.psql("SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute "
                   "WHERE attrelid = 'analytics.\"order\"'::regclass AND attnum > 0") == [
        ["station,window_start,window_end,entries,exits,events,final,first_event,last_event,"
         "updated_at"]]
    assert pg.psql("SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid = "
                   "'analytics.\"order\"'::regclass") == [["1"]]
