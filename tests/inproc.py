"""The in-process service kit: a real Monitor or RunnerService over ``inproc://``, stepped by a fake clock.

Unit tests drive a service with ``step(now)`` (see ``kiskadee.service.loop``)
and play its peers with sockets of their own: a runner's DEALER on the
monitor's work socket, a real IntakeSender on its intake.
"""

import contextlib
import datetime
from pathlib import Path
from typing import Iterator, Optional

import pytest
import zmq
from harness import database_settings

from kiskadee.config import Config, from_mapping
from kiskadee.core.events import SourceEvent
from kiskadee.service import wire
from kiskadee.service.intake import IntakeSender
from kiskadee.service.loop import Instant
from kiskadee.service.monitor import Monitor

T0 = Instant(1000.0, datetime.datetime(2026, 11, 28, 12, 0, 0))
INTAKE, WORK = "inproc://intake", "inproc://work"


def inproc_settings(tmp_path: Path, database: str = "", **sections: dict) -> Config:
    """A configuration with inproc endpoints and no Debian fetcher, its state in ``tmp_path``; its database
    at ``database`` (a path or a postgresql:// URL, such as the ``db`` fixture's ``db.database``), by default
    kiskadee.db in ``tmp_path``. ``sections`` add to or override its sections (``service={"intake": ...}``
    replaces one key of [service])."""
    mapping = {
        "database": database_settings(database or tmp_path / "kiskadee.db"),
        "service": {"intake": INTAKE, "work": WORK, "state_dir": str(tmp_path / "state")},
        "fetchers": {"debian": {"enabled": False}},
    }
    for name, values in sections.items():
        mapping[name] = {**mapping.get(name, {}), **values}
    return from_mapping(mapping)


@contextlib.contextmanager
def running_monitor(settings: Config, context: zmq.Context, poll_ms: int = 10) -> Iterator[Monitor]:
    """A monitor set up on ``context``, polling briefly so tests step it fast; torn down afterwards."""
    monitor = Monitor(settings, context=context)
    monitor.poll_ms = poll_ms
    monitor.setup()
    try:
        yield monitor
    finally:
        monitor.teardown()


def runner_socket(context: zmq.Context, name: str, endpoint: str = WORK) -> zmq.Socket:
    """A runner's DEALER on the monitor's work socket, played by the test."""
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, name.encode())
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def receive(sock: zmq.Socket, timeout_ms: int = 1000) -> Optional[wire.Message]:
    """The next message on ``sock`` (a ROUTER's sender frame dropped), or None after the timeout."""
    if not sock.poll(timeout_ms):
        return None
    return wire.decode(sock.recv_multipart()[-1])


def exchange(monitor: Monitor, sock: zmq.Socket, frame: bytes, now: Instant = T0, steps: int = 3,
             timeout_ms: int = 200) -> Optional[wire.Message]:
    """Send ``frame`` from a runner's socket, step the monitor; its answer, or None."""
    sock.send(frame)
    for _ in range(steps):
        monitor.step(now)
    return receive(sock, timeout_ms)


def announce(monitor: Monitor, context: zmq.Context, now: Instant = T0, package: str = "hello",
             version: str = "2.10", fetcher: str = "local", source_url: str = "/nowhere") -> None:
    """Send one source event to the monitor's intake and step the monitor until it acknowledged it."""
    with IntakeSender(INTAKE, context) as sender:
        sender.send(SourceEvent(fetcher, package, version, source_url=source_url))
        for _ in range(50):
            monitor.step(now)
            sender.pump(0.02)
            if not sender.pending:
                return
    pytest.fail("the monitor did not acknowledge the event")
