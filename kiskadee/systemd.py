"""Every contact with systemd: readiness, status, watchdog, stopping, inherited sockets.

Outside systemd (no NOTIFY_SOCKET, no LISTEN_FDS) each call does nothing, so
services call these unconditionally.
"""

import logging
import os
import time
from typing import Dict, Optional

import sdnotify

log = logging.getLogger(__name__)

SD_LISTEN_FDS_START = 3


class Notifier:
    """sd_notify(3) for one service, with the watchdog paced at half of WATCHDOG_USEC."""

    def __init__(self, environ: Optional[Dict[str, str]] = None, clock=time.monotonic):
        environ = os.environ if environ is None else environ
        self.enabled = bool(environ.get("NOTIFY_SOCKET"))
        self._notifier = sdnotify.SystemdNotifier() if self.enabled else None
        self._clock = clock
        self._last_status = ""
        usec = int(environ.get("WATCHDOG_USEC", "0") or 0)
        pid = environ.get("WATCHDOG_PID")
        wanted = usec > 0 and (pid is None or pid == str(os.getpid()))
        self.watchdog_interval = usec / 2e6 if wanted else 0.0
        self._last_watchdog = 0.0

    def _send(self, text: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(text)

    def ready(self, status: str = "") -> None:
        self._send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> None:
        if text != self._last_status:
            self._last_status = text
            self._send(f"STATUS={text}")

    def watchdog(self) -> None:
        """Tell systemd the main loop made progress, at most every half watchdog period."""
        if not self.watchdog_interval:
            return
        now = self._clock()
        if now - self._last_watchdog >= self.watchdog_interval:
            self._last_watchdog = now
            self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")


def listen_fds(environ: Optional[Dict[str, str]] = None) -> Dict[str, int]:
    """Sockets passed by systemd socket activation, by FileDescriptorName; {} without them."""
    environ = os.environ if environ is None else environ
    if environ.get("LISTEN_PID") != str(os.getpid()):
        return {}
    count = int(environ.get("LISTEN_FDS", "0") or 0)
    names = (environ.get("LISTEN_FDNAMES") or "").split(":")
    return {
        names[i] if i < len(names) and names[i] else f"fd{i}": SD_LISTEN_FDS_START + i
        for i in range(count)
    }
