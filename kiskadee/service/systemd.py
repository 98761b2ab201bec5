"""Every contact with systemd: readiness, status, watchdog, stopping, inherited sockets.

Outside systemd (no NOTIFY_SOCKET, no LISTEN_FDS) each call does nothing, so
services call these unconditionally.

Notifications are sent here rather than through sdnotify, which connects
once in its constructor (a notification socket that appears or is recreated
later never gets anything), reads only os.environ and encodes as Latin-1,
which systemd drops; tests/unit/test_sdnotify_cases.py shows each case.

Test hook: ``KISKADEE_TEST_STALL_AFTER=SECONDS`` in a service's environment
makes its main loop hang for good that many seconds after start, at its
next watchdog ping, as a deadlocked loop would. It exists so the tests can
show that systemd's watchdog restarts a stalled monitor; never set it
anywhere else.
"""

import logging
import os
import socket
import stat
import time
from pathlib import Path
from typing import Callable, Dict, List, Mapping, MutableMapping, Optional

import zmq

from kiskadee.errors import EXIT_UNAVAILABLE, KiskadeeError

log = logging.getLogger(__name__)

SD_LISTEN_FDS_START = 3
STALL_HOOK = "KISKADEE_TEST_STALL_AFTER"
_LISTEN_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class InheritedSocketError(KiskadeeError):
    """A socket passed by systemd is not one kiskadee can serve (not a listening stream socket)."""

    exit_code = EXIT_UNAVAILABLE


class Notifier:
    """sd_notify(3) for one service, with the watchdog paced at half of WATCHDOG_USEC."""

    def __init__(self, environ: Optional[Mapping[str, str]] = None, clock: Callable[[], float] = time.monotonic):
        environ = os.environ if environ is None else environ
        self.address = _notify_address(environ.get("NOTIFY_SOCKET", ""))
        self.enabled = self.address is not None
        self._socket: Optional[socket.socket] = None
        self._clock = clock
        self._last_status = ""
        self._failed = False
        usec = int(environ.get("WATCHDOG_USEC", "0") or 0)
        pid = environ.get("WATCHDOG_PID")
        wanted = usec > 0 and (pid is None or pid == str(os.getpid()))
        self.watchdog_interval = usec / 2e6 if wanted else 0.0
        self._last_watchdog = float("-inf")
        stall = float(environ.get(STALL_HOOK, "0") or 0)
        self.stall_at = clock() + stall if stall > 0 else None

    def send(self, text: str) -> None:
        """Send one notification; a failure is logged once as a warning and otherwise ignored."""
        if self.address is None:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # systemd takes UTF-8 only; a name os.fsdecode could not decode must not crash the loop.
            self._socket.sendto(text.encode("utf-8", "replace"), self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd on %r: %s", self.address, exc)
            self._failed = True

    def ready(self, status: str = "") -> None:
        """READY=1: sockets are bound and the database is open."""
        self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))
        self._last_status = status

    def status(self, text: str) -> None:
        """STATUS= line shown by 'systemctl status'; only sent when it changed."""
        if text != self._last_status:
            self._last_status = text
            self.send(f"STATUS={text}")

    def watchdog(self) -> None:
        """Tell systemd the main loop made progress, at most every half watchdog period."""
        now = self._clock()
        if self.stall_at is not None and now >= self.stall_at:
            self._stall()
        if not self.watchdog_interval:
            return
        if now - self._last_watchdog >= self.watchdog_interval:
            self._last_watchdog = now
            self.send("WATCHDOG=1")

    def stopping(self) -> None:
        """STOPPING=1: the service is shutting down."""
        self.send("STOPPING=1\nSTATUS=stopping")

    def _stall(self) -> None:
        log.warning("%s is set: the main loop stalls now, as a hung loop would", STALL_HOOK)
        self.send("STATUS=stalled on purpose (test hook)")
        while True:                 # ended by the watchdog's SIGABRT, or SIGKILL
            time.sleep(3600)


