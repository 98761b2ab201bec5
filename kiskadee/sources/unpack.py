"""Safe unpacking of hostile source archives (tar, tar.gz/bz2/xz, zip).

:func:`unpack` refuses, with UnsafeArchiveError, members that would land outside
the work directory, special files and archives beyond :class:`UnpackLimits`. It
does its own checks (not tarfile's ``filter=``), the same on every Python. A
symlink is kept only if its target is relative, stays inside and uses ``..``
only as leading components, so no later member can make it point outside; hard
links become copies of earlier members; no member replaces an existing entry.
"""

import contextlib
import dataclasses
import functools
import logging
import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Callable, Iterator, Optional, Set, Tuple

from kiskadee.errors import SourceError, UnsafeArchiveError

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_MAX_LINK_TARGET = 4096
_FILE, _DIR, _SYMLINK, _HARDLINK = "file", "directory", "symlink", "hard link"
_KINDS = (_FILE, _DIR, _SYMLINK, _HARDLINK)
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_COMPRESSED_MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:|\\")
_CREATE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL
                 | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
# What a corrupt, truncated or unsupported archive raises while it is read.
_CORRUPT_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError,
                   zlib.error, lzma.LZMAError, OSError, NotImplementedError, RuntimeError,
                   ValueError)
_DEVICE, _FIFO = "device file", "FIFO"
_TAR_KINDS = {**dict.fromkeys(tarfile.REGULAR_TYPES, _FILE), tarfile.DIRTYPE: _DIR,
              tarfile.SYMTYPE: _SYMLINK, tarfile.LNKTYPE: _HARDLINK, tarfile.CHRTYPE: _DEVICE,
              tarfile.BLKTYPE: _DEVICE, tarfile.FIFOTYPE: _FIFO}
_ZIP_KINDS = {0: _FILE, stat.S_IFREG: _FILE, stat.S_IFDIR: _DIR, stat.S_IFLNK: _SYMLINK,
              stat.S_IFCHR: _DEVICE, stat.S_IFBLK: _DEVICE, stat.S_IFIFO: _FIFO}


@dataclasses.dataclass(frozen=True)
class UnpackLimits:
    """How much an archive may expand to before it is refused."""

    max_bytes: int = 2 * 1024**3     # total bytes of file content written
    max_files: int = 100_000         # members (files, dirs, links) extracted


@dataclasses.dataclass(frozen=True)
class _Member:
    """One archive member, whatever the archive format."""

    name: str
    kind: str               # one of _KINDS, or the description of a refused type
    mode: int
    size: int = 0           # size the header claims: a hint, never trusted alone
    target: str = ""        # target of a symlink or hard link
    windows: bool = False   # from a zip: drive letters and backslashes are refused


_Opener = Callable[[], IO[bytes]]


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
    members = _tar_members if _detect_format(archive) == "tar" else _zip_members
    extractor = _Extractor(dest, limits)
    try:
        with contextlib.closing(members(archive)) as items:
            for member, opener in items:
                extractor.add(member, opener)
    except _CORRUPT_ERRORS as exc:
        raise SourceError(f"cannot unpack archive '{archive}': corrupt, truncated "
                          f"or unsupported ({exc})") from exc
    log.info("unpacked %s: %d members, %d bytes", archive, extractor.members, extractor.written)
    return extractor.source_root()


def _detect_format(archive: Path) -> str:
    """Return "tar" or "zip" from the archive's content; SourceError otherwise."""
    try:
        with open(archive, "rb") as stream:
            head = stream.read(512)
        if head.startswith(_ZIP_MAGICS):
            return "zip"
        if (head.startswith(_COMPRESSED_MAGICS) or head[257:262] == b"ustar"
                or tarfile.is_tarfile(str(archive))):
            return "tar"
        if zipfile.is_zipfile(archive):
            return "zip"
    except OSError as exc:
        raise SourceError(f"cannot read archive '{archive}': {exc.strerror or exc}") from exc
    raise SourceError(f"'{archive}' is not a tar or zip archive")


def _tar_members(archive: Path) -> Iterator[Tuple[_Member, _Opener]]:
    """Yield each member of a tar archive, with a function opening its content."""
    with tarfile.open(str(archive), mode="r:*") as tar:
        for info in tar:
            kind = _TAR_KINDS.get(info.type, f"special member of type {info.type!r}")
            member = _Member(info.name, kind, info.mode, info.size, info.linkname)
            yield member, functools.partial(tar.extractfile, info)


def _zip_members(archive: Path) -> Iterator[Tuple[_Member, _Opener]]:
    """Yield each member of a zip archive, with a function opening its content."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            mode = info.external_attr >> 16
            kind = _ZIP_KINDS.get(stat.S_IFMT(mode), f"special member of mode {oct(mode)}")
            kind = _DIR if info.is_dir() else kind
            perm = stat.S_IMODE(mode) or (0o755 if kind == _DIR else 0o644)
            target = _zip_link_target(zf, info) if kind == _SYMLINK else ""
            yield (_Member(info.filename, kind, perm, info.file_size, target, windows=True),
                   functools.partial(zf.open, info))


def _zip_link_target(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """Read the target of a zip symlink member, which is stored as its content."""
    with zf.open(info) as stream:
        data = stream.read(_MAX_LINK_TARGET + 1)
    if len(data) > _MAX_LINK_TARGET:
        raise _refuse(info.filename, "symlink target is too long")
    return data.decode("utf-8", "surrogateescape")


def _refuse(name: str, reason: str) -> UnsafeArchiveError:
    """The error refusing member name, for the given reason."""
    return UnsafeArchiveError(f"refusing archive member {name!r}: {reason}")


@contextlib.contextmanager
def _writing(name: str) -> Iterator[None]:
    """Turn an OSError raised while writing member name into a SourceError."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or exc
        raise SourceError(f"cannot extract archive member {name!r}: {reason}") from exc


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


