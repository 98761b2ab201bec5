"""The intake protocol with a real monitor process: acknowledged means committed, lost means re-sent."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq
from harness import write_config

from kiskadee.core.events import SourceEvent
from kiskadee.service.intake import IntakeSender, MonitorUnavailable

# Starts a command the way systemd starts a socket-activated service: the
# listening sockets as file descriptors 3 and 4, named by LISTEN_FDNAMES.
ACTIVATE = """
import os, sys
intake, work = int(sys.argv[1]), int(sys.argv[2])
os.dup2(intake, 3); os.dup2(work, 4); os.close(intake); os.close(work)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="2", LISTEN_FDNAMES="intake:work")
os.execv(sys.executable, [sys.executable] + sys.argv[3:])
"""


def listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(128)
    return sock


class ActivatedMonitor:
    """A monitor whose sockets the test holds across restarts, as systemd's socket units do."""

    def __init__(self, root: Path):
        self.root, self.db = root, root / "k.db"
        (root / "run").mkdir()
        self.config = write_config(root / "k.toml", {"database": f'path = "{self.db}"',
                                                     "service": f'runtime_dir = "{root / "run"}"'})
        self.sockets = [listener(root / "run" / "intake.sock"), listener(root / "run" / "work.sock")]
        self.fds = [os.dup(s.fileno()) for s in self.sockets]     # high numbers, inheritable below
        self.process = None
        self.starts = 0

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", ACTIVATE, *map(str, self.fds), "-m", "kiskadee", "-q", "-c", str(self.config),
             "monitor"], pass_fds=self.fds)
        self.starts += 1

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def recorded(self) -> int:
        try:
            with sqlite3.connect(self.db, timeout=30) as connection:
                return connection.execute("SELECT COUNT(*) FROM version").fetchone()[0]
        except sqlite3.OperationalError:        # not created or not migrated yet
            return 0

    def wait_until_recording(self, stop: threading.Event) -> None:
        """Until this monitor records events (so some are in flight to it), or ``stop``."""
        before = self.recorded()
        deadline = time.monotonic() + 60
        while not stop.is_set() and self.recorded() == before and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        for fd in self.fds:
            os.close(fd)
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def monitor(short_tmp):
    running = ActivatedMonitor(short_tmp)
    running.start()
    yield running
    running.close()


def events(count, prefix="pkg"):
    return [SourceEvent("local", f"{prefix}{i:06d}", "1.0") for i in range(count)]


def test_leaving_the_sender_means_every_event_is_committed(monitor):
    with IntakeSender(f"ipc://{monitor.root}/run/intake.sock") as intake:
        for event in events(3000):
            intake.send(event)
    assert intake.sent == 3000 and intake.pending == 0
    assert monitor.recorded() == 3000           # no waiting: acknowledged only after the commit


@pytest.mark.slow
def test_monitor_killed_repeatedly_under_a_steady_stream_loses_no_event(monitor):
    """Three kill -9 restarts, each a second into a monitor's work, while events stream in."""
    stop = threading.Event()

    def restart_three_times():
        for _ in range(3):
            monitor.wait_until_recording(stop)
            if stop.wait(1.0):
                return
            monitor.kill()
            monitor.start()

    killer = threading.Thread(target=restart_three_times)
    killer.start()
    try:
        deadline = time.monotonic() + 120
        with IntakeSender(f"ipc://{monitor.root}/run/intake.sock") as intake:
            while (intake.sent < 20_000 or killer.is_alive()) and time.monotonic() < deadline:
                intake.send(SourceEvent("local", f"pkg{intake.sent:06d}", "1.0"))
                if intake.sent % 200 == 0:  # about 2,000 events a second, until the third restart is done
                    intake.pump()
                    time.sleep(0.1)
            assert intake.flush(60), f"{intake.pending} events never acknowledged"
    finally:
        stop.set()
        killer.join(60)
    assert monitor.starts == 4
    assert intake.resent > 0                    # the restarts did cost events in flight, and they came back
    assert monitor.recorded() == intake.sent >= 20_000


def test_a_monitor_that_never_acknowledges_is_reported(short_tmp):
    context = zmq.Context()
    silent = context.socket(zmq.ROUTER)         # takes events, never answers
    silent.bind(f"ipc://{short_tmp}/intake.sock")
    try:
        intake = IntakeSender(f"ipc://{short_tmp}/intake.sock", context=context)
        intake.send(SourceEvent("local", "hello", "2.10"))
        started = time.monotonic()
        with pytest.raises(MonitorUnavailable, match="did not acknowledge 1 of 1 events"):
            intake.close(timeout=1.0)
        assert time.monotonic() - started < 5
    finally:
        silent.close(linger=0)
        context.term()


def test_submit_waits_for_a_socket_activated_monitor(short_tmp):
    """The first event reaches a monitor that is not running yet: systemd holds the socket."""
    activated = ActivatedMonitor(short_tmp)
    try:
        sender = IntakeSender(f"ipc://{short_tmp}/run/intake.sock")
        sender.send(SourceEvent("local", "hello", "2.10"))
        assert not sender.flush(1.0)            # nobody has accepted the connection yet
        activated.start()                       # what systemd does on the first connection
        assert sender.flush(30)
        sender.close()
        assert activated.recorded() == 1
    finally:
        activated.close()
