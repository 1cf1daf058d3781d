"""SPEC §7, docs/MONITORING.md: the monitoring kit in deploy/ works against the real daemon.

- The alert rules pass `promtool check rules` and their unit tests (`promtool test rules`), and
  the unit tests give every alert a case where it fires and one where it must not.
- The shipped scrape config passes `promtool check config` and scrapes turnstiled on
  127.0.0.1:9464 every 15s as job "turnstiled", loading alerts.yml.
- The Grafana dashboard and provisioning files have the shape Grafana needs (uid, schema, a
  `datasource` variable every panel uses, time series panels) and name only metrics that
  docs/METRICS.md documents.
- Live: a real Prometheus (/usr/bin/prometheus) started here scrapes a daemon that streams a
  real MTA week from the embedded broker into a file sink, every second, with alerts.yml loaded.
  Every rule loads and evaluates without error; every alert expression runs through the HTTP API
  and names only metrics Prometheus has scraped from the daemon; on the healthy daemon the
  TurnstiledDown, TurnstiledSinkDown, TurnstiledNoCheckpoint, TurnstiledConsumerLagGrowing
  and TurnstiledLakeJournalGrowing expressions come back empty, while a second target with
  nothing listening makes TurnstiledDown's expression return it and the alert go pending with
  its rendered annotations.
  Every dashboard query (variables substituted, $__rate_interval as 1m) runs without error and
  returns at least one series, the process_* panels included.

Every process started here is stopped by its PID; every wait is on a condition.
"""
import contextlib
import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import (FAST_GROUP, SOURCE_DIR, Broker, free_port, require_mta_weeks, run,
                      stop, turnstiled_bin, wait_for, week_path)

DEPLOY = SOURCE_DIR / "deploy"
PROM_DIR = DEPLOY / "prometheus"
ALERTS = PROM_DIR / "alerts.yml"
ALERTS_TEST = PROM_DIR / "alerts_test.yml"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "turnstiled.json"
PROV_DASHBOARDS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "turnstiled.yaml"
PROV_DATASOURCE = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
METRICS_DOC = SOURCE_DIR / "docs" / "METRICS.md"
PROMETHEUS = "/usr/bin/prometheus"
TOPIC = "turnstile-stream"

ALERT_NAMES = re.findall(r"^\s*-\s*alert:\s*(\S+)\s*$", ALERTS.read_text(), re.M)
DASH = json.loads(DASHBOARD.read_text())
PANELS = [p for p in DASH["panels"] if p.get("type") != "row"]
METRIC_RE = re.compile(r"\b((?:turnstiled|process)_[a-z0-9_]+)\b")


