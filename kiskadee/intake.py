"""Sending source events to the monitor's intake socket (fetchers, ``submit``, the bridge)."""

import dataclasses
import logging
from pathlib import Path

import zmq

from kiskadee import wire
from kiskadee.errors import KiskadeeError, EXIT_UNAVAILABLE
from kiskadee.fetchers import SourceEvent

log = logging.getLogger(__name__)

DELIVERY_SECONDS = 30       # how long closing waits for queued events to reach the monitor


class MonitorUnavailable(KiskadeeError):
    exit_code = EXIT_UNAVAILABLE


def event_frame(event: SourceEvent) -> bytes:
    """The wire form of a source event."""
    return wire.encode("source", **dataclasses.asdict(event))


class IntakeSender:
    """A PUSH socket connected to the intake; use as a context manager."""

    def __init__(self, endpoint: str, context: zmq.Context = None):
        if endpoint.startswith("ipc://") and not Path(endpoint[len("ipc://"):]).exists():
            raise MonitorUnavailable(f"no monitor is listening on {endpoint}; start it "
                                     "('kiskadee run', or 'systemctl start kiskadee-monitor.socket')")
        self.endpoint = endpoint
        self.sock = (context or zmq.Context.instance()).socket(zmq.PUSH)
        self.sock.setsockopt(zmq.SNDHWM, 100_000)
        self.sock.setsockopt(zmq.LINGER, DELIVERY_SECONDS * 1000)
        self.sock.connect(endpoint)
        self.sent = 0

    def send(self, event: SourceEvent) -> None:
        self.sock.send(event_frame(event))
        self.sent += 1

    def __enter__(self) -> "IntakeSender":
        return self

    def __exit__(self, *_exc) -> None:
        self.sock.close()