def _path_problem(path: str, windows: bool) -> Optional[str]:
    """What makes an archive path unsafe to extract, or None if nothing does."""
    if "\x00" in path:
        return "contains a NUL byte"
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

    def add(self, member: _Member, opener: _Opener) -> None:
        """Check one member and extract it, or raise UnsafeArchiveError."""
        self.members += 1
        if self.members > self.limits.max_files:
            raise _refuse(member.name, f"archive has more than {self.limits.max_files} members")
        if member.kind not in _KINDS:
            raise _refuse(member.name, f"{member.kind} is not allowed")
        problem = _path_problem(member.name, member.windows)
        if problem:
            raise _refuse(member.name, f"path {problem}")
        parts = _split(member.name) or ()
        if not parts:
            if member.kind == _DIR:
                return          # "./": the work directory itself
            raise _refuse(member.name, "empty path")
        self.tops.add(parts[0])
        path = self._make_parent(member.name, parts)
        if member.kind == _DIR:
            self._add_dir(member, path)
        elif member.kind == _SYMLINK:
            self._add_symlink(member, path)
        elif member.kind == _HARDLINK:
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
            raise _refuse(name, "parent directory resolves outside the work directory")
        with _writing(name):
            os.makedirs(parent, exist_ok=True)
        return os.path.join(parent, parts[-1])

    def _add_dir(self, member: _Member, path: str) -> None:
        """Create a directory, or reuse an existing real one; owner keeps rwx."""
        with _writing(member.name):
            if not os.path.lexists(path):
                os.mkdir(path, 0o700)
            elif not stat.S_ISDIR(os.lstat(path).st_mode):
                raise _refuse(member.name, "a non-directory of that name exists already")
            os.chmod(path, (member.mode & 0o777) | 0o700)

    def _add_file(self, member: _Member, parts: Tuple[str, ...], path: str,
                  src: IO[bytes]) -> None:
        """Stream a regular file's content to a new file, counting the bytes written."""
        if os.path.lexists(path):
            raise _refuse(member.name, "a member of that name exists already")
        if member.size > self.limits.max_bytes:
            raise _refuse(member.name, f"member is larger than the limit of "
                                       f"{self.limits.max_bytes} bytes")
        with _writing(member.name):
            fd = os.open(path, _CREATE_FLAGS, 0o600)
        try:
            while True:
                chunk = src.read(_CHUNK)      # decompression errors propagate as corrupt
                if not chunk:
                    break
                self.written += len(chunk)
                if self.written > self.limits.max_bytes:
                    raise _refuse(member.name, f"archive expands beyond the limit of "
                                               f"{self.limits.max_bytes} bytes")
                with _writing(member.name):
                    _write_all(fd, chunk)
            with _writing(member.name):
                os.fchmod(fd, (member.mode & 0o777) | 0o600)
        finally:
            os.close(fd)
        self.files.add(parts)

    def _add_symlink(self, member: _Member, path: str) -> None:
        """Recreate a symlink whose target provably stays in the work directory."""
        target = member.target
        if not target or "\x00" in target or (member.windows and _WINDOWS_PATH.search(target)):
            raise _refuse(member.name, f"symlink target {target!r} is not a relative POSIX path")
        if target.startswith("/"):
            raise _refuse(member.name, f"symlink target {target!r} is absolute")
        parts = [part for part in target.split("/") if part not in ("", ".")]
        ups = 0
        while ups < len(parts) and parts[ups] == "..":
            ups += 1
        if ".." in parts[ups:]:
            raise _refuse(member.name, f"symlink target {target!r} has '..' after a name")
        parent = os.path.realpath(os.path.dirname(path))
        depth = len(Path(parent).relative_to(self.root).parts)
        if ups > depth or not self._inside(os.path.join(parent, target)):
            raise _refuse(member.name,
                          f"symlink target {target!r} points outside the work directory")
        if os.path.lexists(path):
            raise _refuse(member.name, "a member of that name exists already")
        with _writing(member.name):
            os.symlink(target, path)

    def _add_hardlink(self, member: _Member, parts: Tuple[str, ...], path: str) -> None:
        """Materialise a hard link as a copy of an earlier regular file member."""
        target = member.target
        problem = _path_problem(target, member.windows)
        if problem:
            raise _refuse(member.name, f"hard link target {target!r} {problem}")
        target_parts = _split(target) or ()
        if target_parts not in self.files:
            raise _refuse(member.name,
                          f"hard link target {target!r} is not an earlier file member")
        source = os.path.join(self.root, *target_parts)
        if not self._inside(os.path.dirname(source)):
            raise _refuse(member.name,
                          f"hard link target {target!r} resolves outside the work directory")
        with _writing(member.name):
            src = open(os.open(source, _READ_FLAGS), "rb")
        with src:
            size = os.fstat(src.fileno()).st_size
            self._add_file(dataclasses.replace(member, size=size), parts, path, src)
        log.debug("hard link %r materialised as a copy of %r", member.name, target)
