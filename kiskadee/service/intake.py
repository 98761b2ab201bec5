"""The intake protocol: source events from fetchers, ``submit`` and the bridge to the monitor.

A sender's DEALER socket sends each event as two frames, an 8-byte
big-endian sequence number and the ``source`` message. The monitor's intake
ROUTER records a batch in one transaction and only then answers each sender
with a ``recorded`` message listing the sequence numbers it committed. The
sender keeps every event until it is acknowledged and sends again whatever
is still unacknowledged when its connection comes back (the monitor
restarted) or when nothing was acknowledged for ``RESEND_SECONDS``. An
event may so arrive twice; the monitor's catalog answers "known" to the
second copy, so a monitor restart loses no event and records none twice.

An event the monitor refuses (malformed, over a limit, a version its
origin's rules do not allow) is answered with a ``rejected`` message naming
its sequence numbers and the reason: the sender stops sending it and keeps
the reason in ``rejected`` (``kiskadee submit`` prints it and exits 4).

A single-frame message (no sequence number) is still recorded, without an
acknowledgement: a fire-and-forget peer such as a test's raw DEALER.
"""

import dataclasses
import grp
import logging
import os
import struct
import time
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

import zmq
from zmq.utils.monitor import recv_monitor_message

from kiskadee.config import LimitsConfig, ServiceConfig
from kiskadee.core.events import SourceEvent
from kiskadee.errors import EXIT_SOURCE, EXIT_UNAVAILABLE, KiskadeeError
from kiskadee.service import curve, wire

log = logging.getLogger(__name__)

DELIVERY_SECONDS = 30       # how long closing waits for the monitor to acknowledge every event
WINDOW = 50_000             # unacknowledged events a sender holds before it waits for acknowledgements
RESEND_SECONDS = 30.0       # connected, events outstanding, no acknowledgement this long: send them again
PUMP_EVERY = 256            # a sender reads acknowledgements after this many sends
HEARTBEAT_MS = 5_000        # ZMTP heartbeats notice a tcp:// peer that vanished without closing
_SEQ = struct.Struct(">Q")
_CONNECTION_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
REJECTIONS_LOGGED = 20      # rejections a sender logs one by one; beyond, only counted


class MonitorUnavailable(KiskadeeError):
    """No monitor listens, or it did not acknowledge the events sent to it in time."""

    exit_code = EXIT_UNAVAILABLE


class EventRejected(KiskadeeError):
    """The monitor refused an event for good (malformed, over a limit, not a version); the text says why."""

    exit_code = EXIT_SOURCE


def check_may_send(endpoint: str) -> None:
    """MonitorUnavailable, saying why, if this user may not send to the ipc:// ``endpoint``'s socket.

    ZeroMQ would keep trying to connect in silence; a person waiting for
    'kiskadee submit' should hear at once that the socket is not theirs.
    """
    path = Path(endpoint[len("ipc://"):]) if endpoint.startswith("ipc://") else None
    if path is None or not path.exists() or os.access(path, os.W_OK):
        return
    status = path.stat()
    try:
        group = grp.getgrgid(status.st_gid).gr_name
    except KeyError:
        group = str(status.st_gid)
    who = (f"members of the group {group!r} may (an admin adds you: usermod -aG {group} $USER)"
           if status.st_mode & 0o020 else "only its owner may")
    raise MonitorUnavailable(f"permission denied: {path}: sending events to the monitor takes write "
                             f"access to its intake socket, which {who}")


class Delivery(NamedTuple):
    """One event as the monitor's intake received it."""

    peer: bytes                 # the sender's ROUTER identity, to answer it
    seq: Optional[int]          # None: a single-frame event, recorded without an answer
    frame: bytes


def event_frame(event: SourceEvent) -> bytes:
    """The wire form of a source event.

    Field by field rather than ``dataclasses.asdict``, whose deep copy of ``meta``
    took a third of the fedmsg bridge's time per message.
    """
    return wire.encode("source", **{field.name: getattr(event, field.name) for field in dataclasses.fields(event)})


