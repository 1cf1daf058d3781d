"""Deployment (docs/DEPLOY.md): the systemd unit, the Debian package and the Terraform module,
each checked with the real tool that will judge it in production.

- The unit: `systemd-analyze verify` finds nothing to say and `systemd-analyze security` rates
  it 2.0 or lower; the daemon, run under strace exactly as the unit runs it, uses only the
  system calls, socket families, /proc files and writable paths the unit's sandbox allows, and
  tells systemd READY=1 and STOPPING=1 from its main process.
- The package: scripts/package.sh builds it from the existing build (it never compiles),
  lintian finds no error, dpkg installs it, the installed unit verifies, and purge removes it.
- Terraform: every .tf file parses (@cdktf/hcl2json, from npm), the firewall admits only
  tcp/9464 from var.scrape_cidr, and the VM's startup script, rendered as Terraform renders it,
  installs the real package, writes the config and the environment, and enables the unit.

Installing the package needs root: without it those tests skip, or fail under CI=true.
"""
import base64
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest
from conftest import IN_CI, SLOW, SOURCE_DIR, free_port, run, turnstiled_bin, wait_for
from pg import PgServer

UNIT = SOURCE_DIR / "systemd" / "turnstiled.service"
MAN_PAGE = SOURCE_DIR / "packaging" / "turnstiled.1"
TERRAFORM = SOURCE_DIR / "deploy" / "terraform"
MODULE = TERRAFORM / "modules" / "turnstiled-vm"
EXAMPLE = TERRAFORM / "examples" / "single-vm"
STARTUP_SCRIPT = MODULE / "templates" / "startup-script.sh.tftpl"
HCL2JSON = "@cdktf/hcl2json@0.21.0"
MAX_EXPOSURE = 2.0
TOPIC = "turnstile-stream"


def unavailable(detail):
    """Something the test needs is missing: fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{detail}; CI=true, so this fails instead of skipping", pytrace=False)
    pytest.skip(f"{detail}: skipped")


def need(tool, package):
    path = shutil.which(tool)
    if path is None:
        unavailable(f"{tool} not found (apt install {package}; scripts/install-deps.sh does)")
    return path


def sh(args, timeout=120, **kwargs):
    """Runs a command to completion; returns the CompletedProcess (text), never raises on exit."""
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout * SLOW, check=False, **kwargs)


def unit_settings(text):
    """KEY -> [values] of a unit file, in order, over all sections; comments skipped."""
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


# ---------------------------------------------------------------------------------------------
# The unit


def test_the_unit_is_a_notify_service_that_is_not_restarted_after_a_config_error():
    s = unit_settings(UNIT.read_text())
    assert s["Type"] == ["notify"]
    assert s["ExecStart"] == ["/usr/bin/turnstiled run -c /etc/turnstiled/turnstiled.yaml"]
    assert s["WatchdogSec"] == ["30s"]
    assert s["Restart"] == ["on-failure"]
    assert "78" in " ".join(s["RestartPreventExitStatus"]).split()
    # An unprivileged user allocated by systemd, with the state folder it owns as the working
    # folder, so that the shipped config's relative out/lake and out/dead-letter land there.
    assert s["DynamicUser"] == ["yes"] and "User" not in s
    assert s["StateDirectory"] == ["turnstiled"]
    assert s["WorkingDirectory"] == ["/var/lib/turnstiled"]
    assert s["ConfigurationDirectory"] == ["turnstiled"]
    assert s["EnvironmentFile"] == ["-/etc/turnstiled/turnstiled.env"]
    # It must reach Kafka and PostgreSQL wherever they are.
    assert "IPAddressDeny" not in s and s.get("PrivateNetwork", ["no"]) == ["no"]


def test_systemd_analyze_verify_finds_nothing_to_report_in_the_unit(tmp_path):
    need("systemd-analyze", "systemd")
    # verify checks that ExecStart exists and that the man page in Documentation= does: point
    # them at the built binary and at the page in packaging/.
    binary = os.path.abspath(turnstiled_bin())
    text = UNIT.read_text()
    copy = text.replace("ExecStart=/usr/bin/turnstiled ", f"ExecStart={binary} ")
    assert copy != text, "the unit's ExecStart is not /usr/bin/turnstiled ..."
    unit = tmp_path / "turnstiled.service"
    unit.write_text(copy)
    (tmp_path / "man" / "man1").mkdir(parents=True)
    shutil.copy(MAN_PAGE, tmp_path / "man" / "man1" / "turnstiled.1")
    r = sh(["systemd-analyze", "verify", unit],
           env={**os.environ, "MANPATH": str(tmp_path / "man")})
    # verify exits 0 on many problems (an unknown key, a bad value) and only prints them.
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


def exposure(unit):
    r = sh(["systemd-analyze", "security", "--offline=true", "--no-pager", unit])
    m = re.search(r"Overall exposure level for turnstiled\.service: (\d+(?:\.\d+)?)", r.stdout)
    assert m, f"no overall exposure in:\n{r.stdout}\n{r.stderr}"
    return float(m.group(1))


def test_systemd_analyze_security_rates_the_unit_2_or_lower():
    need("systemd-analyze", "systemd")
    level = exposure(UNIT)
    assert level <= MAX_EXPOSURE, f"exposure {level} > {MAX_EXPOSURE}"


def syscall_group(names):
    """The system calls in systemd's groups and names, groups resolved recursively."""
    out = set()
    for name in names:
        if not name.startswith("@"):
            out.add(name)
            continue
        r = sh(["systemd-analyze", "syscall-filter", name])
        assert r.returncode == 0, r.stderr
        members = [x.strip() for x in r.stdout.splitlines()[1:]]
        out |= syscall_group([m for m in members if m and not m.startswith("#")])
    return out


