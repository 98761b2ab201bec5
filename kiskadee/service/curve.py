"""CurveZMQ on tcp:// endpoints: key files, the monitor's ZAP check, the clients' socket options.

A tcp:// socket can be reached by anyone on the network, so it speaks
CurveZMQ: the monitor proves itself with its key pair and lets in only the
public keys listed in a directory, one per domain (``work`` for runners,
``intake`` for submitters), so a key that may submit cannot take jobs.
ipc:// sockets stay unauthenticated: their file modes and the runtime
directory's owner decide who reaches them (kiskadee.service.access).
Plain tcp:// is refused unless ``service.curve.insecure`` is set, which
logs a warning at every start.

Key files are those of ``zmq.auth.create_certificates``: NAME.key holds
the public key, NAME.key_secret both keys; secret files are 0600.
"""

import dataclasses
import functools
import logging
import os
import stat
from pathlib import Path
from typing import Optional, Tuple

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

from kiskadee.config import ServiceConfig
from kiskadee.errors import ConfigError, UsageError

log = logging.getLogger(__name__)

ROLES = ("monitor", "runner", "submitter")
DOMAINS = {"work": "runner", "intake": "submitter"}   # ZAP domain of a socket -> who may speak there
INSECURE_HINT = "or set service.curve.insecure = true to let anyone who reaches the port in"
ZAP_DENIED = 400        # the ZAP status of a key the server does not let in (ZeroMQ RFC 27)


def is_tcp(endpoint: str) -> bool:
    """True for an endpoint the network can reach, which therefore needs keys."""
    return endpoint.startswith("tcp://")


@dataclasses.dataclass(frozen=True)
class KeyPaths:
    """Where each key file is, by the configuration and its defaults under ``keys_dir``."""

    keys_dir: Path
    monitor_secret: Path
    monitor_public: Path
    allowed: dict          # role -> directory of the public keys let in
    secret: dict           # role -> this host's secret key file for that role

    @classmethod
    def of(cls, service: ServiceConfig) -> "KeyPaths":
        curve = service.curve
        keys = Path(curve.keys_dir or Path(service.state_dir) / "keys")
        return cls(
            keys_dir=keys,
            monitor_secret=Path(curve.monitor_secret_key or keys / "monitor.key_secret"),
            monitor_public=Path(curve.monitor_public_key or keys / "monitor.key"),
            allowed={"runner": Path(curve.runners_dir or keys / "runners"),
                     "submitter": Path(curve.submitters_dir or keys / "submitters")},
            secret={"runner": Path(curve.runner_secret_key or keys / "runner.key_secret"),
                    "submitter": Path(curve.submitter_secret_key or keys / "submitter.key_secret")},
        )


# creating keys ---------------------------------------------------------------

def create_keys(service: ServiceConfig, role: str, name: str = "", force: bool = False) -> Tuple[Path, Path]:
    """Write a new key pair for ``role`` ('monitor', or a runner or submitter NAME); returns (public, secret).

    A runner's or submitter's public key lands in the directory the monitor
    lets in, so creating it on the monitor's host is what allows it.
    """
    paths = KeyPaths.of(service)
    _private_dir(paths.keys_dir)        # before its subdirectories, so that mkdir(parents) does not make it 0755
    if role == "monitor":
        directory, name = paths.monitor_secret.parent, paths.monitor_secret.name[:-len(".key_secret")]
        for allowed in paths.allowed.values():     # so the monitor starts before the first runner key
            _private_dir(allowed)
    else:
        directory = paths.allowed[role]
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"a {role} key needs a NAME without '/' that does not start with '.', not {name!r}")
    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    existing = [str(path) for path in (public, secret) if path.exists()]
    if existing and not force:
        raise UsageError(f"{' and '.join(existing)} already exist; --force replaces them "
                         "(every peer holding the old key must then get the new one)")
    _private_dir(directory)
    for path in (public, secret):
        path.unlink(missing_ok=True)
    previous = os.umask(0o077)      # the secret file is never readable by others, not even briefly
    try:
        zmq.auth.create_certificates(str(directory), name)
    finally:
        os.umask(previous)
    os.chmod(secret, 0o600)
    os.chmod(public, 0o644)
    return public, secret


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


