"""The bridge's hand-off to the monitor: an outbox that never waits, and the counts.

fedmsg-hub delivers messages on its Twisted reactor thread, which must never
wait for the monitor. ``Outbox.offer`` hands an event straight to the
intake's ``IntakeSender`` while the monitor keeps up (its ``send`` returns
at once as long as fewer than ``intake.WINDOW`` events are unacknowledged),
holds it in a bounded queue otherwise, and drops it (counted) when that
queue is full. ``tick``, called periodically on the same thread, connects
(retrying while no monitor listens), reads acknowledgements (the sender
re-sends what a restarted monitor lost), moves held events on and reports
the counts. ``close``, when the bridge stops, keeps connecting, sending and
reading acknowledgements for a bounded time and logs what did not reach the
monitor. Everything runs on one thread: ZeroMQ sockets are not
thread-safe, and a second busy Python thread would make the reactor wait
for the GIL on every socket call.
"""

import collections
import logging
import time
from typing import Deque, Optional

import zmq

from kiskadee.config import ServiceConfig
from kiskadee.core.events import SourceEvent
from kiskadee.errors import KiskadeeError
from kiskadee.service.intake import WINDOW, IntakeSender, MonitorUnavailable

log = logging.getLogger(__name__)

WARNINGS_PER_REPORT = 100       # drops logged one by one per report interval; beyond, only counted
TICK_SECONDS = 0.1              # how often to tick; during a flood ``offer`` ticks (the reactor's timers wait)
STOP_SECONDS = 5.0              # how long stopping waits for the monitor to take the rest
CLOSE_RETRY_SECONDS = 0.2       # while closing, how often to try an unreachable monitor again


class Tally:
    """What a consumer received, forwarded and dropped (by reason); reported periodically.

    Not thread-safe: the bridge uses it on the reactor thread only, and
    fedora-messaging calls its consumer's callback one message at a time.
    """

    def __init__(self, name: str, report_seconds: float, now: Optional[float] = None):
        self.name = name
        self.report_seconds = report_seconds
        self.counts: "collections.Counter[str]" = collections.Counter()
        self.dropped: "collections.Counter[str]" = collections.Counter()
        self._last_report = time.monotonic() if now is None else now
        self._reported_totals = (0, 0, 0)       # (received, dropped, waiting) at the last report

    def count(self, what: str) -> None:
        """Count one message ``received`` or one event ``forwarded``."""
        self.counts[what] += 1

    def drop(self, reason: str, detail: str, number: int = 1) -> None:
        """Count dropped messages and log why (one by one, up to a limit per report interval)."""
        self.dropped[reason] += number
        total = sum(self.dropped.values())
        recent = total - self._reported_totals[1]
        if recent <= WARNINGS_PER_REPORT:
            log.warning("%s dropped a message (%s; %d dropped so far): %s", self.name, reason, total, detail)
        elif recent - number < WARNINGS_PER_REPORT + 1:
            log.warning("%s: over %d drops since the last report; counting the rest without a line each",
                        self.name, WARNINGS_PER_REPORT)

    def summary(self, waiting: int = 0) -> str:
        """One line: received, forwarded, dropped by reason, and the events still waiting."""
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.dropped.items()))
        dropped = sum(self.dropped.values())
        return (f"{self.name}: received {self.counts['received']}, forwarded {self.counts['forwarded']}, "
                f"dropped {dropped}{f' ({reasons})' if reasons else ''}, waiting {waiting}")

    def report(self, now: float, waiting: int = 0, force: bool = False) -> None:
        """Log the summary when the interval has passed and something changed: a warning if messages
        were dropped since the last report, else at info level."""
        if not force and now - self._last_report < self.report_seconds:
            return
        totals = (self.counts["received"], sum(self.dropped.values()), waiting)
        changed, new_drops = totals != self._reported_totals, totals[1] > self._reported_totals[1]
        self._last_report, self._reported_totals = now, totals
        if changed or force:
            log.log(logging.WARNING if new_drops else logging.INFO, "%s", self.summary(waiting))


