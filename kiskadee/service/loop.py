"""The loop every long-running kiskadee service shares: set up, run steps, shut down.

Signal handlers only count stop requests; ``step`` must return within a
second or so (it polls with a timeout) so the loop notices them. The first
SIGTERM or SIGINT asks for a clean stop; services that do long work look at
``stop_requests`` to tell a second one (abort) from the first.
"""

import logging
import signal

from kiskadee.service.systemd import Notifier

log = logging.getLogger(__name__)


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
            while not self.stop_requests:
                self.step()
                self.notifier.watchdog()
            log.info("%s stopping", self.name)
            return 0
        finally:
            self.notifier.stopping()
            self.teardown()

    def setup(self) -> None:
        """Open what the service needs; called once before the loop."""

    def step(self) -> None:
        """One turn of the loop; must return within about a second."""
        raise NotImplementedError

    def teardown(self) -> None:
        """Release what ``setup`` opened; called once, also after a failure."""