# reading keys ----------------------------------------------------------------

def load_secret(path: Path, setting: str) -> Tuple[bytes, bytes]:
    """(public, secret) from a NAME.key_secret file; refused when others may read it."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            raise ConfigError(f"{path} ({setting}) is a secret key readable by others (mode {mode:04o}): "
                              f"chmod 600 {path}, and make a new key pair if others may have read it")
        public, secret = zmq.auth.load_certificate(str(path))
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({setting}): {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path} ({setting}) is not a key file: {exc}") from None
    if not secret:
        raise ConfigError(f"{path} ({setting}) holds no secret key; give the NAME.key_secret file")
    return public, secret


def load_public(path: Path, setting: str) -> bytes:
    """The public key in a NAME.key file."""
    try:
        public, _ = zmq.auth.load_certificate(str(path))
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({setting}): {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path} ({setting}) is not a key file: {exc}") from None
    return public


# clients: runners and senders --------------------------------------------------

def secure_client(sock: zmq.Socket, endpoint: str, service: ServiceConfig, role: str) -> None:
    """Before ``sock`` connects to ``endpoint``: CurveZMQ keys on tcp://, refused without them.

    Nothing to do for ipc:// (and inproc://); with ``insecure`` a plain
    tcp:// connection is made, with a warning.
    """
    if not is_tcp(endpoint):
        return
    if service.curve.insecure:
        log.warning("service.curve.insecure is set: connecting to %s without keys; anyone on the way can "
                    "read and forge this traffic", endpoint)
        return
    paths = KeyPaths.of(service)
    setting = f"service.curve.{role}_secret_key"
    missing = [str(p) for p in (paths.secret[role], paths.monitor_public) if not p.exists()]
    if missing:
        raise ConfigError(
            f"{endpoint} is tcp:// and needs CurveZMQ keys; missing {' and '.join(missing)}. On the monitor's "
            f"host run 'kiskadee keys {role} NAME', copy its {role}s/NAME.key_secret here as "
            f"{paths.secret[role]} ({setting}) and monitor.key as {paths.monitor_public} "
            f"(service.curve.monitor_public_key); {INSECURE_HINT}")
    public, secret = load_secret(paths.secret[role], setting)
    sock.curve_serverkey = load_public(paths.monitor_public, "service.curve.monitor_public_key")
    sock.curve_publickey, sock.curve_secretkey = public, secret


class HandshakeWatch:
    """Whether the server at a tcp:// endpoint let this client's key in; ConfigError once it refused it.

    After a refusal libzmq neither reconnects nor tells the socket's user, so
    without this a runner whose key the monitor does not list would wait for
    work forever, saying nothing.
    """

    def __init__(self, sock: zmq.Socket, endpoint: str, secret: Path, role: str):
        self.sock, self.endpoint, self.secret, self.role = sock, endpoint, secret, role
        self.events = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        self.let_in = False

    def check(self) -> None:
        """Read the handshake events so far: log the first success, raise ConfigError on a refusal."""
        while self.events.poll(0):
            event = recv_monitor_message(self.events)
            if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                if not self.let_in:
                    log.info("%s let this %s's key in", self.endpoint, self.role)
                self.let_in = True
            elif event["value"] == ZAP_DENIED:
                raise ConfigError(
                    f"{self.endpoint} refused this {self.role}'s key {self.secret}: the monitor does not list "
                    f"it. On the monitor's host run 'kiskadee keys {self.role} NAME', copy its "
                    f"{self.role}s/NAME.key_secret here as {self.secret}, restart the monitor (it reads the "
                    f"keys at start), then this {self.role}")
            else:
                log.warning("%s failed the CurveZMQ handshake (ZAP status %s)", self.endpoint, event["value"])

    def close(self) -> None:
        self.sock.disable_monitor()
        self.events.close(linger=0)


def watch_handshake(sock: zmq.Socket, endpoint: str, service: ServiceConfig, role: str) -> Optional[HandshakeWatch]:
    """A HandshakeWatch on ``sock`` for a keyed tcp:// ``endpoint``, made before it connects; None otherwise."""
    if not is_tcp(endpoint) or service.curve.insecure:
        return None
    return HandshakeWatch(sock, endpoint, KeyPaths.of(service).secret[role], role)


