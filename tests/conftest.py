"""Shared test fixtures: real files, real processes, short socket-friendly paths."""

import functools
import http.server
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
HELLO_TARBALL = FIXTURES / "hello_2.10.orig.tar.gz"
SOURCES = (FIXTURES / "debian" / "Sources").read_text(encoding="utf-8")


def unpack_hello(directory: Path) -> Path:
    """The real hello 2.10 tarball unpacked in ``directory``; its tree."""
    with tarfile.open(HELLO_TARBALL) as archive:
        archive.extractall(directory)
    return directory / "hello-2.10"


@pytest.fixture(scope="module")
def hello_tree(tmp_path_factory) -> Path:
    """hello 2.10 unpacked once per test module."""
    return unpack_hello(tmp_path_factory.mktemp("hello"))


POOL = {
    "pool/main/h/hello": ["debian/hello_2.10-3.dsc", "debian/hello_2.10-3.debian.tar.xz",
                          "debian/hello_2.10.orig.tar.gz.asc", "hello_2.10.orig.tar.gz"],
    "pool/main/h/hostname": ["debian/hostname_3.23+nmu1.dsc", "debian/hostname_3.23+nmu1.tar.xz"],
}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        pass


class Mirror:
    """A mirror tree in a temp dir, served over HTTP on 127.0.0.1."""

    def __init__(self, root: Path, url: str):
        self.root = root / "debian"
        self.url = url + "/debian"

    def publish(self, text: str, suite: str = "bookworm", component: str = "main") -> None:
        folder = self.root / "dists" / suite / component / "source"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "Sources.xz").write_bytes(lzma.compress(text.encode("utf-8")))

    def pool_file(self, relative: str) -> Path:
        return self.root / relative


@pytest.fixture
def mirror(tmp_path):
    """A Debian mirror of real archive files served over HTTP on 127.0.0.1."""
    root = tmp_path / "www"
    for directory, files in POOL.items():
        (root / "debian" / directory).mkdir(parents=True)
        for name in files:
            shutil.copy(FIXTURES / name, root / "debian" / directory / Path(name).name)
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    served = Mirror(root, "http://127.0.0.1:%d" % server.server_address[1])
    served.publish(SOURCES)
    yield served
    server.shutdown()
    server.server_close()
    thread.join(5)




@pytest.fixture
def short_tmp():
    """A temporary directory with a short path (ZeroMQ ipc paths must stay under 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="kk"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def hello_tarball() -> Path:
    return HELLO_TARBALL


def run_kiskadee(*args, config=None, timeout=600, env=None):
    """Run the real ``kiskadee`` command as a person would; returns the CompletedProcess."""
    environment = dict(os.environ, **(env or {}))
    environment.pop("KISKADEE_CONFIG", None)
    if config is not None:
        environment["KISKADEE_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "kiskadee", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=environment,
    )