class Outbox:
    """Source events on their way to the monitor's intake, handled on one thread without waiting."""

    def __init__(self, endpoint: str, capacity: int, tally: Tally, retry_seconds: float,
                 service: Optional[ServiceConfig] = None):
        """``service``: the configuration whose CurveZMQ keys a tcp:// ``endpoint`` needs."""
        self.endpoint = endpoint
        self.service = service
        self.capacity = capacity
        self.tally = tally
        self.retry_seconds = retry_seconds
        self.held: Deque[SourceEvent] = collections.deque()
        self.sender: Optional[IntakeSender] = None
        self._next_connect = 0.0
        self._last_tick = 0.0
        self._outage = False                # the last connection attempt failed

    @property
    def waiting(self) -> int:
        """Events held here or sent and not yet acknowledged by the monitor."""
        return len(self.held) + (self.sender.pending if self.sender else 0)

    def offer(self, event: SourceEvent) -> None:
        """Send an event, or hold it while the monitor is away or behind; drop it (counted) when full."""
        now = time.monotonic()
        if now - self._last_tick >= TICK_SECONDS:   # the reactor runs no timer while messages pour in
            self.tick(now)
        if not self.held and self._has_room():
            self._send(event)
        elif len(self.held) < self.capacity:
            self.held.append(event)
        else:
            self.tally.drop("queue full", f"{self.capacity} events already wait for the monitor; "
                                          f"{event.package} {event.version} lost")

    def tick(self, now: float) -> None:
        """Connect if need be, read acknowledgements, send held events, report the counts."""
        self._last_tick = now
        if self.sender is None and now >= self._next_connect:
            self._connect(now)
        if self.sender is not None:
            self.sender.pump()
            while self.held and self._has_room():
                self._send(self.held.popleft())
        self.tally.report(now, self.waiting)

    def close(self, timeout: float) -> int:
        """Keep sending held events and reading acknowledgements for up to ``timeout`` seconds, until the
        monitor acknowledged every event; log how many it took and how many are lost, return the latter."""
        start = time.monotonic()
        deadline, waiting = start + timeout, self.waiting
        while self.waiting and time.monotonic() < deadline:
            self._deliver(deadline)
        held, unacknowledged = len(self.held), self._close_sender()
        lost = held + unacknowledged
        if not lost:
            log.info("%s stopped: the monitor acknowledged all %d events that were waiting (%.1f s)",
                     self.tally.name, waiting, time.monotonic() - start)
        else:
            self.tally.dropped["shutdown"] += lost     # counted for the summary; the error below says why
            log.error("%s stopped: %d of the %d events that were waiting did not reach the monitor within "
                      "%.0f s (%d held, %d sent and not acknowledged) and are lost; 'kiskadee fetch anitya' "
                      "fetches the versions Anitya announced while nothing listened",
                      self.tally.name, lost, waiting, timeout, held, unacknowledged)
        self.tally.report(time.monotonic(), force=True)
        return lost

    def _deliver(self, deadline: float) -> None:
        """One step of closing: connect, send what is held, wait a little for acknowledgements."""
        now = time.monotonic()
        if self.sender is None:
            self._connect(now)
        if self.sender is None:
            time.sleep(max(0.0, min(CLOSE_RETRY_SECONDS, deadline - now)))
            return
        while self.held and self._has_room():
            self._send(self.held.popleft())
        self.sender.pump(max(0.0, min(0.5, deadline - time.monotonic())))

    def _close_sender(self) -> int:
        """Close the connection to the monitor; the number of events it did not acknowledge."""
        if self.sender is None:
            return 0
        try:
            self.sender.close(timeout=0)
        except MonitorUnavailable:      # close() logs the count and what to do instead
            pass
        return self.sender.pending

    def _has_room(self) -> bool:
        return self.sender is not None and self.sender.pending < WINDOW

    def _connect(self, now: float) -> None:
        try:
            self.sender = IntakeSender(self.endpoint, service=self.service)
        except (KiskadeeError, zmq.ZMQError) as exc:
            self._next_connect = now + self.retry_seconds
            if not self._outage:
                log.warning("%s: cannot reach the monitor; holding up to %d events, retrying every %.0f s: %s",
                            self.tally.name, self.capacity, self.retry_seconds, exc)
            self._outage = True
            return
        if self._outage:
            log.info("%s: connected to the monitor at %s again", self.tally.name, self.endpoint)
        self._outage = False

    def _send(self, event: SourceEvent) -> None:
        self.sender.send(event)
        self.tally.count("forwarded")