def promtool(*args, cwd=None):
    if not shutil.which("promtool"):
        pytest.fail("promtool not found (Debian package prometheus; scripts/install-deps.sh)")
    return subprocess.run(["promtool", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def base_name(metric):
    return re.sub(r"_(bucket|count|sum)$", "", metric)


def documented_metrics():
    return set(re.findall(r"`((?:turnstiled|process)_[a-z0-9_]+)`", METRICS_DOC.read_text()))


def dashboard_exprs():
    return [t["expr"] for p in PANELS for t in p.get("targets", [])]


# ---------------------------------------------------------------------------------------------
# Static checks: promtool and the files' shape.

def test_alert_rules_pass_promtool_check_rules():
    r = promtool("check", "rules", ALERTS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(ALERT_NAMES)} rules found" in r.stdout, r.stdout
    assert sorted(ALERT_NAMES) == sorted([
        "TurnstiledDown", "TurnstiledConsumerLagGrowing", "TurnstiledNoCheckpoint",
        "TurnstiledSinkDown", "TurnstiledLakeJournalGrowing", "TurnstiledDeadLettersHigh",
        "TurnstiledLateRecordsHigh", "TurnstiledWatermarkStalled"])


def test_alert_unit_tests_pass_and_cover_each_alert_firing_and_not_firing():
    r = promtool("test", "rules", ALERTS_TEST)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout, r.stdout
    # Each `alertname:` is followed by its `exp_alerts:`, either `[]` (must not fire) or a list.
    cases = re.findall(r"alertname:\s*(\S+)\s*\n\s*exp_alerts:\s*(\[\])?", ALERTS_TEST.read_text())
    firing = {name for name, empty in cases if not empty}
    quiet = {name for name, empty in cases if empty}
    assert firing == set(ALERT_NAMES), f"no firing case: {set(ALERT_NAMES) - firing}"
    assert quiet == set(ALERT_NAMES), f"no not-firing case: {set(ALERT_NAMES) - quiet}"


def test_the_scrape_config_passes_promtool_check_config(tmp_path):
    # A copy with alerts.yml beside it: rule_files is relative to the config's folder.
    shutil.copy(PROM_CONFIG, tmp_path / "prometheus.yml")
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    r = promtool("check", "config", tmp_path / "prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 1 rule files found" in r.stdout, r.stdout
    text = PROM_CONFIG.read_text()
    assert re.search(r"^rule_files:\s*\n\s*-\s*alerts\.yml\s*$", text, re.M), text
    job = text[text.index("job_name: turnstiled"):]
    assert re.search(r"scrape_interval:\s*15s", job), job
    assert re.search(r"targets:\s*\[\s*\"127\.0\.0\.1:9464\"\s*\]", job), job


def test_dashboard_and_provisioning_have_the_shape_grafana_needs():
    assert DASH["uid"] == "turnstiled" and DASH["title"] == "turnstiled"
    assert 36 <= DASH["schemaVersion"] <= 39, DASH["schemaVersion"]
    variables = {v["name"]: v for v in DASH["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ds = {"type": "prometheus", "uid": "${datasource}"}
    ids = [p["id"] for p in DASH["panels"]]
    assert len(ids) == len(set(ids)), ids
    for p in PANELS:
        assert p["type"] == "timeseries", p["title"]
        assert p["datasource"] == ds, p["title"]
        assert p["targets"], p["title"]
        assert all(t["datasource"] == ds and t["expr"].strip() for t in p["targets"]), p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"] == ds, v["name"]

    used = {base_name(m) for e in dashboard_exprs() for m in METRIC_RE.findall(e)}
    for needed in ["turnstiled_consumed_records_total", "turnstiled_consumer_lag_records",
                   "turnstiled_shard_watermark_timestamp_seconds",
                   "turnstiled_dropped_records_total", "turnstiled_emit_delay_seconds",
                   "turnstiled_sink_flush_duration_seconds",
                   "turnstiled_sink_rows_failed_total", "turnstiled_sink_retries_total",
                   "turnstiled_sink_up", "turnstiled_last_checkpoint_timestamp_seconds",
                   "process_resident_memory_bytes", "process_cpu_seconds_total"]:
        assert needed in used, f"no panel shows {needed}"
    # Names drift: every metric the kit uses is one docs/METRICS.md documents.
    alert_metrics = {base_name(m) for m in METRIC_RE.findall(ALERTS.read_text())}
    undocumented = (used | alert_metrics) - documented_metrics()
    assert not undocumented, f"not in docs/METRICS.md: {sorted(undocumented)}"

    prov = PROV_DASHBOARDS.read_text()
    assert re.search(r"^apiVersion:\s*1\s*$", prov, re.M)
    assert re.search(r"type:\s*file", prov) and re.search(r"path:\s*/\S+", prov), prov
    src = PROV_DATASOURCE.read_text()
    assert re.search(r"^apiVersion:\s*1\s*$", src, re.M)
    assert re.search(r"type:\s*prometheus", src), src
    assert re.search(r"url:\s*http://prometheus:9090\s*$", src, re.M), src


# ---------------------------------------------------------------------------------------------
# Live: a real Prometheus scraping a real daemon.

class Live:
    def __init__(self, prom_port, daemon_port, dead_port, produced):
        self.url = f"http://127.0.0.1:{prom_port}"
        self.daemon_port = daemon_port
        self.instance = f"127.0.0.1:{daemon_port}"
        self.dead_instance = f"127.0.0.1:{dead_port}"
        self.produced = produced

    def api(self, path, **params):
        url = f"{self.url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            body = urllib.request.urlopen(url, timeout=10).read()
        except urllib.error.HTTPError as e:  # 400/422 carry the error as JSON
            body = e.read()
        data = json.loads(body)
        assert data["status"] == "success", (
            f"{path} {params}: {data.get('errorType')}: {data.get('error')}")
        return data["data"]

    def query(self, expr):
        """Instant query; fails the test on any error. Returns the result list."""
        data = self.api("/api/v1/query", query=expr)
        assert data["resultType"] in ("vector", "scalar"), (expr, data["resultType"])
        return data["result"] if data["resultType"] == "vector" else [data["result"]]

    def value(self, expr):
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


def http_ok(url):
    try:
        return urllib.request.urlopen(url, timeout=5).status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    if not shutil.which(PROMETHEUS):
        pytest.fail(f"{PROMETHEUS} not found (Debian package prometheus; scripts/install-deps.sh)")
    week = week_path(require_mta_weeks()[0])
    tmp = tmp_path_factory.mktemp("monitoring")
    codes = {}
    with contextlib.ExitStack() as stack:
        broker = Broker(tmp, partitions=6, topics=(TOPIC,))
        stack.callback(lambda: codes.__setitem__("broker", broker.stop()))
        produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--replay", week])
        produced = int(re.search(r"\brecords=(\d+)", produced.stderr).group(1))

        daemon_port, dead_port, prom_port = free_port(), free_port(), free_port()
        # Prometheus first, so its scrapes see the counters rise from the start.
        prom_config = tmp / "prometheus.yml"
        prom_config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [{
                "job_name": "turnstiled",
                "static_configs": [{"targets": [f"127.0.0.1:{daemon_port}",
                                                f"127.0.0.1:{dead_port}"]}]}],
        }, indent=2))
        check = promtool("check", "config", prom_config)
        assert check.returncode == 0, check.stdout + check.stderr
        prom_log = open(tmp / "prometheus.log", "w")
        stack.callback(prom_log.close)
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={prom_config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=prom_log, stderr=subprocess.STDOUT)
        stack.callback(lambda: codes.__setitem__("prometheus", stop(prom)))
        wait_for(lambda: http_ok(f"http://127.0.0.1:{prom_port}/-/ready"), 30,
                 "Prometheus to be ready", prom)

        cfg = tmp / "run.yaml"
        cfg.write_text(json.dumps({
            "source": {"type": "kafka", "kafka": {
                "bootstrap_servers": broker.address, "topics": [TOPIC], "group_id": "monitoring",
                "consumer_threads": 1, "properties": FAST_GROUP}},
            "format": {"type": "mta-csv", "timezone": "America/New_York"},
            "window": {"type": "tumbling", "size": "4h", "idle_timeout": "2s"},
            "sinks": [{"name": "lake", "type": "file", "path": str(tmp / "lake"),
                       "format": "csv", "compression": "none", "flush_interval": "100ms"}],
            "dead_letter": {"path": str(tmp / "dead-letter")},
            "metrics": {"listen": f"127.0.0.1:{daemon_port}"},
            "state": {"dir": str(tmp / "state"), "checkpoint_interval": "1s"},
        }))
        run_log = open(tmp / "run.log", "w")
        stack.callback(run_log.close)
        daemon = subprocess.Popen([turnstiled_bin(), "run", "-c", str(cfg)], stdout=run_log,
                                  stderr=subprocess.STDOUT)
        stack.callback(lambda: codes.__setitem__("daemon", stop(daemon)))

        env = Live(prom_port, daemon_port, dead_port, produced)
        wait_for(lambda: http_ok(f"http://127.0.0.1:{daemon_port}/readyz"), 60,
                 "the daemon's /readyz", daemon)
        # Prometheus has scraped the daemon several times and has seen every record consumed.
        sel = f'job="turnstiled", instance="{env.instance}"'
        wait_for(lambda: env.value(f"count_over_time(up{{{sel}}}[1m])") and
                 env.value(f"count_over_time(up{{{sel}}}[1m])") >= 5 and
                 env.value(f"up{{{sel}}}") == 1 and
                 env.value(f"turnstiled_consumed_records_total{{{sel}}}") == produced,
                 60, "Prometheus to scrape the daemon several times, all records consumed",
                 daemon, interval=0.5)
        assert prom.poll() is None, f"Prometheus exited; see {tmp / 'prometheus.log'}"
        yield env
    assert codes == {"daemon": 0, "prometheus": 0, "broker": 0}, codes


def test_prometheus_scrapes_the_daemon_and_sees_the_dead_target_down(live):
    assert live.value(f'up{{job="turnstiled", instance="{live.instance}"}}') == 1
    assert live.value(f'up{{job="turnstiled", instance="{live.dead_instance}"}}') == 0
    assert live.value(f'turnstiled_consumed_records_total{{instance="{live.instance}"}}') == \
        live.produced
    assert live.value(f'sum(turnstiled_sink_rows_written_total{{instance="{live.instance}"}})') > 0


def test_every_alert_rule_loads_and_evaluates_without_error(live):
    def evaluated():
        groups = [g for g in live.api("/api/v1/rules")["groups"] if g["name"] == "turnstiled"]
        assert len(groups) == 1, groups
        rules = groups[0]["rules"]
        assert sorted(r["name"] for r in rules) == sorted(ALERT_NAMES)
        bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] == "err"]
        assert not bad, bad
        return all(r["health"] == "ok" for r in rules) and rules
    rules = wait_for(evaluated, 30, "every rule to be evaluated", interval=0.5)
    for r in rules:
        assert r["type"] == "alerting", r["name"]
        assert r["duration"] > 0, f"{r['name']} has no `for:`"
        assert r["labels"].get("severity") in ("critical", "warning"), r["name"]
        assert {"summary", "description"} <= set(r["annotations"]), r["name"]
        assert "$labels" in r["annotations"]["summary"] + r["annotations"]["description"], \
            r["name"]


