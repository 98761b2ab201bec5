"""Reading tar and zip archives member by member, whatever the format, checking their integrity.

The tar reader notices what tarfile lets pass: an invalid header after the
first one (tarfile takes it for the end of the archive and drops the members
after it), a missing end-of-archive marker and data after it; and it reads the
archive to its end so the decompressor checks the stream's CRC. zip members
are checked against their CRC as they are read. Names are decoded as UTF-8,
with the bytes that are not kept as surrogates, so callers can refuse them.
"""

import dataclasses
import functools
import re
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import IO, Callable, Iterator, Tuple

from kiskadee.errors import SourceError, UnsafeArchiveError

CHUNK = 1024 * 1024
MAX_LINK_TARGET = 4096
_MAX_PADDING = 64 * 1024**2     # zeros after a tar's end marker (tar pads to 10 KiB records)
FILE, DIR, SYMLINK, HARDLINK = "file", "directory", "symlink", "hard link"
KINDS = (FILE, DIR, SYMLINK, HARDLINK)
NOT_UTF8 = re.compile(r"[\ud800-\udfff]")              # surrogateescape's stand-ins for bad bytes
_SHOWN_CHARS = 200                                     # of a member name quoted in an error
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_TAR_MODES = {b"\x1f\x8b": "r:gz", b"BZh": "r:bz2", b"\xfd7zXZ\x00": "r:xz"}    # by magic number
_COMPRESSED_MAGICS = tuple(_TAR_MODES)
_DEVICE, _FIFO = "device file", "FIFO"
_TAR_KINDS = {**dict.fromkeys(tarfile.REGULAR_TYPES, FILE), tarfile.DIRTYPE: DIR,
              tarfile.SYMTYPE: SYMLINK, tarfile.LNKTYPE: HARDLINK, tarfile.CHRTYPE: _DEVICE,
              tarfile.BLKTYPE: _DEVICE, tarfile.FIFOTYPE: _FIFO}
_ZIP_KINDS = {0: FILE, stat.S_IFREG: FILE, stat.S_IFDIR: DIR, stat.S_IFLNK: SYMLINK,
              stat.S_IFCHR: _DEVICE, stat.S_IFBLK: _DEVICE, stat.S_IFIFO: _FIFO}


@dataclasses.dataclass(frozen=True)
class Member:
    """One archive member, whatever the archive format."""

    name: str
    kind: str               # one of KINDS, or the description of a refused type
    mode: int
    size: int = 0           # size the header claims: a hint, never trusted alone
    target: str = ""        # target of a symlink or hard link
    windows: bool = False   # from a zip: drive letters and backslashes are refused


Opener = Callable[[], IO[bytes]]


def detect_format(archive: Path) -> str:
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


class _EndCheckingTarInfo(tarfile.TarInfo):
    """A TarInfo that records why tarfile stopped reading headers.

    tarfile takes an invalid header after the first one for the end of the
    archive, so a corrupted tarball would lose its later members in silence.
    """

    @classmethod
    def fromtarfile(cls, tar):  # noqa: D102 (tarfile's own method)
        try:
            return super().fromtarfile(tar)
        except tarfile.HeaderError as exc:
            tar.kiskadee_stop = exc
            raise


def tar_members(archive: Path) -> Iterator[Tuple[Member, Opener]]:
    """Yield each member of a tar archive, with a function opening its content."""
    with open(archive, "rb") as stream:
        head = stream.read(6)
    # The mode the magic number says: "r:*" would hide the real error behind one per method tried.
    mode = next((mode for magic, mode in _TAR_MODES.items() if head.startswith(magic)), "r:")
    with tarfile.open(str(archive), mode=mode, tarinfo=_EndCheckingTarInfo,
                      encoding="utf-8", errors="surrogateescape") as tar:
        last = ""
        for info in tar:
            kind = _TAR_KINDS.get(info.type, f"special member of type {info.type!r}")
            member = Member(info.name, kind, info.mode, info.size, info.linkname)
            yield member, functools.partial(tar.extractfile, info)
            last = info.name
        _check_tar_end(tar, last)


def _check_tar_end(tar: tarfile.TarFile, last: str) -> None:
    """Refuse a tar that ended without its marker or has data after it; read it to the end.

    Reading to the end makes the decompressor check the stream's CRC.
    """
    stop = getattr(tar, "kiskadee_stop", None)
    after = f"after member {shown(last)}" if last else "at its start"
    if isinstance(stop, (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError)) or stop is None:
        raise tarfile.ReadError(f"truncated: it ends without its end-of-archive marker {after}")
    if not isinstance(stop, tarfile.EOFHeaderError):
        raise tarfile.ReadError(f"{stop} {after}")
    padding = 0
    for chunk in iter(functools.partial(tar.fileobj.read, CHUNK), b""):
        padding += len(chunk)
        if chunk.count(0) != len(chunk):
            raise tarfile.ReadError(f"data follows the end-of-archive marker {after}")
        if padding > _MAX_PADDING:
            raise tarfile.ReadError(f"more than {_MAX_PADDING} bytes of padding at the end")


def zip_members(archive: Path) -> Iterator[Tuple[Member, Opener]]:
    """Yield each member of a zip archive, with a function opening its content."""
    try:
        zf = zipfile.ZipFile(archive)
    except UnicodeDecodeError as exc:   # flagged as UTF-8 but is not: zipfile cannot list it
        raise UnsafeArchiveError(f"refusing archive member {shown_bytes(exc.object)}: "
                                 f"path is not valid UTF-8") from None
    with zf:
        for info in zf.infolist():
            mode = info.external_attr >> 16
            kind = _ZIP_KINDS.get(stat.S_IFMT(mode), f"special member of mode {oct(mode)}")
            kind = DIR if info.is_dir() else kind
            perm = stat.S_IMODE(mode) or (0o755 if kind == DIR else 0o644)
            target = _zip_link_target(zf, info) if kind == SYMLINK else ""
            yield (Member(info.filename, kind, perm, info.file_size, target, windows=True),
                   functools.partial(zf.open, info))


def _zip_link_target(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """Read the target of a zip symlink member, which is stored as its content."""
    with zf.open(info) as stream:
        data = stream.read(MAX_LINK_TARGET + 1)
    if len(data) > MAX_LINK_TARGET:
        raise refuse(info.filename, "symlink target is too long")
    return data.decode("utf-8", "surrogateescape")


def shown_bytes(raw: bytes) -> str:
    """A file name as raw bytes, escaped and shortened for an error message."""
    more = f"... ({len(raw)} bytes)" if len(raw) > _SHOWN_CHARS else ""
    return repr(raw[:_SHOWN_CHARS]) + more


def shown(name: str) -> str:
    """A member name quoted for an error message: escaped, its bad bytes shown as bytes, shortened."""
    if NOT_UTF8.search(name):
        return shown_bytes(name.encode("utf-8", "surrogateescape"))
    more = f"... ({len(name)} characters)" if len(name) > _SHOWN_CHARS else ""
    return repr(name[:_SHOWN_CHARS]) + more


def refuse(name: str, reason: str) -> UnsafeArchiveError:
    """The error refusing member name, for the given reason."""
    return UnsafeArchiveError(f"refusing archive member {shown(name)}: {reason}")
