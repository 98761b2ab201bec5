"""The loop every long-running kiskadee service shares: set up, run steps, shut down.

The loop reads the clock once per turn and hands the reading to ``step``
as an ``Instant``: the services decide every timeout from it (a lease that
ran out, a runner long silent, a message to send again, a child to
restart) and never read the clock themselves, so a test drives a service
in-process with a fake clock, as huey's ``loop(now)`` does.

Signal handlers only count stop requests; ``step`` must return within a
second or so (it polls with a timeout) so the loop notices them. The first
SIGTERM or SIGINT asks for a clean stop; services that do long work look at
``stop_requests`` to tell a second one (abort) from the first.
"""

import dataclasses
import datetime
import logging
import signal
import time

from kiskadee.service.systemd import Notifier

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Instant:
    """One reading of the clock: monotonic seconds for durations, UTC for what the database stores.

    Durations come from ``monotonic`` so that a wall clock stepped back (NTP,
    a board without a real-time clock) delays no restart or re-announcement;
    ``utc`` (naive, as every stored timestamp) is what lease expiries and
    ``last_seen`` are written and compared with.
    """

    monotonic: float
    utc: datetime.datetime

    def later(self, seconds: float) -> "Instant":
        """The instant ``seconds`` after this one, on both clocks: how a fake clock moves."""
        return Instant(self.monotonic + seconds, self.utc + datetime.timedelta(seconds=seconds))

    def since(self, earlier: "Instant") -> float:
        """Seconds from ``earlier`` to this instant."""
        return self.monotonic - earlier.monotonic


def read_clock() -> Instant:
    """The real clock, now."""
    return Instant(time.monotonic(), datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None))


class Service:
    name = "service"

    def __init__(self):
        self.stop_requests = 0
        self.notifier = Notifier()

    def _request_stop(self, signum, _frame) -> None:
        self.stop_requests += 1

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)

    def serve(self) -> int:
        """Run until asked to stop; returns the exit status."""
        self.install_signal_handlers()
        try:
            self.setup()
            self.notifier.ready(f"{self.name} started")
            log.info("%s ready", self.name)
            while not self.should_stop():
                self.step(read_clock())
                self.notifier.watchdog()
            log.info("%s stopping", self.name)
            return 0
        finally:
            self.notifier.stopping()
            self.teardown()

    def should_stop(self) -> bool:
        """True once the loop is to end: at the first stop request unless the service says otherwise."""
        return self.stop_requests > 0

    def setup(self) -> None:
        """Open what the service needs; called once before the loop."""

    def step(self, now: Instant) -> None:
        """One turn of the loop at ``now``; must return within about a second."""
        raise NotImplementedError

    def teardown(self) -> None:
        """Release what ``setup`` opened; called once, also after a failure."""
