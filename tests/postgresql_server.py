"""A real PostgreSQL server for the tests, started once per session in a temporary directory.

It runs ``initdb`` and ``pg_ctl`` from the distribution's PostgreSQL
(``packaging/test-packages`` installs it: Debian keeps them in
``/usr/lib/postgresql/N/bin``), as the user ``postgres`` when the tests run
as root (initdb refuses root), with its unix socket in the cluster's own
directory and no TCP listener, so it touches nothing of a system server.
Each test gets a database of its own, copied from a template already at
kiskadee's latest schema (``CREATE DATABASE ... TEMPLATE``, some 50 ms).

A pytest plugin (tests/conftest.py registers it): a test asks for the
``postgresql`` fixture by name, or runs on both databases with the
``both_databases`` marker and the ``db`` fixture.
"""

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg2
import pytest

from kiskadee.store.db import close_database, open_database

TEMPLATE = "kiskadee_template"


def binaries() -> Path:
    """The directory of initdb and pg_ctl: the newest Debian cluster's, else the one on PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if not found:
        raise RuntimeError("no initdb: run 'make test-setup' (packaging/test-packages installs PostgreSQL)")
    return Path(found).parent


class Server:
    """A throw-away PostgreSQL cluster and where to reach it."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.bin = binaries()
        self.user = "postgres" if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        self.names = itertools.count(1)

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if os.getuid() == 0 else []
        subprocess.run(prefix + list(command), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       cwd=self.root)

    def start(self) -> None:
        if os.getuid() == 0:
            user = pwd.getpwnam(self.user)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "kiskadee", "--auth=trust",
                  "--no-locale", "--encoding=UTF8", "--no-sync")
        self.start_again()
        self._execute(f"CREATE DATABASE {TEMPLATE}")
        close_database(open_database(self.url(TEMPLATE)))     # the latest schema, once

    def start_again(self) -> None:
        """Start the server on its cluster (after ``stop``: a restart, as an admin's would be)."""
        options = f"-k {self.root} -c listen_addresses= -c fsync=off -c synchronous_commit=off " \
                  "-c full_page_writes=off -c max_connections=200"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server at once: every connection is cut, as when it crashes."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, name: str) -> str:
        return f"postgresql:///{name}?host={self.root}&user=kiskadee"

    def fresh_database(self, schema: bool = True) -> str:
        """The URL of a new database of its own: at the latest schema, or empty."""
        name = f"test_{next(self.names)}"
        self._execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {TEMPLATE}" if schema else ""))
        return self.url(name)

    def _execute(self, statement: str) -> None:
        connection = psycopg2.connect(self.url("postgres"))
        connection.autocommit = True
        try:
            connection.cursor().execute(statement)
        finally:
            connection.close()


@pytest.fixture(scope="session")
def postgresql():
    """A PostgreSQL server for the session; ``fresh_database()`` gives each test its own database."""
    root = Path(tempfile.mkdtemp(prefix="kiskadee-pg-"))
    server = Server(root)
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        log = root / "log"
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr.decode(errors='replace')}"
                           f"{log.read_text() if log.exists() else ''}") from None
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def pytest_generate_tests(metafunc):
    """Tests marked both_databases that use the ``db`` fixture run once on SQLite and once on PostgreSQL."""
    if "db" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("db", ["sqlite", "postgresql"], indirect=True)