# the monitor -----------------------------------------------------------------

class MonitorGuard:
    """Decides, endpoint by endpoint, how the monitor's sockets authenticate; owns the ZAP thread.

    CurveZMQ options are read when an endpoint is bound, so one ROUTER can
    serve a systemd socket unit's ipc path in the clear and its tcp address
    with keys: ``prepare`` runs before each bind.
    """

    def __init__(self, service: ServiceConfig, context: zmq.Context):
        self.service = service
        self.context = context
        self.paths = KeyPaths.of(service)
        self.authenticator: Optional[ThreadAuthenticator] = None

    def for_domain(self, domain: str):
        """The ``prepare`` callback for the socket of ``domain`` ('work' or 'intake')."""
        return functools.partial(self.prepare, domain=domain)

    def prepare(self, sock: zmq.Socket, address: str, domain: str) -> None:
        """Set ``sock`` up for binding ``address``: keys and ZAP on tcp://, nothing on ipc://."""
        if not is_tcp(address):
            sock.curve_server = False
            return
        if self.service.curve.insecure:
            log.warning("service.curve.insecure is set: %s (%s) lets in anyone who reaches it, without keys",
                        address, domain)
            sock.curve_server = False
            return
        public, secret = self._monitor_keys(address)
        allowed = self._allowed(domain, address)
        sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.zap_domain = domain.encode()
        sock.curve_server = True
        log.info("%s (%s) speaks CurveZMQ; it lets in the %d keys in %s", address, domain,
                 len(allowed), self.paths.allowed[DOMAINS[domain]])

    def stop(self) -> None:
        """End the ZAP thread, if one was started."""
        if self.authenticator is not None:
            self.authenticator.stop()
            self.authenticator = None

    def _monitor_keys(self, address: str) -> Tuple[bytes, bytes]:
        if not self.paths.monitor_secret.exists():
            raise ConfigError(
                f"{address} is tcp:// and needs CurveZMQ keys; the monitor's key pair "
                f"{self.paths.monitor_secret} (service.curve.monitor_secret_key) is missing: run "
                f"'kiskadee keys monitor' and 'kiskadee keys runner NAME' for each runner; {INSECURE_HINT}")
        return load_secret(self.paths.monitor_secret, "service.curve.monitor_secret_key")

    def _allowed(self, domain: str, address: str) -> dict:
        """Hand the public keys let in on ``domain`` to the ZAP thread (started at the first)."""
        role = DOMAINS[domain]
        directory = self.paths.allowed[role]
        if not directory.is_dir():
            raise ConfigError(f"{address} is tcp:// and lets in the {role} keys in {directory} "
                              f"(service.curve.{role}s_dir), which does not exist: run "
                              f"'kiskadee keys {role} NAME' for each {role}")
        listed = AllowedKeys(directory)
        if self.authenticator is None:
            self.authenticator = ThreadAuthenticator(self.context, log=logging.getLogger(__name__ + ".zap"))
            self.authenticator.start()
        self.authenticator.configure_curve_callback(domain=domain, credentials_provider=listed)
        if not listed.keys:
            log.warning("no %s key is listed in %s yet: nobody can use %s until 'kiskadee keys %s NAME'",
                        role, directory, address, role)
        return listed.keys


class AllowedKeys:
    """The public keys in one directory (NAME.key files), as the ZAP thread asks about them."""

    def __init__(self, directory: Path):
        self.directory = directory
        try:
            self.keys = zmq.auth.load_certificates(str(directory))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the public keys in {directory}: {exc}") from None

    def callback(self, domain: str, key: bytes) -> bool:
        """True for a listed key (z85); an unlisted one is refused with a warning, its handshake fails."""
        if key in self.keys:
            return True
        log.warning("refused a connection to the %s socket: key %s is not in %s", domain,
                    key.decode(errors="replace"), self.directory)
        return False