def seq_ranges(seqs: Iterable[int]) -> List[List[int]]:
    """Sequence numbers as sorted inclusive [first, last] ranges: 1,2,3,7 -> [[1, 3], [7, 7]]."""
    ranges: List[List[int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges


class IntakeSender:
    """Sends source events to the monitor until it acknowledges them; use as a context manager.

    ``send`` returns at once (it waits only when ``WINDOW`` events are
    unacknowledged); leaving the ``with`` block waits up to
    ``DELIVERY_SECONDS`` for the acknowledgement of every event and raises
    MonitorUnavailable for those still unacknowledged. A long-lived sender
    (the bridge) calls ``pump()`` now and then so re-sending does not wait
    for its next event.
    """

    def __init__(self, endpoint: str, context: Optional[zmq.Context] = None,
                 service: Optional[ServiceConfig] = None, limits: LimitsConfig = wire.DEFAULT_LIMITS):
        """``service``: the configuration whose CurveZMQ keys a tcp:// ``endpoint`` needs (curve.secure_client);
        ``limits``: an event larger than the intake takes is rejected here, not sent."""
        if endpoint.startswith("ipc://") and not Path(endpoint[len("ipc://"):]).exists():
            raise MonitorUnavailable(f"no monitor is listening on {endpoint}; start it "
                                     "('kiskadee run', or 'systemctl start kiskadee.target')")
        check_may_send(endpoint)
        self.endpoint = endpoint
        self.sock = (context or zmq.Context.instance()).socket(zmq.DEALER)
        for option, value in ((zmq.SNDHWM, 0), (zmq.RCVHWM, 0), (zmq.LINGER, 0),
                              (zmq.HEARTBEAT_IVL, HEARTBEAT_MS), (zmq.HEARTBEAT_TIMEOUT, 3 * HEARTBEAT_MS),
                              (zmq.MAXMSGSIZE, limits.intake_message_bytes)):
            self.sock.setsockopt(option, value)
        self.max_bytes = limits.intake_message_bytes
        if service is not None:
            try:
                curve.secure_client(self.sock, endpoint, service, "submitter")
            except KiskadeeError:
                self.sock.close(linger=0)
                raise
        self.connection = self.sock.get_monitor_socket(_CONNECTION_EVENTS)
        self.sock.connect(endpoint)
        self.unacked: Dict[int, bytes] = {}
        self.rejected: Dict[int, str] = {}     # sequence number -> why the monitor refused it, for good
        self.sent = 0               # events handed to send(), not counting re-sends
        self.resent = 0             # events sent again after a reconnection or a silence
        self.connected = False
        self._next_seq = 1
        self._handshakes = 0
        self._last_progress = time.monotonic()

    @property
    def pending(self) -> int:
        """Events sent but not yet acknowledged by the monitor."""
        return len(self.unacked)

    def send(self, event: SourceEvent) -> None:
        """Send one source event."""
        self.send_frame(event_frame(event))

    def send_frame(self, frame: bytes) -> None:
        """Send one encoded ``source`` message (see ``event_frame``)."""
        if len(self.unacked) >= WINDOW:
            self._wait_for_room()
        seq = self._next_seq
        self._next_seq += 1
        if len(frame) > self.max_bytes:     # the monitor's socket would drop the connection over it
            self._rejected([[seq, seq]], f"event of {len(frame)} bytes is over the intake's limit of "
                                         f"{self.max_bytes} bytes")
            return
        self.unacked[seq] = frame
        self.sock.send(_SEQ.pack(seq), zmq.SNDMORE)     # two sends beat send_multipart on small frames
        self.sock.send(frame)
        self.sent += 1
        if seq % PUMP_EVERY == 0:
            self.pump()

    def pump(self, timeout: float = 0.0) -> None:
        """Read acknowledgements and connection changes for up to ``timeout`` seconds; re-send as needed."""
        deadline = time.monotonic() + timeout
        while True:
            self._drain_connection_events()
            self._drain_acknowledgements()
            self._resend_if_silent()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.unacked:
                return
            zmq.select([self.sock, self.connection], [], [], min(remaining, 0.5))

    def flush(self, timeout: float = DELIVERY_SECONDS) -> bool:
        """Wait until the monitor acknowledged every event; False if some are still pending."""
        deadline = time.monotonic() + timeout
        self.pump()
        while self.unacked and time.monotonic() < deadline:
            self.pump(min(0.5, max(0.0, deadline - time.monotonic())))
        return not self.unacked

    def close(self, timeout: float = DELIVERY_SECONDS) -> None:
        """Flush, then close; MonitorUnavailable if events remain unacknowledged."""
        try:
            delivered = self.flush(timeout)
        finally:
            self.sock.disable_monitor()
            self.connection.close(linger=0)
            self.sock.close(linger=0)
        if not delivered:
            raise MonitorUnavailable(f"the monitor on {self.endpoint} did not acknowledge {len(self.unacked)} "
                                     f"of {self.sent} events within {timeout:.0f} s; they were not recorded")

    def __enter__(self) -> "IntakeSender":
        return self

    def __exit__(self, exc_type, _exc, _tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:                        # the caller's error matters more than what is left unsent
            self.close(timeout=1.0)
        except MonitorUnavailable as exc:
            log.warning("%s", exc)

    # internals ----------------------------------------------------------------

    def _wait_for_room(self) -> None:
        deadline = time.monotonic() + DELIVERY_SECONDS
        while len(self.unacked) >= WINDOW:
            if time.monotonic() > deadline:
                raise MonitorUnavailable(f"the monitor on {self.endpoint} acknowledged nothing for "
                                         f"{DELIVERY_SECONDS} s with {len(self.unacked)} events outstanding")
            self.pump(0.5)

    def _drain_acknowledgements(self) -> None:
        while True:
            try:
                frame = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                message = wire.decode(frame)
            except wire.WireError as exc:
                log.warning("ignoring a malformed message from the monitor's intake: %s", exc)
                continue
            if message.type == "rejected":
                self._rejected(message.fields["seqs"], message.fields["reason"])
            elif message.type != "recorded":
                log.warning("ignoring a %s message from the monitor's intake", message.type)
                continue
            for first, last in message.fields["seqs"]:
                for seq in range(first, last + 1):
                    self.unacked.pop(seq, None)
            self._last_progress = time.monotonic()

    def _rejected(self, spans: List[List[int]], reason: str) -> None:
        """Keep why these events were refused; they are never sent again."""
        for first, last in spans:
            for seq in range(first, min(last, self._next_seq - 1) + 1):   # only numbers this sender used
                self.unacked.pop(seq, None)
                self.rejected[seq] = reason
                if len(self.rejected) <= REJECTIONS_LOGGED:
                    log.warning("the monitor rejected event %d: %s", seq, reason)
                elif len(self.rejected) == REJECTIONS_LOGGED + 1:
                    log.warning("more events rejected; counting them without a line each")

    def _drain_connection_events(self) -> None:
        while self.connection.poll(0):
            event = recv_monitor_message(self.connection)["event"]
            if event == zmq.EVENT_DISCONNECTED:
                self.connected = False
                log.info("intake connection to %s lost; %d events unacknowledged", self.endpoint, len(self.unacked))
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.connected = True
                self._handshakes += 1
                if self._handshakes > 1:        # a new monitor: what the old one held is gone
                    self._resend("reconnected")

    def _resend_if_silent(self) -> None:
        if self.unacked and self.connected and time.monotonic() - self._last_progress > RESEND_SECONDS:
            self._resend(f"no acknowledgement for {RESEND_SECONDS:.0f} s")

    def _resend(self, why: str) -> None:
        if self.unacked:
            log.info("%s: sending %d unacknowledged events again to %s", why, len(self.unacked), self.endpoint)
        for seq, frame in self.unacked.items():
            self.sock.send_multipart([_SEQ.pack(seq), frame])
        self.resent += len(self.unacked)
        self._last_progress = time.monotonic()


class IntakeReceiver:
    """The monitor's side: a ROUTER that yields events and answers each sender once a batch is committed."""

    def __init__(self, sock: zmq.Socket):
        self.sock = sock
        self.malformed = 0          # messages whose envelope was not 1 or 2 frames

    def receive(self, limit: int) -> List[Delivery]:
        """Up to ``limit`` waiting events, each with its sender and sequence number."""
        deliveries: List[Delivery] = []
        while len(deliveries) < limit:
            try:
                parts = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            seq = None
            if len(parts) == 3 and len(parts[1]) == _SEQ.size:
                seq = _SEQ.unpack(parts[1])[0]
            elif len(parts) != 2:
                self.malformed += 1     # its last frame is still read as the event, and refused if it is none
                if self.malformed <= REJECTIONS_LOGGED:
                    log.warning("intake message of %d frames; expected a sequence number and an event",
                                len(parts) - 1)
            deliveries.append(Delivery(parts[0], seq, parts[-1]))
        return deliveries

    def acknowledge(self, seqs: Dict[bytes, List[int]]) -> None:
        """Tell each sender which of its events are committed; call only after the commit."""
        for peer, numbers in seqs.items():
            self._answer(peer, wire.encode("recorded", seqs=seq_ranges(numbers)))

    def reject(self, seqs: Dict[Tuple[bytes, str], List[int]]) -> None:
        """Tell each sender which of its events are refused for good, and why: (sender, reason) -> numbers."""
        for (peer, reason), numbers in seqs.items():
            self._answer(peer, wire.encode("rejected", seqs=seq_ranges(numbers), reason=wire.reason_text(reason)))

    def _answer(self, peer: bytes, frame: bytes) -> None:
        try:
            self.sock.send_multipart([peer, frame], zmq.NOBLOCK)
        except zmq.ZMQError as exc:         # the sender is gone: it re-sends to the next monitor
            log.info("cannot answer intake sender %r: %s", peer, exc)
