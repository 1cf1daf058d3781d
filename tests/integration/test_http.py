"""SPEC §7, §8: the operational endpoints hold up under slow and idle clients, answer GET and
HEAD only, and scraping them never changes the numbers."""
import http.client
import json
import socket
import threading
import time

import oracle
from conftest import (FAST_GROUP, SLOW, background, consume_all, free_port, require_mta_weeks,
                      run, stop, wait_for, week_path)

TOPIC = "turnstile-stream"


def config(tmp_path, broker, port):
    cfg = {
        "source": {"type": "kafka", "kafka": {"bootstrap_servers": broker.address,
                                              "topics": [TOPIC], "group_id": "http-test",
                                              "consumer_threads": 1, "properties": FAST_GROUP}},
        "format": {"type": "mta-csv", "timezone": "America/New_York"},
        "window": {"type": "tumbling", "size": "4h", "idle_timeout": "2s"},
        "sinks": [{"name": "lake", "type": "file", "path": str(tmp_path / "lake"),
                   "format": "csv", "compression": "none", "flush_interval": "100ms"}],
        "metrics": {"listen": f"127.0.0.1:{port}"},
        "state": {"dir": str(tmp_path / "state")},
    }
    path = tmp_path / "http.yaml"
    path.write_text(json.dumps(cfg))
    return path


def get(port, path, method="GET", timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


def test_only_get_and_head_are_answered(tmp_path, broker):
    port = free_port()
    with background(["run", "-c", config(tmp_path, broker, port)], tmp_path / "run.log") as proc:
        wait_for(lambda: _up(port), 60, "the metrics endpoint", proc)
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            status, _, headers = get(port, "/healthz", method)
            assert status == 405, method
            assert headers.get("Allow") == "GET, HEAD"
        status, body, headers = get(port, "/metrics", "HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
        assert get(port, "/healthz")[0] == 200
        assert stop(proc) == 0


def _up(port):
    try:
        return get(port, "/healthz", timeout=1)[0] == 200
    except OSError:
        return False


def test_two_hundred_slow_clients_do_not_starve_the_health_probe(tmp_path, broker):
    port = free_port()
    with background(["run", "-c", config(tmp_path, broker, port)], tmp_path / "run.log") as proc:
        wait_for(lambda: _up(port), 60, "the metrics endpoint", proc)
        stop_dribbling = threading.Event()
        socks = []
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)

        def dribble():  # a header byte every 2 s, never the end of the request
            while not stop_dribbling.wait(2):
                for s in socks:
                    try:
                        s.sendall(b"X")
                    except OSError:
                        pass

        t = threading.Thread(target=dribble, daemon=True)
        t.start()
        try:
            for _ in range(10):
                started = time.monotonic()
                status, body, _ = get(port, "/healthz", timeout=1 * SLOW)
                assert status == 200 and body == b"ok\n"
                assert time.monotonic() - started < 1 * SLOW
        finally:
            stop_dribbling.set()
            t.join()
            for s in socks:
                s.close()
        assert stop(proc) == 0


def test_two_thousand_scrapes_leave_the_numbers_exact(tmp_path, broker):
    week = week_path(require_mta_weeks()[0])
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", week])
    assert "failures=0" in produced.stderr
    port = free_port()
    errors = []

    def scrape(n):
        for _ in range(n):
            try:
                assert get(port, "/metrics", timeout=30)[0] == 200
            except Exception as e:  # noqa: BLE001 - collected and reported below
                errors.append(repr(e))

    with background(["run", "-c", config(tmp_path, broker, port)], tmp_path / "run.log") as proc:
        wait_for(lambda: _up(port), 60, "the metrics endpoint", proc)
        threads = [threading.Thread(target=scrape, args=(40,)) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:5]
        assert stop(proc) == 0
    run(["run", "-c", config(tmp_path, broker, free_port()), "--available-now"])
    clock = oracle.LocalClock("America/New_York")
    o = oracle.Oracle(4 * 3600 * 1000)
    rows = sum(1 for line in oracle.read_text(week).splitlines()
               if oracle.parse_mta(line, oracle.LocalClock("UTC")) is not None)
    for _, _, _, value, _ in sorted(consume_all(broker.address, TOPIC, rows)):
        o.add(*oracle.parse_mta(value.decode(), clock))
    problems = oracle.diff(o.rows(), oracle.read_lake(tmp_path / "lake"))
    assert not problems, problems
