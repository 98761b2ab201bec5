"""Lossless intake: a monitor killed (SIGKILL) several times while a producer keeps sending.

A real monitor process on ipc sockets and a fresh SQLite database; the
producer is kiskadee.service.intake.IntakeSender at a steady rate. Two ways to
restart, both measured:
  - activated: the bench holds the listening sockets and passes them to
    each monitor as systemd's socket units do (LISTEN_FDS, zmq.USE_FD);
  - bound: each monitor binds the ipc paths itself, as under 'kiskadee run'.
Each monitor is killed events/rate/(kills+1) seconds after it started recording; the stream
goes on until the last restart. Prints per mode: events sent, recorded,
lost (must be 0), re-sent (duplicates the monitor answers "known"),
restarts and wall time.

Run: .venv/bin/python bench/intake_restart.py [--events N] [--rate R] [--kills K]
"""

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kiskadee.core.events import SourceEvent
from kiskadee.service.intake import IntakeSender

ACTIVATE = """
import os, sys
os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="2", LISTEN_FDNAMES="intake:work")
os.execv(sys.executable, [sys.executable] + sys.argv[3:])
"""


class Monitor:
    """A monitor process restarted on demand, with or without sockets held across restarts."""

    def __init__(self, root: Path, activated: bool):
        self.root, self.activated = root, activated
        (root / "run").mkdir()
        self.config = root / "k.toml"
        self.config.write_text(f'[database]\npath = "{root / "k.db"}"\n[service]\nruntime_dir = "{root / "run"}"\n')
        self.listeners = [self._listen(name) for name in ("intake", "work")] if activated else []
        self.fds = [os.dup(sock.fileno()) for sock in self.listeners]
        self.process = None
        self.restarts = -1

    def _listen(self, name: str) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.root / "run" / f"{name}.sock"))
        sock.listen(128)
        return sock

    def start(self) -> None:
        command = ["-m", "kiskadee", "-q", "-c", str(self.config), "monitor"]
        if self.activated:
            command = ["-c", ACTIVATE, *map(str, self.fds)] + command
        self.process = subprocess.Popen([sys.executable, *command], pass_fds=self.fds)
        self.restarts += 1
        deadline = time.monotonic() + 30
        while not (self.root / "run" / "intake.sock").exists():
            if time.monotonic() > deadline:
                raise SystemExit("the monitor did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def recorded(self) -> int:
        with sqlite3.connect(self.root / "k.db", timeout=30) as connection:
            return connection.execute("SELECT COUNT(*) FROM version").fetchone()[0]

    def recorded_since(self, before: int) -> int:
        """Versions recorded beyond ``before`` (0 while the database does not exist yet)."""
        try:
            return self.recorded() - before
        except sqlite3.OperationalError:    # not created or not migrated yet
            return 0

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        for fd in self.fds:
            os.close(fd)
        for sock in self.listeners:
            sock.close()


def produce(monitor: Monitor, events: int, rate: float, kills: int) -> dict:
    """Send at least ``events`` at ``rate`` per second while a thread kills the monitor ``kills`` times."""
    duration = events / rate
    stop = threading.Event()

    def killer():
        for _ in range(kills):
            serving = monitor.recorded_since(0)
            while not stop.is_set() and monitor.recorded_since(serving) == 0:
                time.sleep(0.05)            # kill a monitor only once it records: events are in flight
            if stop.wait(duration / (kills + 1)):
                return
            monitor.kill()
            monitor.start()

    thread = threading.Thread(target=killer)
    started = time.monotonic()
    thread.start()
    try:
        with IntakeSender(f"ipc://{monitor.root}/run/intake.sock") as intake:
            while intake.sent < events or thread.is_alive():     # the stream outlasts the last restart
                intake.send(SourceEvent("local", f"pkg{intake.sent:07d}", "1.0"))
                if intake.sent % 100 == 0:
                    intake.pump()
                    time.sleep(max(0.0, started + intake.sent / rate - time.monotonic()))
            thread.join()
            delivered = intake.flush(120)
    finally:
        stop.set()
        thread.join()
    return {"sent": intake.sent, "resent": intake.resent, "delivered": delivered,
            "seconds": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--rate", type=float, default=2_000.0, help="events per second")
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    for activated in (True, False):
        with tempfile.TemporaryDirectory(prefix="kkr") as tmp:
            monitor = Monitor(Path(tmp), activated)
            monitor.start()
            try:
                outcome = produce(monitor, args.events, args.rate, args.kills)
                recorded = monitor.recorded()
            finally:
                monitor.close()
        print(f"{'activated' if activated else 'bound':9}: sent {outcome['sent']:,}, recorded {recorded:,}, "
              f"lost {outcome['sent'] - recorded:,}, re-sent {outcome['resent']:,}, "
              f"restarts {monitor.restarts}, {outcome['seconds']:.1f} s")


if __name__ == "__main__":
    main()