def _notify_address(value: str) -> Optional[str]:
    if not value or value[0] not in "/@":
        return None
    return "\0" + value[1:] if value[0] == "@" else value


def listen_fds(environ: Optional[MutableMapping[str, str]] = None, unset: bool = False) -> Dict[str, List[int]]:
    """Sockets passed by systemd socket activation, by FileDescriptorName; {} without them.

    Several sockets may share a name (a socket unit with two ListenStream=
    lines). With ``unset`` the LISTEN_* variables are removed afterwards,
    as sd_listen_fds(1) does, so no child mistakes them for its own.
    """
    environ = os.environ if environ is None else environ
    fds: Dict[str, List[int]] = {}
    if environ.get("LISTEN_PID") == str(os.getpid()):
        count = int(environ.get("LISTEN_FDS", "0") or 0)
        names = (environ.get("LISTEN_FDNAMES") or "").split(":")
        for i in range(count):
            name = names[i] if i < len(names) and names[i] else "unknown"
            fds.setdefault(name, []).append(SD_LISTEN_FDS_START + i)
    if unset:
        for variable in _LISTEN_VARIABLES:
            environ.pop(variable, None)
    return fds


def socket_endpoint(fd: int) -> str:
    """The ZeroMQ endpoint of a listening socket passed by systemd: ipc://PATH or tcp://HOST:PORT."""
    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        raise InheritedSocketError(f"file descriptor {fd} passed by systemd is not a socket")
    sock = socket.socket(fileno=fd)
    try:                            # only borrowed: zmq owns the descriptor, so detach before returning
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        family, kind, address = sock.family, sock.type, sock.getsockname()
    finally:
        sock.detach()
    if kind != socket.SOCK_STREAM or not listening:
        raise InheritedSocketError(f"socket {fd} passed by systemd is not a listening stream socket "
                                   "(use ListenStream= in the socket unit)")
    if family == socket.AF_UNIX:
        path = address.decode(errors="replace") if isinstance(address, bytes) else address
        return "ipc://" + (path.replace("\0", "@", 1) if path.startswith("\0") else path)
    if family == socket.AF_INET6:
        return f"tcp://[{address[0]}]:{address[1]}"
    return f"tcp://{address[0]}:{address[1]}"


def bind(sock: zmq.Socket, endpoint: str, inherited: List[int], mode: Optional[int] = None,
         prepare: Optional[Callable[[zmq.Socket, str], None]] = None) -> List[str]:
    """Bind ``sock`` to the sockets systemd passed, else to ``endpoint``; returns what it bound.

    Adopting (zmq.USE_FD) keeps the listening socket systemd holds, so a
    monitor restart refuses no connection. The endpoint of an inherited
    socket is read from the socket itself, so the socket unit decides it.
    ``prepare(sock, address)`` runs before each bind (the CurveZMQ options
    of that address); ``mode`` is given to an ipc socket file kiskadee
    binds itself (systemd's come with the socket unit's SocketMode=).
    """
    prepare = prepare or (lambda _sock, _address: None)
    if not inherited:
        if endpoint.startswith("ipc://"):
            Path(endpoint[len("ipc://"):]).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        prepare(sock, endpoint)
        sock.bind(endpoint)
        if mode is not None and endpoint.startswith("ipc://") and not endpoint.startswith("ipc://@"):
            os.chmod(endpoint[len("ipc://"):], mode)
        return [endpoint]
    bound = []
    for fd in inherited:
        address = socket_endpoint(fd)
        os.set_inheritable(fd, False)
        prepare(sock, address)
        sock.set(zmq.USE_FD, fd)
        sock.bind(address)
        bound.append(address)
    sock.set(zmq.USE_FD, -1)
    if endpoint not in bound:
        log.warning("configured endpoint %s differs from the socket systemd passed (%s); using the latter",
                    endpoint, ", ".join(bound))
    return bound