def test_every_alert_expression_runs_and_names_only_metrics_the_daemon_exposes(live):
    rules = [r for g in live.api("/api/v1/rules")["groups"] for r in g["rules"]]
    assert sorted(r["name"] for r in rules) == sorted(ALERT_NAMES)
    for r in rules:
        live.query(r["query"])  # fails on any error
        # An alert on a misspelled metric is silently empty forever: each name must have been
        # scraped from the daemon.
        for metric in set(METRIC_RE.findall(r["query"])):
            assert live.query(f'group({{__name__="{metric}", instance="{live.instance}"}})'), \
                f"{r['name']}: {metric} was never scraped from the daemon"


def test_a_healthy_daemon_trips_no_alert_expression_but_a_dead_target_trips_down(live):
    rules = {r["name"]: r["query"] for g in live.api("/api/v1/rules")["groups"]
             for r in g["rules"]}

    def mine(expr):
        return [s for s in live.query(expr) if s["metric"].get("instance") == live.instance]

    # Checkpoints every second; the sink is up; every record is consumed, so the lag is 0.
    for name in ["TurnstiledDown", "TurnstiledSinkDown", "TurnstiledNoCheckpoint",
                 "TurnstiledConsumerLagGrowing", "TurnstiledLakeJournalGrowing"]:
        wait_for(lambda: not mine(rules[name]), 30, f"{name}'s expression to be empty for the "
                 "healthy daemon", interval=0.5)
    assert live.value(f'turnstiled_assigned_partitions{{instance="{live.instance}"}}') == 6

    down = live.query(rules["TurnstiledDown"])
    assert [s["metric"]["instance"] for s in down] == [live.dead_instance], down

    def pending_down():
        return [a for a in live.api("/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] == "TurnstiledDown"]
    alerts = wait_for(pending_down, 30, "TurnstiledDown to be pending for the dead target",
                      interval=0.5)
    assert len(alerts) == 1, alerts
    a = alerts[0]
    assert a["state"] in ("pending", "firing"), a
    assert a["labels"]["instance"] == live.dead_instance and a["labels"]["severity"] == "critical"
    assert a["annotations"]["summary"] == f"turnstiled {live.dead_instance} is down", a


def substitute(expr, live):
    out = (expr.replace("$__rate_interval", "1m")
           .replace("${job}", "turnstiled").replace("$job", "turnstiled")
           .replace("${instance}", live.instance).replace("$instance", live.instance))
    assert "$" not in out, f"unsubstituted variable in {out}"
    return out


def test_the_dashboard_variables_resolve_to_the_daemon(live):
    queries = {v["name"]: v["definition"] for v in DASH["templating"]["list"]
               if v["type"] == "query"}
    assert set(queries) == {"job", "instance"}, queries
    for name, definition in queries.items():
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", definition)
        assert m, definition
        values = {s["metric"].get(m.group(2)) for s in
                  live.query(f"group by ({m.group(2)}) ({substitute(m.group(1), live)})")}
        assert {"job": "turnstiled", "instance": live.instance}[name] in values, (name, values)


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
def test_every_dashboard_query_runs_and_returns_data(live, panel):
    for target in panel["targets"]:
        expr = substitute(target["expr"], live)
        live.query(expr)  # no error, whatever the data
        wait_for(lambda: live.query(expr), 30,
                 f"panel {panel['title']!r} target {target['refId']} to return data: {expr}",
                 interval=0.5)
