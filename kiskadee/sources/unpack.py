"""Safe unpacking of hostile source archives (tar, tar.gz/bz2/xz, zip).

:func:`unpack` refuses, with UnsafeArchiveError, members that would land outside
the work directory, special files, names with control characters or that are
not UTF-8 (an analyzer could skip or mangle them), and archives beyond
:class:`UnpackLimits`. It does its own checks (not tarfile's ``filter=``), the
same on every Python. A symlink is kept only if its target is relative, stays
inside and uses ``..`` only as leading components, so no later member can make
it point outside; hard links become copies of earlier members; no member
replaces an existing entry. Every byte of the archive is read, so gzip, bzip2,
xz and zip checksums are verified, and a tar that ends in anything but its
end-of-archive marker and zero padding is refused as corrupt.
"""

import contextlib
import dataclasses
import logging
import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Iterator, Optional, Set, Tuple

from kiskadee.errors import SourceError
from kiskadee.sources.archives import (CHUNK, DIR, HARDLINK, KINDS, MAX_LINK_TARGET, NOT_UTF8, SYMLINK, Member, Opener,
                                       detect_format, refuse, shown, tar_members, zip_members)

log = logging.getLogger(__name__)

_WINDOWS_PATH = re.compile(r"^[A-Za-z]:|\\")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")         # C0, DEL and C1: terminal escapes, newlines
_CREATE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL
                 | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
# What a corrupt, truncated or unsupported archive raises while it is read.
_CORRUPT_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError,
                   zlib.error, lzma.LZMAError, OSError, NotImplementedError, RuntimeError,
                   ValueError)


@dataclasses.dataclass(frozen=True)
class UnpackLimits:
    """How much an archive may expand to before it is refused."""

    max_bytes: int = 2 * 1024**3     # total bytes of file content written
    max_files: int = 100_000         # members (files, dirs, links) extracted
    max_depth: int = 64              # directory levels a member's path may have


# A source tree is public code: everyone may read it (the local sandbox's analyzers run as nobody when
# kiskadee runs as root), nobody but its owner may change it, and no setuid, setgid or sticky bit survives,
# whatever modes the archive asked for. The work directory around it is private.
TREE_DIR_MODE = 0o755


def _file_mode(archived: int) -> int:
    """rw-r--r--, or rwxr-xr-x when the archive marked the file executable by its owner."""
    return 0o755 if archived & 0o100 else 0o644


def unpack(archive: Path, dest: Path, limits: UnpackLimits = UnpackLimits()) -> Path:
    """Extract archive into the existing empty directory dest; return the source root.

    The source root is the single top-level directory when every member lies
    under it, else ``dest``. Raises UnsafeArchiveError for a hostile member or a
    broken limit, SourceError for an unreadable, corrupt or unknown archive. On
    error dest may hold partial content, which the caller deletes.
    """
    archive, dest = Path(archive), Path(dest)
    if not dest.is_dir() or any(dest.iterdir()):
        raise ValueError(f"{dest} is not an existing empty directory")
    members = tar_members if detect_format(archive) == "tar" else zip_members
    extractor = _Extractor(dest, limits)
    try:
        with contextlib.closing(members(archive)) as items:
            for member, opener in items:
                extractor.add(member, opener)
    except _CORRUPT_ERRORS as exc:
        reason = " ".join(str(exc).split())        # one line, for logs and the database
        raise SourceError(f"cannot unpack archive '{archive}': corrupt, truncated "
                          f"or unsupported ({reason})") from exc
    log.info("unpacked %s: %d members, %d bytes", archive, extractor.members, extractor.written)
    return extractor.source_root()