def unit_sandbox():
    """What the unit's sandbox allows: system calls, socket families."""
    s = unit_settings(UNIT.read_text())
    # The first setting is an allow list; later ones add to it or take from it, in order.
    allowed = set()
    for value in s["SystemCallFilter"]:
        if value.startswith("~"):
            allowed -= syscall_group(value[1:].split())
        else:
            allowed |= syscall_group(value.split())
    families = set(" ".join(s["RestrictAddressFamilies"]).split())
    return allowed, families


class NotifySocket:
    """A stand-in for systemd's notification socket: collects messages with their sender pid.
    Like systemd, it reads all the time (a thread), so the socket's small queue never fills."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.1)
        self.messages = []  # (pid, "READY=1")
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.closed:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except (socket.timeout, OSError):
                continue
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[:12])[0]
            with self.lock:
                for line in data.decode().splitlines():
                    self.messages.append((pid, line))

    def poll(self):
        with self.lock:
            return list(self.messages)

    def has(self, message):
        return any(m == message for _, m in self.poll())

    def close(self):
        self.closed = True
        self.thread.join()
        self.sock.close()


TRACE_LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. )?([a-z_0-9]+)(?:\(| resumed>)")
WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC")


def written_paths(trace, cwd):
    """Absolute paths the traced process created, opened for writing, renamed or removed."""
    out = set()
    for line in trace:
        m = re.match(r"^\d+\s+(openat|open|creat|mkdir|mkdirat|rename|renameat2?|unlink|unlinkat|"
                     r"rmdir|chmod|fchmodat|symlink|symlinkat|link|linkat|truncate)\((.*)", line)
        if not m:
            continue
        call, args = m.groups()
        if " = -1 " in line and call in ("unlink", "unlinkat", "rmdir"):
            continue  # removing what is not there changes nothing
        if call in ("open", "openat") and not WRITE_FLAGS.search(args):
            continue
        base = cwd
        dirfd = re.match(r"(?:AT_FDCWD|\d+)(?:<([^>]*)>)?\s*,", args)  # strace -y: fd<path>
        if dirfd and dirfd.group(1):
            base = dirfd.group(1)
        for quoted in re.findall(r'"((?:[^"\\]|\\.)*)"', args):
            out.add(os.path.normpath(os.path.join(base, quoted)))
    return out


def sanitizer_build():
    """The build TURNSTILED_BIN belongs to, and whether it is a sanitizer build (whose runtime
    makes system calls and reads files that the production binary does not)."""
    build = pathlib.Path(turnstiled_bin()).resolve().parent
    cache = build / "CMakeCache.txt"
    return build, cache.is_file() and "-fsanitize" in cache.read_text()


def test_the_daemon_runs_as_the_unit_runs_it_within_the_units_sandbox(tmp_path, broker_factory):
    """The shipped config, the unit's working folder and environment, Kafka in, PostgreSQL
    and the lake out, SIGTERM to stop: everything it does must be allowed by the unit's
    SystemCallFilter=, RestrictAddressFamilies=, MemoryDenyWriteExecute=, ProcSubset=pid and
    ProtectSystem=strict, and it must speak sd_notify as Type=notify expects."""
    build, sanitized = sanitizer_build()
    if sanitized:
        pytest.skip(f"{build} is a sanitizer build: the sandbox is checked on the release build")
    need("strace", "strace")
    need("systemd-analyze", "systemd")
    allowed_calls, allowed_families = unit_sandbox()
    broker = broker_factory(partitions=6, topics=(TOPIC, "turnstiled-state"))
    produced = run(["produce", "-b", broker.address, "--topic", TOPIC, "--generate",
                    "--count", "30000"])
    assert "failures=0" in produced.stderr
    pg = PgServer()
    notify = NotifySocket(tmp_path / "notify")
    state = tmp_path / "var-lib-turnstiled"  # WorkingDirectory= and StateDirectory=
    state.mkdir()
    trace_file = tmp_path / "strace.txt"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "PG_DSN": pg.dsn,
           "KAFKA_BOOTSTRAP": broker.address,
           "TURNSTILED_STATE_DIR": str(state),
           "TURNSTILED_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
           "NOTIFY_SOCKET": notify.path,
           "WATCHDOG_USEC": "2000000"}
    log = open(tmp_path / "daemon.log", "w")
    proc = subprocess.Popen(
        ["strace", "-f", "-qq", "-y", "-s", "256", "-o", str(trace_file),
         os.path.abspath(turnstiled_bin()), "run", "-c",
         str(SOURCE_DIR / "config" / "turnstiled.yaml")],
        cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: notify.has("READY=1"), 120, "READY=1 on NOTIFY_SOCKET", proc)
        wait_for(lambda: list((state / "out" / "lake").rglob("*.csv.zst")), 120,
                 "a lake file under the working folder", proc)
        children = pathlib.Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text()
        daemon = int(children.split()[0])  # strace's one child: the daemon
        os.kill(daemon, signal.SIGTERM)
        code = proc.wait(timeout=90 * SLOW)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        pg.close()
    assert code == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    assert any(m == "STOPPING=1" for _, m in notify.poll()), notify.messages
    notify.close()
    # NotifyAccess=main: systemd takes messages from the main process only.
    senders = {pid for pid, m in notify.messages if m in ("READY=1", "STOPPING=1")}
    assert senders == {daemon}, (senders, daemon)

    trace = trace_file.read_text().splitlines()
    calls = {m.group(2) for m in map(TRACE_LINE.match, trace) if m}
    assert "connect" in calls and "sendto" in calls, "the trace looks empty"
    refused = calls - allowed_calls
    assert not refused, f"system calls that SystemCallFilter= refuses: {sorted(refused)}"

    families = set(re.findall(r"\bsocket\((AF_[A-Z0-9]+)", "\n".join(trace)))
    # glibc's getaddrinfo probes interfaces over netlink (AI_ADDRCONFIG) and, refused, assumes
    # both IPv4 and IPv6: the one family used that the unit refuses on purpose.
    assert not families - allowed_families - {"AF_NETLINK"}, families

    wx = [x for x in trace if re.search(r"\b(mmap|mprotect|pkey_mprotect)\(.*PROT_WRITE\|PROT_EXEC"
                                        r"|\b(mmap|mprotect)\(.*PROT_EXEC\|PROT_WRITE", x)]
    assert not wx, f"writable and executable memory (MemoryDenyWriteExecute=): {wx[:3]}"

    # ProcSubset=pid hides everything in /proc but the processes. glibc's malloc reads
    # overcommit_memory and copes without it.
    proc_files = set(re.findall(r'"(/proc/[^"]*)"', "\n".join(trace)))
    foreign = {p for p in proc_files
               if not re.match(r"/proc/(self|thread-self|\d+)(/|$)", p)
               and p != "/proc/sys/vm/overcommit_memory"}
    assert not foreign, f"/proc files hidden by ProcSubset=pid: {sorted(foreign)}"

    # ProtectSystem=strict: only the state folder (and the private /tmp) is writable.
    writable = (str(state), "/tmp", "/var/tmp", "/dev/null", "/proc/self", "/proc/thread-self")
    outside = {p for p in written_paths(trace, str(state))
               if not any(p == w or p.startswith(w + "/") for w in writable)
               and not re.match(r"/proc/\d+/", p)}
    assert not outside, f"writes outside the state folder: {sorted(outside)}"


# ---------------------------------------------------------------------------------------------
# The package


def require_root():
    if os.geteuid() != 0:
        unavailable("installing the package needs root")


def installed_version():
    r = sh(["dpkg-query", "-W", "-f=${Status} ${Version}", "turnstiled"])
    if r.returncode != 0 or "install ok installed" not in r.stdout:
        return None
    return r.stdout.split()[-1]


def refuse_if_installed():
    if installed_version() is not None:
        pytest.fail("turnstiled is installed on this machine already; the test would purge it. "
                    "Remove it first: dpkg --purge turnstiled", pytrace=False)


def purge():
    r = sh(["dpkg", "--purge", "turnstiled"], timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """scripts/package.sh's .deb, built once from the build TURNSTILED_BIN belongs to."""
    require_root()
    for tool, package in (("dpkg-deb", "dpkg"), ("dpkg-shlibdeps", "dpkg-dev"),
                          ("lintian", "lintian"), ("cmake", "cmake")):
        need(tool, package)
    build, sanitized = sanitizer_build()
    if sanitized:
        pytest.skip(f"{build} is a sanitizer build: the package is checked on the release build")
    out = tmp_path_factory.mktemp("deb")
    started = time.monotonic()
    r = sh(["bash", SOURCE_DIR / "scripts" / "package.sh", build, out], timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    deb = pathlib.Path(r.stdout.strip().splitlines()[-1])
    assert deb.is_file() and deb.parent == out, r.stdout
    # Nothing was compiled: packaging the existing build takes seconds.
    assert time.monotonic() - started < 120 * SLOW
    return deb


def test_the_package_is_named_for_the_binarys_version_and_lintian_finds_no_error(deb):
    version = run(["version"]).stdout.split()[1]
    arch = sh(["dpkg", "--print-architecture"]).stdout.strip()
    assert re.fullmatch(rf"turnstiled_{re.escape(version)}-\d+_{arch}\.deb", deb.name), deb.name
    fields = {f: sh(["dpkg-deb", "-f", deb, f]).stdout.strip() for f in ("Package", "Depends")}
    assert fields["Package"] == "turnstiled"
    # Depends comes from dpkg-shlibdeps: the libraries the binary really links.
    for lib in ("librdkafka1", "libpq5", "libzstd1", "libsystemd0", "libc6"):
        assert lib in fields["Depends"], fields["Depends"]
    r = sh(["lintian", "--fail-on", "error", deb], timeout=600)
    errors = [x for x in r.stdout.splitlines() if x.startswith("E:")]
    assert not errors and r.returncode == 0, r.stdout + r.stderr


def complete(words):
    """What bash completion offers for `words` (the last may be partial), with the
    completion installed by the package, loaded the way bash-completion loads it."""
    script = r"""
source /usr/share/bash-completion/bash_completion
_completion_loader turnstiled
read -ra COMP_WORDS <<< "$1"
[[ $1 == *" " ]] && COMP_WORDS+=("")
COMP_LINE=$1 COMP_POINT=${#1} COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
$(complete -p turnstiled | sed -n 's/.*-F \([^ ]*\) .*/\1/p') turnstiled \
  "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""
    r = sh(["bash", "-c", script, "complete", words])
    assert r.returncode == 0, r.stderr
    return sorted(r.stdout.split())


def test_the_package_installs_a_unit_that_verifies_and_purges_cleanly(deb):
    need("systemd-analyze", "systemd")
    need("man", "man-db")
    if not pathlib.Path("/usr/share/bash-completion/bash_completion").is_file():
        unavailable("bash-completion is not installed")
    refuse_if_installed()
    wants = pathlib.Path("/etc/systemd/system/multi-user.target.wants/turnstiled.service")
    try:
        r = sh(["dpkg", "-i", deb], timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert sh(["/usr/bin/turnstiled", "version"]).stdout.splitlines()[0] == \
            run(["version"]).stdout.splitlines()[0]

        unit = pathlib.Path("/lib/systemd/system/turnstiled.service")
        assert unit.read_text() == UNIT.read_text()
        r = sh(["systemd-analyze", "verify", unit])
        assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
        # Installed, not enabled: it needs /etc/turnstiled/turnstiled.env first.
        assert not wants.exists()

        conffiles = sh(["dpkg-query", "-W", "-f=${Conffiles}", "turnstiled"]).stdout
        assert re.search(r"^ /etc/turnstiled/turnstiled\.yaml [0-9a-f]{32}$", conffiles, re.M), \
            conffiles
        assert pathlib.Path("/etc/turnstiled/turnstiled.yaml").read_text() == \
            (SOURCE_DIR / "config" / "turnstiled.yaml").read_text()

        assert sh(["man", "-w", "turnstiled"]).stdout.strip() == \
            "/usr/share/man/man1/turnstiled.1.gz"
        page = sh(["man", "--warnings", "-E", "UTF-8", "-P", "cat", "turnstiled"],
                  env={**os.environ, "MANWIDTH": "80"})
        assert page.returncode == 0 and page.stderr == "", page.stderr
        for section in ("SYNOPSIS", "COMMANDS", "EXIT STATUS", "ENVIRONMENT", "FILES"):
            assert section in page.stdout

        assert complete("turnstiled ") == \
            ["--help", "--version", "broker", "demo", "produce", "run", "tap", "validate",
             "version"]
        assert complete("turnstiled run --") == ["--available-now", "--config", "--drain", "--help"]
        assert complete("turnstiled produce --format ") == ["json", "mta-csv", "seed-csv"]

        doc = pathlib.Path("/usr/share/doc/turnstiled")
        for name in ("copyright", "changelog.Debian.gz", "README.md", "DEPLOY.md", "CONFIG.md",
                     "turnstiled.env.example"):
            assert (doc / name).is_file(), name
    finally:
        purge()
    for gone in ("/usr/bin/turnstiled", "/lib/systemd/system/turnstiled.service",
                 "/etc/turnstiled", "/etc/systemd/system/turnstiled.service", str(wants)):
        assert not os.path.lexists(gone), f"{gone} is left after purge"


# ---------------------------------------------------------------------------------------------
# Terraform


def render_template(path, variables):
    """Terraform's templatefile() for a template made of plain ${name} interpolations and the
    $${ / %%{ escapes: anything else in it (a directive, an expression) is an error here."""
    out, pos = [], 0
    text = path.read_text()
    for m in re.finditer(r"\$\$\{|%%\{|%\{|\$\{([^}]*)\}", text):
        out.append(text[pos:m.start()])
        token = m.group(0)
        if token in ("$${", "%%{"):
            out.append(token[1:])
        elif token == "%{":
            pytest.fail(f"{path}: template directive at offset {m.start()}")
        else:
            name = m.group(1).strip()
            assert name in variables, f"{path}: ${{{name}}} is not a variable the module passes"
            out.append(variables[name])
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def startup_script(deb_url, config_yaml, env):
    """The VM's startup script, rendered with the module's variables as main.tf passes them."""
    lines = "".join(f"{k}={base64.b64encode(env[k].encode()).decode()}\n" for k in sorted(env))
    return render_template(STARTUP_SCRIPT, {
        "deb_url": deb_url,
        "config_yaml_b64": base64.b64encode(config_yaml.encode()).decode(),
        "env_lines_b64": base64.b64encode(lines.encode()).decode(),
    })


@pytest.fixture(scope="module")
def hcl():
    """Every .tf file under deploy/terraform, parsed by @cdktf/hcl2json: {relative path: JSON}."""
    need("node", "nodejs")
    default = pathlib.Path.home() / ".cache" / "turnstiled-tests" / "npm"
    cache = pathlib.Path(os.environ.get("TURNSTILED_NPM_CACHE", default))
    package = cache / "node_modules" / "@cdktf" / "hcl2json"
    if not (package / "package.json").is_file():
        need("npm", "npm")
        r = sh(["npm", "install", "--prefix", cache, "--no-audit", "--no-fund", "--loglevel=error",
                HCL2JSON], timeout=600)
        assert r.returncode == 0, f"npm install {HCL2JSON} failed:\n{r.stdout}\n{r.stderr}"
    files = sorted(TERRAFORM.rglob("*.tf"))
    assert files, f"no .tf files under {TERRAFORM}"
    script = """
const { parse } = require(process.argv[1]);
const fs = require("fs");
(async () => {
  const out = {};
  for (const f of process.argv.slice(2)) out[f] = await parse(f, fs.readFileSync(f, "utf8"));
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(String(e)); process.exit(1); });
"""
    r = sh(["node", "-e", script, package, *files])
    assert r.returncode == 0, f"hcl2json could not parse:\n{r.stderr}"
    return {str(pathlib.Path(f).relative_to(TERRAFORM)): v for f, v in json.loads(r.stdout).items()}


def blocks(hcl, kind, module=None):
    """{(file, type, name): body} of every `kind` (resource, variable, module, ...) block."""
    out = {}
    for path, doc in hcl.items():
        if module and not path.startswith(module):
            continue
        for key, value in doc.get(kind, {}).items():
            if kind == "resource":
                for name, bodies in value.items():
                    for body in bodies:
                        out[(path, key, name)] = body
            else:
                for body in value:
                    out[(path, key)] = body
    return out


def test_every_terraform_file_parses(hcl):
    expected = {"modules/turnstiled-vm/main.tf", "modules/turnstiled-vm/variables.tf",
                "modules/turnstiled-vm/outputs.tf", "modules/turnstiled-vm/versions.tf",
                "examples/single-vm/main.tf", "examples/single-vm/variables.tf"}
    assert expected <= set(hcl), sorted(hcl)
    assert all(hcl[f] for f in expected)


def test_the_only_firewall_rule_admits_tcp_9464_from_scrape_cidr_only(hcl):
    resources = blocks(hcl, "resource")
    firewalls = {k: v for k, v in resources.items() if k[1] == "google_compute_firewall"}
    assert len(firewalls) == 1, firewalls
    (path, _, _), rule = next(iter(firewalls.items()))
    assert path.startswith("modules/turnstiled-vm/")
    assert rule.get("direction", "INGRESS") == "INGRESS"
    assert rule["allow"] == [{"protocol": "tcp", "ports": ["9464"]}]
    assert rule["source_ranges"] == ["${var.scrape_cidr}"]
    for key in ("deny", "source_tags", "source_service_accounts", "disabled"):
        assert key not in rule, key
    # It applies to the VM: the rule's target tag is on the instance.
    vm = next(v for k, v in resources.items() if k[1] == "google_compute_instance")
    assert rule["target_tags"] == vm["tags"]
    # And the daemon listens where the rule admits: 0.0.0.0:9464 by default.
    main = hcl["modules/turnstiled-vm/main.tf"]
    assert 'TURNSTILED_METRICS_LISTEN = \\"0.0.0.0:9464\\"' in json.dumps(main["locals"])


def test_the_module_takes_the_documented_variables_and_hides_the_environment(hcl):
    variables = {k[1]: v for k, v in blocks(hcl, "variable", "modules/turnstiled-vm/").items()}
    for name in ("project", "region", "zone", "machine_type", "network", "subnetwork",
                 "scrape_cidr", "deb_url", "config_yaml", "env"):
        assert name in variables, name
        assert variables[name].get("description"), f"variable {name} has no description"
    assert variables["env"].get("sensitive") is True
    vm = blocks(hcl, "resource", "modules/turnstiled-vm/")
    instance = next(v for k, v in vm.items() if k[1] == "google_compute_instance")
    assert instance["metadata"]["startup-script"] == "${local.startup_script}"
    script = hcl["modules/turnstiled-vm/main.tf"]["locals"][0]["startup_script"]
    assert "templatefile(" in script and "templates/startup-script.sh.tftpl" in script


def test_the_example_passes_every_required_variable_to_the_module(hcl):
    variables = {k[1]: v for k, v in blocks(hcl, "variable", "modules/turnstiled-vm/").items()}
    required = {name for name, v in variables.items() if "default" not in v}
    modules = blocks(hcl, "module", "examples/single-vm/")
    assert len(modules) == 1
    call = next(iter(modules.values()))
    assert (EXAMPLE / call["source"]).resolve() == MODULE.resolve()
    assert required <= set(call), required - set(call)
    assert "config/turnstiled.yaml" in call["config_yaml"]
    assert (EXAMPLE / "../../../../config/turnstiled.yaml").resolve() == \
        (SOURCE_DIR / "config" / "turnstiled.yaml").resolve()


def test_the_startup_script_downloads_and_installs_the_deb_then_enables_the_unit(tmp_path):
    script = startup_script("https://packages.example/turnstiled_0.1.0-1_amd64.deb",
                            "source: {}\n", {"PG_DSN": "host=db"})
    path = tmp_path / "startup.sh"
    path.write_text(script)
    r = sh(["bash", "-n", path])
    assert r.returncode == 0, r.stderr
    lines = [x.strip() for x in script.splitlines() if x.strip() and not x.lstrip().startswith("#")]

    def first(pattern):
        hits = [i for i, x in enumerate(lines) if re.search(pattern, x)]
        assert hits, f"no line matches {pattern!r}"
        return hits[0]

    download = first(r"curl .*-o turnstiled\.deb\.part "
                     r"'https://packages\.example/turnstiled_0\.1\.0-1_amd64\.deb'$")
    install = first(r"apt-get install -y\b")
    assert lines[install + 1] == "./turnstiled.deb" or "./turnstiled.deb" in lines[install]
    config = first(r"put /etc/turnstiled/turnstiled\.yaml 0644")
    environment = first(r"put /etc/turnstiled/turnstiled\.env 0600")
    enable = first(r"^systemctl enable --now turnstiled$")
    assert download < install < config < environment < enable


def test_the_startup_script_installs_the_real_package_and_configures_the_unit(deb, tmp_path):
    """The rendered startup script, run as the VM runs it (root, at boot), with the package
    from a file:// URL. Only what this machine lacks is stubbed: systemd (systemctl records
    its calls) and the network (apt-get update does nothing)."""
    need("curl", "curl")
    refuse_if_installed()
    stubs = tmp_path / "bin"
    stubs.mkdir()
    calls = tmp_path / "systemctl.calls"
    (stubs / "systemctl").write_text(
        f'#!/bin/sh\necho "$*" >>{calls}\ncase "$1" in is-active) exit 3 ;; esac\nexit 0\n')
    (stubs / "apt-get").write_text(
        '#!/bin/sh\nif [ "$1" = update ]; then exit 0; fi\nexec /usr/bin/apt-get "$@"\n')
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    config = (SOURCE_DIR / "config" / "turnstiled.yaml").read_text() + "# from terraform\n"
    env = {"PG_DSN": "host=db.internal dbname=mta user=turnstiled password=p\"a$b`c\\d'e f=",
           "KAFKA_BOOTSTRAP": "kafka-1:9092,kafka-2:9092",
           "TURNSTILED_METRICS_LISTEN": f"127.0.0.1:{free_port()}"}
    script = tmp_path / "startup.sh"
    script.write_text(startup_script(f"file://{deb}", config, env))
    run_env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}
    try:
        r = sh(["bash", script], timeout=600, env=run_env, cwd=tmp_path)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert installed_version() is not None
        assert pathlib.Path("/etc/turnstiled/turnstiled.yaml").read_text() == config
        env_file = pathlib.Path("/etc/turnstiled/turnstiled.env")
        assert env_file.stat().st_mode & 0o777 == 0o600
        # The shell reads the values back exactly (systemd's EnvironmentFile= parser takes
        # the same quoting: \ " ` $ escaped inside double quotes).
        read = sh(["bash", "-c", 'set -a; . "$1"; printf "%s\\0" "$PG_DSN" "$KAFKA_BOOTSTRAP"',
                   "read", env_file])
        assert read.stdout.split("\0")[:2] == [env["PG_DSN"], env["KAFKA_BOOTSTRAP"]]
        assert "enable --now turnstiled" in calls.read_text().splitlines()

        # The next boot runs it again: nothing changes, and the unit is enabled again.
        inode = env_file.stat().st_ino
        r = sh(["bash", script], timeout=600, env=run_env, cwd=tmp_path)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert env_file.stat().st_ino == inode
        assert calls.read_text().splitlines().count("enable --now turnstiled") == 2
    finally:
        purge()
        shutil.rmtree("/var/cache/turnstiled", ignore_errors=True)


def test_terraform_fmt_finds_nothing_to_change():
    """Only where terraform is installed (it is no Debian package; nothing installs it)."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed: formatting not checked")
    r = sh(["terraform", "fmt", "-check", "-diff", "-recursive", TERRAFORM],
           env={**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null", "CHECKPOINT_DISABLE": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
