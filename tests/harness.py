"""The shared test harness: the real command, the service suite, waiting, temporary configs, local servers.

Test modules import what they need from here (and test data from
``builders``); they never import each other. Fixtures built on these live in
``conftest.py``.
"""

import contextlib
import functools
import http.server
import json
import lzma
import os
import shutil
import signal
import sqlite3
import string
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Mapping, TypeVar

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HELLO_TARBALL = FIXTURES / "hello_2.10.orig.tar.gz"
SOURCES = (FIXTURES / "debian" / "Sources").read_text(encoding="utf-8")   # a real Debian Sources excerpt

T = TypeVar("T")


# --- waiting ---------------------------------------------------------------------------

def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """The first true value of ``predicate()``; fails naming ``what`` after ``timeout`` seconds.

    The predicate is asked once more at the deadline, so a slow last poll is not lost.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


# --- files and the real command --------------------------------------------------------

@contextlib.contextmanager
def short_tmp_dir(prefix: str = "kk") -> Iterator[Path]:
    """A temporary directory with a short path (ZeroMQ ipc and unix socket paths must stay under 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_config(path: Path, sections: Mapping[str, str]) -> Path:
    """Write a kiskadee.toml at ``path``: section name -> its TOML lines; returns ``path``."""
    path.write_text("".join(f"[{name}]\n{body.rstrip()}\n\n" for name, body in sections.items()))
    return path


def unpack_hello(directory: Path) -> Path:
    """The real hello 2.10 tarball unpacked in ``directory``; its tree."""
    with tarfile.open(HELLO_TARBALL) as archive:
        archive.extractall(directory)
    return directory / "hello-2.10"


def run_kiskadee(*args, config=None, timeout=600, env=None) -> subprocess.CompletedProcess:
    """Run the real ``kiskadee`` command as a person would; returns the CompletedProcess."""
    environment = dict(os.environ, **(env or {}))
    environment.pop("KISKADEE_CONFIG", None)
    if config is not None:
        environment["KISKADEE_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "kiskadee", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=environment,
    )


# --- another connection to the database ------------------------------------------------

class OtherConnection:
    """A connection to a kiskadee database of its own, as another program opens it (sqlite3, or psycopg2
    for a postgresql:// URL); ``rows`` and ``execute`` take ``?`` marks on both."""

    def __init__(self, location, timeout: float = 10):
        self.server = str(location).startswith("postgresql://")
        if self.server:
            import psycopg2
            self.connection = psycopg2.connect(str(location))
        else:
            self.connection = sqlite3.connect(location, timeout=timeout)

    def execute(self, statement: str, *params):
        cursor = self.connection.cursor()
        if self.server:     # psycopg2 reads every % as a mark, even with no parameters (LIKE 'x%')
            statement = statement.replace("%", "%%").replace("?", "%s")
        cursor.execute(statement, params)
        return cursor

    def rows(self, statement: str, *params) -> list:
        return self.execute(statement, *params).fetchall()

    def commit(self) -> None:
        self.connection.commit()

    def close(self) -> None:
        self.connection.close()


def database_settings(location) -> dict:
    """The [database] table naming ``location`` (a path, or a postgresql:// URL), for from_mapping."""
    return {"url": str(location)} if str(location).startswith("postgresql://") else {"path": str(location)}


@contextlib.contextmanager
def other_connection(location, timeout: float = 10) -> Iterator[OtherConnection]:
    """An OtherConnection to ``location`` (a path or URL), committed and closed at the end."""
    other = OtherConnection(location, timeout)
    try:
        yield other
        other.commit()
    finally:
        other.close()


# --- the service suite -----------------------------------------------------------------

class Suite:
    """A monitor and runners started as real processes on one configuration."""

    def __init__(self, root: Path, analyzers=("flawfinder",), extra="", database=None):
        """``database``: a postgresql:// URL, or None for SQLite at root/k.db."""
        self.root, self.db = root, database or root / "k.db"
        self.config = write_config(root / "kiskadee.toml", {
            "database": f'url = "{database}"' if database else f'path = "{self.db}"',
            "service": f'runtime_dir = "{root / "run"}"\nstate_dir = "{root / "state"}"',
            "analysis": f"analyzers = {json.dumps(list(analyzers))}",
            # in the suite's directory on either database (on a server it would default to the user's
            # data directory, not service.state_dir)
            "analysis.cache": f'path = "{root / "cache.db"}"',
            "monitor": "lease_seconds = 3\nbackoff_seconds = 0.5",
            "runner": "heartbeat_seconds = 1",
        })
        if extra:
            with self.config.open("a") as config:
                config.write(extra)
        self.processes = {}

    def start(self, name, *args):
        log = open(self.root / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "kiskadee", "-c", str(self.config), *args],
            stdout=log, stderr=subprocess.STDOUT)
        return self.processes[name]

    def start_monitor(self):
        process = self.start("monitor", "monitor")
        wait_until(lambda: (self.root / "run" / "work.sock").exists(), 20, "the monitor's sockets")
        return process

    def start_runner(self, name):
        return self.start(name, "runner", "--name", name)

    def kill(self, name, sig=signal.SIGKILL):
        process = self.processes.pop(name)
        process.send_signal(sig)
        return process.wait(30)

    def log(self, name):
        return (self.root / f"{name}.log").read_text(errors="replace")

    def rows(self, sql, *params):
        if isinstance(self.db, Path) and not self.db.exists():
            return []
        with other_connection(self.db) as connection:
            return connection.rows(sql, *params)

    def wait_analyzing(self, runner: str = "", timeout: float = 30) -> None:
        """Wait until ``runner`` (any runner, when '') tells the monitor it is analyzing."""
        which = " AND name = ?" if runner else ""
        wait_until(lambda: self.rows(f"SELECT 1 FROM runner WHERE activity LIKE 'analyzing%'{which}",
                                     *([runner] if runner else [])), timeout, f"{runner or 'a runner'} analyzing")

    def states(self):
        return dict(self.rows("SELECT p.name || ' ' || v.number, v.state FROM version v "
                              "JOIN package p ON p.id = v.package_id"))

    def stop(self):
        for process in self.processes.values():
            process.kill()
            process.wait(10)