@contextlib.contextmanager
def _writing(name: str) -> Iterator[None]:
    """Turn an OSError raised while writing member name into a SourceError."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or exc
        raise SourceError(f"cannot extract archive member {shown(name)}: {reason}") from exc


def _split(path: str) -> Optional[Tuple[str, ...]]:
    """Normalise a relative archive path lexically; None if a '..' climbs above the top."""
    parts = []
    for part in path.split("/"):
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return tuple(parts)


def _name_problem(path: str) -> Optional[str]:
    """What makes a name unfit to reach the analyzers and the database intact, or None."""
    if "\x00" in path:
        return "contains a NUL byte"
    control = _CONTROL.search(path)
    if control:
        return f"contains the control character {control.group()!r}"
    if NOT_UTF8.search(path):
        return "is not valid UTF-8"
    return None


def _path_problem(path: str, windows: bool) -> Optional[str]:
    """What makes an archive path unsafe to extract, or None if nothing does."""
    problem = _name_problem(path)
    if problem:
        return problem
    if windows and _WINDOWS_PATH.search(path):
        return "has a Windows drive or backslash"
    if path.startswith("/"):
        return "is absolute"
    if _split(path) is None:
        return "escapes the work directory"
    return None


def _write_all(fd: int, data: bytes) -> None:
    """Write all of data to the file descriptor fd."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Extractor:
    """Extracts members one by one into a work directory, checking each."""

    def __init__(self, dest: Path, limits: UnpackLimits) -> None:
        self.dest = dest
        self.root = os.path.realpath(dest)
        self.limits = limits
        self.members = 0
        self.written = 0
        self.files: Set[Tuple[str, ...]] = set()   # regular files extracted so far
        self.tops: Set[str] = set()                # top-level names seen

    def add(self, member: Member, opener: Opener) -> None:
        """Check one member and extract it, or raise UnsafeArchiveError."""
        self.members += 1
        if self.members > self.limits.max_files:
            raise refuse(member.name, f"archive has more than {self.limits.max_files} members")
        if member.kind not in KINDS:
            raise refuse(member.name, f"{member.kind} is not allowed")
        problem = _path_problem(member.name, member.windows)
        if problem:
            raise refuse(member.name, f"path {problem}")
        parts = _split(member.name) or ()
        if not parts:
            if member.kind == DIR:
                return          # "./": the work directory itself
            raise refuse(member.name, "empty path")
        if len(parts) > self.limits.max_depth:
            raise refuse(member.name, f"path is nested deeper than the limit of "
                                       f"{self.limits.max_depth} directory levels")
        self.tops.add(parts[0])
        path = self._make_parent(member.name, parts)
        if member.kind == DIR:
            self._add_dir(member, path)
        elif member.kind == SYMLINK:
            self._add_symlink(member, path)
        elif member.kind == HARDLINK:
            self._add_hardlink(member, parts, path)
        else:
            with contextlib.closing(opener()) as src:
                self._add_file(member, parts, path, src)

    def source_root(self) -> Path:
        """The single top-level directory if there is one, else the work directory."""
        if len(self.tops) == 1:
            top = next(iter(self.tops))
            full = os.path.join(self.root, top)
            if os.path.isdir(full) and not os.path.islink(full):
                return self.dest / top
        return self.dest

    def _inside(self, path: str) -> bool:
        """Whether the real path of path lies in the work directory."""
        real = os.path.realpath(path)
        return os.path.commonpath([self.root, real]) == self.root

    def _make_parent(self, name: str, parts: Tuple[str, ...]) -> str:
        """Create the parent directories of a member after checking them; return its path."""
        parent = os.path.join(self.root, *parts[:-1])
        if not self._inside(parent):
            raise refuse(name, "parent directory resolves outside the work directory")
        with _writing(name):
            os.makedirs(parent, exist_ok=True)
        return os.path.join(parent, parts[-1])

    def _add_dir(self, member: Member, path: str) -> None:
        """Create a directory, or reuse an existing real one, readable by all (``TREE_DIR_MODE``)."""
        with _writing(member.name):
            if not os.path.lexists(path):
                os.mkdir(path, 0o700)
            elif not stat.S_ISDIR(os.lstat(path).st_mode):
                raise refuse(member.name, "a non-directory of that name exists already")
            os.chmod(path, TREE_DIR_MODE)

    def _add_file(self, member: Member, parts: Tuple[str, ...], path: str,
                  src: IO[bytes]) -> None:
        """Stream a regular file's content to a new file, counting the bytes written."""
        if os.path.lexists(path):
            raise refuse(member.name, "a member of that name exists already")
        if member.size > self.limits.max_bytes:
            raise refuse(member.name, f"member is larger than the limit of "
                                       f"{self.limits.max_bytes} bytes")
        with _writing(member.name):
            fd = os.open(path, _CREATE_FLAGS, 0o600)
        try:
            while True:
                chunk = src.read(CHUNK)      # decompression errors propagate as corrupt
                if not chunk:
                    break
                self.written += len(chunk)
                if self.written > self.limits.max_bytes:
                    raise refuse(member.name, f"archive expands beyond the limit of "
                                               f"{self.limits.max_bytes} bytes")
                with _writing(member.name):
                    _write_all(fd, chunk)
            with _writing(member.name):
                os.fchmod(fd, _file_mode(member.mode))
        finally:
            os.close(fd)
        self.files.add(parts)

    def _add_symlink(self, member: Member, path: str) -> None:
        """Recreate a symlink whose target provably stays in the work directory."""
        target = member.target
        problem = _name_problem(target) or ("is too long" if len(target) > MAX_LINK_TARGET else None)
        if problem:
            raise refuse(member.name, f"symlink target {shown(target)} {problem}")
        if not target or (member.windows and _WINDOWS_PATH.search(target)):
            raise refuse(member.name, f"symlink target {target!r} is not a relative POSIX path")
        if target.startswith("/"):
            raise refuse(member.name, f"symlink target {target!r} is absolute")
        parts = [part for part in target.split("/") if part not in ("", ".")]
        ups = 0
        while ups < len(parts) and parts[ups] == "..":
            ups += 1
        if ".." in parts[ups:]:
            raise refuse(member.name, f"symlink target {target!r} has '..' after a name")
        parent = os.path.realpath(os.path.dirname(path))
        depth = len(Path(parent).relative_to(self.root).parts)
        if ups > depth or not self._inside(os.path.join(parent, target)):
            raise refuse(member.name,
                          f"symlink target {target!r} points outside the work directory")
        if os.path.lexists(path):
            raise refuse(member.name, "a member of that name exists already")
        with _writing(member.name):
            os.symlink(target, path)

    def _add_hardlink(self, member: Member, parts: Tuple[str, ...], path: str) -> None:
        """Materialise a hard link as a copy of an earlier regular file member."""
        target = member.target
        problem = _path_problem(target, member.windows)
        if problem:
            raise refuse(member.name, f"hard link target {shown(target)} {problem}")
        target_parts = _split(target) or ()
        if target_parts not in self.files:
            raise refuse(member.name,
                          f"hard link target {target!r} is not an earlier file member")
        source = os.path.join(self.root, *target_parts)
        if not self._inside(os.path.dirname(source)):
            raise refuse(member.name,
                          f"hard link target {target!r} resolves outside the work directory")
        with _writing(member.name):
            src = open(os.open(source, _READ_FLAGS), "rb")
        with src:
            size = os.fstat(src.fileno()).st_size
            self._add_file(dataclasses.replace(member, size=size), parts, path, src)
        log.debug("hard link %r materialised as a copy of %r", member.name, target)
