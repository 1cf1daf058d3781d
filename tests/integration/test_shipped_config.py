"""config/turnstiled.yaml runs as shipped: against a real PostgreSQL and the embedded broker,
with only the environment variables it documents, a real week lands in the lake and in the
warehouse table, both equal to the oracle."""
import os
import shutil

import oracle
from conftest import SOURCE_DIR, consume_all, free_port, require_mta_weeks, run, week_path
from pg import PgServer

TOPIC = "turnstile-stream"


def test_the_production_config_runs_as_shipped(tmp_path, broker_factory):
    broker = broker_factory(partitions=6, topics=(TOPIC, "turnstiled-state"))
    week = week_path(require_mta_weeks()[0])
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", week])
    assert "failures=0" in produced.stderr
    pg = PgServer()
    try:
        work = tmp_path / "work"
        work.mkdir()
        shutil.copy(SOURCE_DIR / "config" / "turnstiled.yaml", work / "turnstiled.yaml")
        env = {**os.environ,
               "PG_DSN": pg.dsn,
               "KAFKA_BOOTSTRAP": broker.address,
               "TURNSTILED_STATE_DIR": str(tmp_path / "state"),
               "TURNSTILED_METRICS_LISTEN": f"127.0.0.1:{free_port()}"}
        checked = run(["validate", "-c", "turnstiled.yaml"], cwd=work, env=env)
        assert "2 sinks (file, postgres)" in checked.stdout
        result = run(["run", "-c", "turnstiled.yaml", "--available-now"], cwd=work, env=env)
        assert pg.password not in result.stderr

        lines = [x for x in oracle.read_text(week).splitlines()
                 if oracle.parse_mta(x, oracle.LocalClock("UTC")) is not None]
        clock = oracle.LocalClock("America/New_York")
        o = oracle.Oracle(4 * 3600 * 1000)
        for _, _, _, value, _ in sorted(consume_all(broker.address, TOPIC, len(lines))):
            o.add(*oracle.parse_mta(value.decode(), clock))
        expected = o.rows()
        problems = oracle.diff(expected, oracle.read_lake(work / "out" / "lake"))
        assert not problems, problems
        problems = oracle.diff(expected, pg.rows("station_window"))
        assert not problems, problems
    finally:
        pg.close()