def submit(suite: Suite, name, version, source) -> None:
    """``kiskadee submit`` to the suite's monitor; fails the test if the command does."""
    result = run_kiskadee("submit", name, version, source, config=suite.config)
    assert result.returncode == 0, result.stderr


# --- local HTTP servers ----------------------------------------------------------------

class _Server:
    """A threading HTTP server on 127.0.0.1 with a free port, serving until ``close``."""

    def __init__(self, handler):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        pass


class Mirror(_Server):
    """A Debian mirror tree in a temp dir, served over HTTP on 127.0.0.1."""

    POOL = {
        "pool/main/h/hello": ["debian/hello_2.10-3.dsc", "debian/hello_2.10-3.debian.tar.xz",
                              "debian/hello_2.10.orig.tar.gz.asc", "hello_2.10.orig.tar.gz"],
        "pool/main/h/hostname": ["debian/hostname_3.23+nmu1.dsc", "debian/hostname_3.23+nmu1.tar.xz"],
    }

    def __init__(self, www: Path):
        self.root = www / "debian"
        for directory, files in self.POOL.items():
            (self.root / directory).mkdir(parents=True)
            for name in files:
                shutil.copy(FIXTURES / name, self.root / directory / Path(name).name)
        super().__init__(functools.partial(_QuietFiles, directory=str(www)))
        self.url += "/debian"

    def publish(self, text: str, suite: str = "bookworm", component: str = "main") -> None:
        folder = self.root / "dists" / suite / component / "source"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "Sources.xz").write_bytes(lzma.compress(text.encode("utf-8")))

    def pool_file(self, relative: str) -> Path:
        return self.root / relative


class _Routes(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the base class's name)
        self.server.requests.append(self.path)
        status, kind, body = self.server.routes.get(self.path, (404, "text/plain", b"Not Found"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        pass


class Backends(_Server):
    """Recorded upstream responses (tests/fixtures/anitya-backends) served over HTTP, and the paths asked for."""

    RECORDED = FIXTURES / "anitya-backends"

    def __init__(self):
        super().__init__(_Routes)
        self.server.routes, self.server.requests = {}, []

    @property
    def requests(self):
        return self.server.requests

    def add(self, path: str, body, status: int = 200, kind: str = "application/octet-stream") -> None:
        self.server.routes[path] = (status, kind, body.encode() if isinstance(body, str) else body)

    def add_fixture(self, path: str, name: str, **values) -> None:
        """Serve a recorded response, its ``$base`` and ``$``-placeholders filled in."""
        text = string.Template((self.RECORDED / name).read_text()).safe_substitute(base=self.url, **values)
        self.add(path, text, kind="application/json" if name.endswith(".json") else "text/html")
