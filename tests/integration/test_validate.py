"""`turnstiled validate`: every broken config in tests/configs/bad is refused with exactly the
text in its .expected file, and every shipped example in config/ passes.

Runs the real binary ($TURNSTILED_BIN) from the repository root, with relative paths, so that
the file names it prints are stable (see tests/configs/bad/README.md).
"""
import json
import os
import pathlib
import subprocess

import pytest

SOURCE_DIR = pathlib.Path(
    os.environ.get("TURNSTILED_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BAD_DIR = SOURCE_DIR / "tests" / "configs" / "bad"
BAD_CONFIGS = sorted(p.name for p in BAD_DIR.glob("*.yaml"))
EXAMPLES = sorted(p.name for p in (SOURCE_DIR / "config").glob("*.yaml"))


def turnstiled_bin():
    binary = os.environ.get("TURNSTILED_BIN")
    if not binary:
        pytest.fail("TURNSTILED_BIN is not set; run through ctest or set it to the built binary")
    return binary


def validate(relative_path, extra_env=None):
    # A clean environment: the expected texts assume no TURNSTILED_TEST_UNSET_* variable, and
    # the examples must not pass only because this shell happens to export something.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(extra_env or {})
    return subprocess.run([turnstiled_bin(), "validate", "-c", relative_path], cwd=SOURCE_DIR,
                          env=env, capture_output=True, text=True, check=False)


def test_the_bad_configs_cover_every_error_kind():
    assert len(BAD_CONFIGS) >= 10, f"too few bad configs in {BAD_DIR}: {BAD_CONFIGS}"
    for name in BAD_CONFIGS:
        assert (BAD_DIR / name).with_suffix(".expected").exists(), f"{name} has no .expected"


@pytest.mark.parametrize("name", BAD_CONFIGS)
def test_a_bad_config_is_refused_with_every_error_listed(name):
    relative = f"tests/configs/bad/{name}"
    expected = (BAD_DIR / name).with_suffix(".expected").read_text()
    result = validate(relative)
    assert result.stderr == expected
    assert result.returncode == 1
    assert result.stdout == ""


# What the shipped examples need from the environment; everything else has a default.
EXAMPLE_ENV = {
    "PG_DSN": "host=db.example user=turnstiled dbname=mta",
    "KAFKA_BOOTSTRAP": "127.0.0.1:9092",
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_shipped_example_config_passes(name):
    result = validate(f"config/{name}", EXAMPLE_ENV)
    assert result.stderr == ""
    assert result.returncode == 0
    assert result.stdout.startswith("ok: ")
    assert result.stdout.count("\n") == 1


def test_the_production_example_summary_names_its_parts():
    result = validate("config/turnstiled.yaml", EXAMPLE_ENV)
    assert result.stdout == ("ok: kafka source (1 topic, 2 threads), mta-csv cumulative, "
                             "tumbling 4h windows, 2 sinks (file, postgres)\n")


def test_an_example_that_needs_a_variable_fails_without_it():
    text = (SOURCE_DIR / "config" / "turnstiled.yaml").read_text().splitlines()
    line = next(i + 1 for i, t in enumerate(text) if "dsn:" in t and not t.lstrip().startswith("#"))
    result = validate("config/turnstiled.yaml")
    assert result.returncode == 1
    assert result.stderr == (
        f"config/turnstiled.yaml:{line}: sinks[1].dsn: undefined variable ${{PG_DSN}}; set it in the "
        "environment, or give a default: ${PG_DSN:-value}\n"
        "1 error in config/turnstiled.yaml\n")


def test_an_unreadable_file_is_one_error():
    result = validate("tests/configs/bad/does-not-exist.yaml")
    assert result.returncode == 1
    assert result.stderr == (
        "tests/configs/bad/does-not-exist.yaml: cannot read the file: No such file or directory\n"
        "1 error in tests/configs/bad/does-not-exist.yaml\n")


def test_a_missing_config_option_is_a_usage_error():
    result = subprocess.run([turnstiled_bin(), "validate"], cwd=SOURCE_DIR,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "--config is required" in result.stderr


def test_output_under_a_system_folder_is_warned_about(tmp_path):
    cfg = tmp_path / "sys.yaml"
    (tmp_path / "x.txt").write_text("")
    cfg.write_text(json.dumps({
        "source": {"type": "file", "file": {"paths": [str(tmp_path / "x.txt")]}},
        "sinks": [{"name": "lake", "type": "file", "path": "/etc/lake"}],
        "dead_letter": {"type": "file", "path": "/usr/dl"},
        "state": {"dir": str(tmp_path / "state")},
    }))
    result = validate(str(cfg))
    assert result.returncode == 0, result.stderr
    assert f"{cfg}: warning: sinks[0].path: '/etc/lake' is under the system folder /etc" \
        in result.stderr
    assert "dead_letter.path: '/usr/dl' is under the system folder /usr" in result.stderr
    assert "state.dir" not in result.stderr
    assert "warning" not in validate("config/file-source.yaml").stderr
