"""A real PostgreSQL 15 server for the integration tests, started and stopped by the test.

PgServer runs initdb into a fresh folder under /tmp (pytest's tmp_path is below
/tmp/pytest-of-root, which the postgres user cannot traverse), listens on 127.0.0.1 at a free
port with its unix socket in that folder, and creates a role with a password and a database it
owns. TCP connections authenticate with scram-sha-256, so a wrong password is refused; the
test's own psql calls use the unix socket as the superuser (trust).

Run as root, the server runs as the `postgres` user through runuser; run as anyone else, as
that user. Only the server this object started is ever stopped (pg_ctl -D on its data folder),
and its folder is removed by close().
"""
import os
import pathlib
import secrets
import shutil
import subprocess
import tempfile

import pytest
from conftest import IN_CI, SLOW, free_port

PG_BIN = pathlib.Path(os.environ.get("TURNSTILED_PG_BIN", "/usr/lib/postgresql/15/bin"))
SEP = "\x1f"  # psql field separator: no station name holds it


def require_postgres():
    """The PostgreSQL server binaries, or fail (CI) / skip with a clear message."""
    if not (PG_BIN / "initdb").is_file():
        detail = (f"PostgreSQL server binaries not found in {PG_BIN} (apt install postgresql-15, "
                  "or set TURNSTILED_PG_BIN)")
        if IN_CI:
            pytest.fail(f"{detail}; CI=true, so this fails instead of skipping", pytrace=False)
        pytest.skip(f"{detail}: skipped")
    if shutil.which("psql") is None:
        pytest.fail("psql (postgresql-client) is not installed", pytrace=False)


class PgServer:
    """One PostgreSQL cluster. `dsn` connects over TCP as `user` with `password` to `dbname`."""

    user = "turnstiled"
    dbname = "turnstile"

    def __init__(self):
        require_postgres()
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="turnstiled-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.password = "pw-" + secrets.token_hex(12)
        self.as_server = []
        if os.geteuid() == 0:
            # The server refuses to run as root.
            shutil.chown(self.root, "postgres", "postgres")
            self.as_server = ["runuser", "-u", "postgres", "--"]
        self._server(["initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust",
                      "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
                     timeout=120)
        self.running = False
        self.start()
        self.psql(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'", db="postgres")
        self.psql(f"CREATE DATABASE {self.dbname} OWNER {self.user}", db="postgres")

    @property
    def dsn(self):
        return (f"host=127.0.0.1 port={self.port} dbname={self.dbname} user={self.user} "
                f"password={self.password}")

    def _server(self, args, timeout=60):
        cmd = [*self.as_server, str(PG_BIN / args[0]), *map(str, args[1:])]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * SLOW,
                           check=False)
        if r.returncode != 0:
            log = self.log.read_text()[-3000:] if self.log.exists() else ""
            pytest.fail(f"{' '.join(cmd)} exited {r.returncode}\n{r.stdout}\n{r.stderr}\n{log}")
        return r

    def start(self):
        """Starts the server and waits until it accepts connections (pg_ctl -w)."""
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._server(["pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t",
                      str(int(60 * SLOW)), "start"])
        self.running = True

    def stop(self, mode="fast"):
        """Stops this server only (pg_ctl -D on its data folder) and waits until it is down."""
        if self.running:
            self._server(["pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", str(int(60 * SLOW)),
                          "stop"])
            self.running = False

    def close(self):
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql, db=None, user="postgres"):
        """Runs SQL as `user` over the unix socket; returns the rows, each a list of strings
        (NULL as None)."""
        r = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-F", SEP, "-P", "null=\x1e", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.root), "-p", str(self.port), "-U", user, "-d", db or self.dbname,
             "-c", sql],
            capture_output=True, text=True, timeout=60 * SLOW, check=False)
        if r.returncode != 0:
            pytest.fail(f"psql failed ({r.returncode}) on {sql!r}: {r.stderr}")
        return [[None if f == "\x1e" else f for f in line.split(SEP)]
                for line in r.stdout.splitlines() if line != ""]

    def rows(self, table="station_window"):
        """{(station, window_start, window_end): (entries, exits, events)}, times as ISO UTC
        strings the way oracle.rows() writes them."""
        import oracle
        out = {}
        for station, start, end, entries, exits, events in self.psql(
                "SELECT station, (extract(epoch FROM window_start) * 1000)::bigint, "
                "(extract(epoch FROM window_end) * 1000)::bigint, entries, exits, events "
                f"FROM {table}"):
            key = (station, oracle.iso(int(start)), oracle.iso(int(end)))
            assert key not in out, f"{key} twice in {table}"
            out[key] = (int(entries), int(exits), int(events))
        return out

    def exists(self, table="station_window"):
        return self.psql(f"SELECT to_regclass('{table}') IS NOT NULL") == [["t"]]

    def count(self, table="station_window"):
        return int(self.psql(f"SELECT count(*) FROM {table}")[0][0])
