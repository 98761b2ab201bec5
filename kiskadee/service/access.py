"""Who may reach the ipc:// sockets: the runtime directory's owner and mode, the sockets' modes.

Announcing and working are separate permissions. The intake socket is
0660, so the group may ``kiskadee submit``; the work socket is 0600, so
only the user the monitor and runners run as may take jobs and send
results. Under systemd the socket units set these modes; outside it the
monitor sets them right after binding (the 0700 runtime directory covers
the instant in between).

Outside systemd the runtime directory must belong to the expected user
(``service.runtime_dir_owner``, else whoever runs kiskadee; root is
trusted too) and be writable by nobody else: whoever can write it can
swap in their own socket and take the jobs or answer the submissions.
Under systemd (RuntimeDirectory= or sockets passed in LISTEN_FDS) systemd
made the directory and nothing is checked.
"""

import os
import pwd
import stat
from pathlib import Path
from typing import Iterable, Mapping, Optional

from kiskadee.config import ServiceConfig
from kiskadee.errors import ConfigError

INTAKE_SOCKET_MODE = 0o660      # the group announces ('kiskadee submit')
WORK_SOCKET_MODE = 0o600        # only the service's own user works


class UnsafeRuntimeDirectory(ConfigError):
    """The directory of the ipc sockets could be written by someone else; nothing starts on it.

    A configuration error (exit status 3): retrying cannot mend it and the
    units do not restart on it; a person must fix the directory or the
    configuration.
    """


def under_systemd(environ: Optional[Mapping[str, str]] = None) -> bool:
    """True when systemd made the runtime directory (RuntimeDirectory=) or passed the sockets."""
    environ = os.environ if environ is None else environ
    return bool(environ.get("RUNTIME_DIRECTORY") or environ.get("LISTEN_FDS"))


def socket_dirs(service: ServiceConfig, endpoints: Iterable[str]) -> list:
    """The runtime directory and the directory of each ipc:// endpoint, each once."""
    dirs = [Path(service.runtime_dir)]
    for endpoint in endpoints:
        if endpoint.startswith("ipc://") and not endpoint.startswith("ipc://@"):
            parent = Path(endpoint[len("ipc://"):]).parent
            if parent not in dirs:
                dirs.append(parent)
    return dirs


def ensure_runtime_dirs(service: ServiceConfig, environ: Optional[Mapping[str, str]] = None) -> None:
    """Create (0700) and check every directory holding the sockets; UnsafeRuntimeDirectory if one is not safe."""
    if under_systemd(environ):
        return
    owner = expected_owner(service.runtime_dir_owner)
    for directory in socket_dirs(service, (service.intake_endpoint, service.work_endpoint)):
        ensure_private_dir(directory, owner)


def expected_owner(name: str) -> int:
    """The uid that must own the runtime directory: the named user, else the current one."""
    if not name:
        return os.geteuid()
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise ConfigError(f"service.runtime_dir_owner names the user {name!r}, who does not exist") from None


def ensure_private_dir(directory: Path, owner: int) -> None:
    """Create ``directory`` 0700 if it is missing, then refuse it unless ``owner`` (or root) alone can write it."""
    try:
        directory.mkdir(mode=0o700, parents=True)
        os.chmod(directory, 0o700)      # mkdir's mode passes through the umask
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot create the runtime directory {directory}: {exc.strerror or exc}") from None
    check_private_dir(directory, owner)


def check_private_dir(directory: Path, owner: int) -> None:
    """UnsafeRuntimeDirectory unless ``directory`` is a real directory of ``owner`` or root, closed to others."""
    info = os.lstat(directory)
    mode = stat.S_IMODE(info.st_mode)
    problem = None
    if stat.S_ISLNK(info.st_mode):
        problem = f"is a symbolic link (to {os.readlink(directory)})"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory"
    elif info.st_uid not in (owner, 0):
        problem = f"belongs to {_user(info.st_uid)}, not {_user(owner)}"
    elif mode & 0o022:
        problem = f"is writable by {'group and others' if mode & 0o022 == 0o022 else _who(mode)}"
    if problem:
        raise UnsafeRuntimeDirectory(
            f"the runtime directory {directory} {problem} (owner {_user(info.st_uid)}, mode {mode:04o}); "
            f"whoever can write it can swap in their own sockets. Remove it (kiskadee recreates it 0700), "
            f"or 'chown {_user(owner)} {directory}; chmod 700 {directory}', or set service.runtime_dir "
            "to a directory only you can write")


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _who(mode: int) -> str:
    return "its group" if mode & 0o020 else "others"
