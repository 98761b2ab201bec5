"""The spool: where ``kiskadee submit`` copies a local file for the runners to read.

Anyone allowed to submit can put any path in an event, so a runner must not
read what an event names (``/etc``, the database): it reads local files only
from the spool, where ``submit`` copied them as the submitting user, who
could read them. An entry is named by its content's SHA-256, which the runner
checks again while copying it into its work directory (the submitter owns
the entry and could rewrite it afterwards).

Under systemd the spool is ``/var/lib/kiskadee/spool``, made by tmpfiles.d
with mode 3770, user and group kiskadee: members of the group may add
entries, the setgid bit gives each entry the group kiskadee so the runners
can read it, and the sticky bit keeps submitters from removing or replacing
each other's entries. Outside systemd, ``submit`` creates it with mode 0700
for the one user who runs both. Entries are kept after the analysis (a
re-queued job needs its file again); tmpfiles.d ages them out.
"""

import contextlib
import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator, Optional, Tuple

from kiskadee.errors import SourceError

_CHUNK = 1 << 20
_ENTRY = re.compile(r"^[0-9a-f]{64}$")
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)   # a FIFO must not block
_ENTRY_MODE = 0o640             # the runners read it through the group


def add(source: Path, spool_dir: Path, max_bytes: int) -> Tuple[Path, bool]:
    """Copy the regular file ``source`` into the spool; its entry, and whether this call made it.

    SourceError, before anything is written, if ``source`` is a directory,
    not a regular file, unreadable or larger than ``max_bytes``.
    """
    with _open_regular(source, follow=True) as stream:
        directory = _directory(spool_dir)
        fd, temporary = tempfile.mkstemp(prefix=".submit-", dir=directory)
        try:
            with open(fd, "wb") as out:
                digest = _copy(stream, out, max_bytes, source)
                os.fchmod(out.fileno(), _ENTRY_MODE)
            return _commit(Path(temporary), directory / digest, digest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)


def copy_out(entry: Path, spool_dir: Path, dest: Path, max_bytes: int, sha256: str = "") -> str:
    """Copy the spool entry ``entry`` to the new file ``dest``; its SHA-256.

    SourceError if ``entry`` is not an entry of ``spool_dir`` (any other path
    an event names is refused), is not a regular file, or its content does
    not match its name (or ``sha256``, when the event gives one).
    """
    name = entry.name
    if not _ENTRY.match(name) or not _same_directory(entry.parent, spool_dir):
        raise SourceError(f"{entry}: no such file in the spool {spool_dir}; a submitted source is "
                          "read only from there ('kiskadee submit' copies local files into it)")
    with _open_regular(entry, follow=False) as stream, open(dest, "xb") as out:
        digest = _copy(stream, out, max_bytes, entry)
    if digest != name or (sha256 and digest != sha256.lower()):
        dest.unlink()
        raise SourceError(f"{entry}: its content changed after it was submitted (sha256 {digest})")
    return digest


@contextlib.contextmanager
def _open_regular(path: Path, follow: bool) -> Iterator:
    """``path`` open for reading if it is a regular file; SourceError saying why not otherwise."""
    try:
        fd = os.open(path, _OPEN_FLAGS | (0 if follow else getattr(os, "O_NOFOLLOW", 0)))
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise SourceError(f"{path} is a directory: submit a tarball or zip of it (or use "
                              "'kiskadee analyze' on the directory)")
        raise SourceError(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    with open(fd, "rb") as stream:
        yield stream


def _directory(spool_dir: Path) -> Path:
    """The spool directory, made (mode 0700) if missing; SourceError if it cannot be used."""
    try:
        spool_dir.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            spool_dir.mkdir(mode=0o700)
        if spool_dir.is_symlink() or not spool_dir.is_dir():
            raise SourceError(f"the spool {spool_dir} is not a directory")
    except OSError as exc:
        raise SourceError(f"cannot use the spool {spool_dir}: {exc.strerror or exc}") from None
    return spool_dir


def _copy(stream, out: Optional[BinaryIO], max_bytes: int, source: Path) -> str:
    """Copy ``stream`` to ``out`` (if any), at most ``max_bytes``; the SHA-256 of what was read."""
    digest, total = hashlib.sha256(), 0
    try:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            total += len(block)
            if total > max_bytes:
                raise SourceError(f"{source} is larger than the {max_bytes}-byte limit "
                                  "(analysis.max_download_bytes)")
            digest.update(block)
            if out is not None:
                out.write(block)
    except OSError as exc:
        raise SourceError(f"cannot copy {source}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _commit(temporary: Path, entry: Path, digest: str) -> Tuple[Path, bool]:
    """Give the copy its name; an entry already there with that content is used as it is."""
    if entry.is_file() and not entry.is_symlink():
        with contextlib.suppress(SourceError):
            with _open_regular(entry, follow=False) as stream:
                if _copy(stream, None, 1 << 62, entry) == digest:
                    return entry, False
    try:
        os.replace(temporary, entry)
    except OSError as exc:      # another submitter's entry of that name, kept by the sticky bit
        raise SourceError(f"cannot add {entry.name} to the spool: {exc.strerror or exc}") from None
    return entry, True


def _same_directory(one: Path, other: Path) -> bool:
    """Whether two paths name the same existing directory."""
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False
