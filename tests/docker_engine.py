"""A real docker engine for the tests: a private dockerd, and the analyzer images built in it.

The tests always start their own dockerd, on a short socket path, because
some stop and restart it. Its data root lives in /var/cache/kiskadee-tests
(when that is writable) so images survive between local runs; on a fresh
machine (CI) everything is built: the base with ``kiskadee images base``
(mmdebstrap from apt's Debian mirror, assembled on a tmpfs), then the images
with ``kiskadee images build``, through the real command. A lock keeps two
test runs from sharing the cached data root: the second one gets a
temporary data root and builds from scratch.

A pytest plugin (tests/conftest.py registers it): a test asks for the
``docker_engine`` fixture by name.
"""

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import docker
import pytest
from harness import run_kiskadee

from kiskadee.analysis.images import SOURCE_CONTAINERS, base_tag, debian_packages
from kiskadee.analysis.sandbox.docker import LABEL
from kiskadee.config import DockerSandboxConfig

CACHE = Path(os.environ.get("KISKADEE_TEST_CACHE", "/var/cache/kiskadee-tests"))
ANALYZERS = ("cppcheck", "flawfinder", "clang", "gcc", "framac")
SUITE = "bookworm"


class DockerEngine:
    """A dockerd on a private socket, data root and exec root."""

    def __init__(self, data_root: Path, run_dir: Path):
        self.data_root, self.run_dir = data_root, run_dir
        self.process: Optional[subprocess.Popen] = None
        self.config_file = run_dir / "kiskadee.toml"
        self.config_file.write_text(self.toml())

    @property
    def url(self) -> str:
        return f"unix://{self.run_dir}/docker.sock"

    def toml(self) -> str:
        """Configuration that selects this engine for the docker backend."""
        return f'[sandbox]\nbackend = "docker"\n[sandbox.docker]\nurl = "{self.url}"\n'

    def sandbox_config(self, **overrides) -> DockerSandboxConfig:
        return DockerSandboxConfig(url=self.url, **overrides)

    def start(self, timeout: float = 60) -> None:
        log = open(self.run_dir / "dockerd.log", "ab")
        self.process = subprocess.Popen(
            ["dockerd", "--storage-driver=overlay2", "--iptables=false", "--ip6tables=false", "--bridge=none",
             f"--data-root={self.data_root}", f"--exec-root={self.run_dir / 'exec'}",
             f"--pidfile={self.run_dir / 'dockerd.pid'}", "-H", self.url],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not start: {self.log()[-3000:]}")
            time.sleep(0.2)

    def _answers(self) -> bool:
        try:
            with contextlib.closing(self.client()) as client:
                return client.ping()
        except docker.errors.DockerException:
            return False

    def stop(self) -> None:
        """Stop dockerd as an operator would (SIGTERM), and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, version="auto", timeout=60)

    def kiskadee_containers(self) -> List[str]:
        """Names and states of the containers kiskadee left in the engine."""
        with contextlib.closing(self.client()) as client:
            return [f"{c.name} ({c.status})" for c in client.containers.list(all=True, filters={"label": LABEL})]

    def log(self) -> str:
        return (self.run_dir / "dockerd.log").read_text(errors="replace")

    def kiskadee(self, *args, timeout: float = 900):
        """Run the real kiskadee command against this engine; fail with its output if it fails."""
        result = run_kiskadee(*args, config=self.config_file, timeout=timeout)
        assert result.returncode == 0, f"kiskadee {' '.join(map(str, args))}: {result.stdout}{result.stderr}"
        return result


def _data_root() -> "tuple[Path, Optional[int], bool]":
    """The cached data root and its lock, or a temporary one if another run holds it."""
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        lock = os.open(CACHE / "docker.lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return CACHE / "docker", lock, False
    except OSError:
        return Path(tempfile.mkdtemp(prefix="kiskadee-docker-", dir="/var/tmp")), None, True


def ensure_images(engine: DockerEngine) -> None:
    """Build the base (unless this data root has it with today's package list) and the images.

    Containers an earlier, interrupted run left in the cached data root are removed first, so
    that the tests can tell that kiskadee leaves none.
    """
    packages = "\n".join(debian_packages(SOURCE_CONTAINERS, ANALYZERS))
    marker = engine.data_root.parent / f"{engine.data_root.name}.base-packages"
    with contextlib.closing(engine.client()) as client:
        for container in client.containers.list(all=True, filters={"label": LABEL}):
            container.remove(force=True)
        have_base = any(base_tag(SUITE) in image.tags for image in client.images.list())
    if not have_base or not marker.exists() or marker.read_text() != packages:
        work = tempfile.mkdtemp(prefix="kkbase-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        try:
            engine.kiskadee("images", "base", *ANALYZERS, "--work-dir", work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        marker.write_text(packages)
    engine.kiskadee("images", "build", *ANALYZERS, "--base", base_tag(SUITE), "--network", "none")


class _Shared:
    engine: Optional[DockerEngine] = None
    cleanup: list = []


def shared_engine() -> DockerEngine:
    """The one engine of this test session, started and provisioned on first use."""
    if _Shared.engine is None:
        data_root, lock, temporary = _data_root()
        run_dir = Path(tempfile.mkdtemp(prefix="kkd"))     # short: unix socket paths are limited
        engine = DockerEngine(data_root, run_dir)
        _Shared.cleanup = [run_dir] + ([data_root] if temporary else [])
        _Shared.lock = lock
        _Shared.engine = engine
        try:
            engine.start()
            ensure_images(engine)
        except BaseException:
            shutdown()
            raise
    return _Shared.engine


def shutdown() -> None:
    """Stop the session's engine and remove what was temporary (idempotent)."""
    engine, _Shared.engine = _Shared.engine, None
    if engine is None:
        return
    engine.stop()
    for path in _Shared.cleanup:
        shutil.rmtree(path, ignore_errors=True)
    if getattr(_Shared, "lock", None) is not None:
        os.close(_Shared.lock)


@pytest.fixture(scope="session")
def docker_engine() -> DockerEngine:
    """A real dockerd with every analyzer's image, for the whole session."""
    yield shared_engine()
    shutdown()
