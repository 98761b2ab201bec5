"""Shared test fixtures: real files, real processes, short socket-friendly paths.

Helpers and test data live in ``harness`` and ``builders``; the docker engine
and the RabbitMQ broker fixtures in the plugin modules named below, so a test
module only names the fixture.
"""

from pathlib import Path
from typing import Callable

import pytest
import zmq
from harness import HELLO_TARBALL, SOURCES, Backends, Mirror, short_tmp_dir, unpack_hello

from kiskadee.store.db import open_database

pytest_plugins = ("docker_engine", "rabbitmq_broker", "postgresql_server")


@pytest.fixture(scope="module")
def hello_tree(tmp_path_factory) -> Path:
    """hello 2.10 unpacked once per test module."""
    return unpack_hello(tmp_path_factory.mktemp("hello"))


@pytest.fixture
def mirror(tmp_path):
    """A Debian mirror of real archive files served over HTTP on 127.0.0.1, publishing the recorded Sources."""
    served = Mirror(tmp_path / "www")
    served.publish(SOURCES)
    yield served
    served.close()


@pytest.fixture
def backends():
    """Recorded upstream (Anitya, GitHub, PyPI...) responses served over HTTP on 127.0.0.1."""
    served = Backends()
    yield served
    served.close()


@pytest.fixture
def short_tmp():
    """A temporary directory with a short path (ZeroMQ ipc paths must stay under 107 bytes)."""
    with short_tmp_dir() as path:
        yield path


@pytest.fixture
def hello_tarball() -> Path:
    return HELLO_TARBALL


SYSTEM_MARKERS = ("docker", "rabbitmq", "rpm", "systemd")


def pytest_collection_modifyitems(items):
    """A test that needs a whole system must be slow too, so that -m "not slow" never starts one."""
    unmarked = [item.nodeid for item in items if not item.get_closest_marker("slow")
                and any(item.get_closest_marker(name) for name in SYSTEM_MARKERS)]
    if unmarked:
        raise pytest.UsageError(f"marked {'/'.join(SYSTEM_MARKERS)} but not slow: {', '.join(unmarked)}")


@pytest.fixture
def context():
    """A ZeroMQ context of the test's own, for in-process services (tests/inproc.py); its sockets close with it."""
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


@pytest.fixture
def db(request, tmp_path):
    """A fresh database at the latest schema, the models bound to it: SQLite at tmp_path/kiskadee.db, or
    (in a module marked both_databases, tests/postgresql_server.py) a PostgreSQL database of its own too.

    ``db.database`` is where it is, as ``--db`` and ``database.url`` take it (path or URL).
    """
    if getattr(request, "param", "sqlite") == "postgresql":
        location = request.getfixturevalue("postgresql").fresh_database()
    else:
        location = str(tmp_path / "kiskadee.db")
    database = open_database(location)
    yield database
    database.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def new_database(request) -> Callable[[Path], str]:
    """For a module whose analyses its tests share (run once per database): a function giving a new
    database's location, ``directory/kiskadee.db`` or a fresh PostgreSQL database (tests/postgresql_server.py)."""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgresql")
        return lambda directory: server.fresh_database()
    return lambda directory: str(directory / "kiskadee.db")


@pytest.fixture(scope="module")
def analysis_cache(tmp_path_factory) -> Path:
    """An analysis cache file (``analysis.cache.path``) for a module's runs on both databases to share:
    each source is analyzed once, and the second database stores what the first run found."""
    return tmp_path_factory.mktemp("cache") / "cache.db"
