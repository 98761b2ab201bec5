"""A real RabbitMQ server for the tests, started once per session in a temporary directory.

It runs Debian's or Fedora's ``rabbitmq-server`` (``packaging/system-packages``
installs it) as the current user, with every data, log and configuration file
in a fresh directory and its AMQP, distribution and epmd ports chosen free on
127.0.0.1, so it touches nothing of a system broker. It takes some 15 s to
start. At the end the server is stopped (SIGTERM to its process group) and
its epmd is told to quit.

A pytest plugin (tests/conftest.py registers it): a test asks for the
``rabbitmq`` fixture by name.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"   # the real script; /usr/sbin's wrapper switches users
START_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Broker:
    """A rabbitmq-server process and where to reach it."""

    def __init__(self, root: Path):
        self.root = root
        self.port, self.epmd_port = free_port(), free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        self.process = None

    def environment(self) -> dict:
        (self.root / "enabled_plugins").write_text("[].\n")
        return dict(
            os.environ, HOME=str(self.root), ERL_EPMD_PORT=str(self.epmd_port),
            RABBITMQ_NODENAME=f"kk{self.port}@localhost", RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_DIST_PORT=str(free_port()),
            RABBITMQ_MNESIA_BASE=str(self.root / "mnesia"), RABBITMQ_LOG_BASE=str(self.root / "log"),
            RABBITMQ_FEATURE_FLAGS_FILE=str(self.root / "feature_flags"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.root / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(self.root / "rabbitmq"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.root / "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=str(self.root / "rabbitmq-env.conf"))

    def start(self) -> None:
        log = open(self.root / "server.log", "wb")
        self.process = subprocess.Popen([SERVER], cwd=self.root, env=self.environment(), stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_SECONDS
        while not listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rabbitmq-server did not listen on {self.port}:\n{self.log()[-3000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"], capture_output=True, timeout=10,
                       env=dict(os.environ, ERL_EPMD_PORT=str(self.epmd_port)))

    def log(self) -> str:
        return (self.root / "server.log").read_text(errors="replace")


@pytest.fixture(scope="session")
def rabbitmq():
    """A running RabbitMQ broker on 127.0.0.1 for the whole session; its ``url`` is for fedora-messaging."""
    if not Path(SERVER).exists():
        raise RuntimeError(f"{SERVER} is missing: run 'make setup' (packaging/system-packages lists rabbitmq-server)")
    broker = Broker(Path(tempfile.mkdtemp(prefix="kkrmq")))
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(broker.root, ignore_errors=True)
