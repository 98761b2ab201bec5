"""The hostile-source suite: archives and URLs an attacker could publish, built at test time.

Each case goes through kiskadee's real source pipeline (the local fetcher,
the downloader against a real HTTP server on 127.0.0.1, ``unpack_source``)
and asserts its outcome: refused with the message a person needs, or
unpacked intact. Every case also asserts that nothing was written outside
the work directory (a snapshot of its parent, with a sentinel in it). The
last tests run the real ``kiskadee analyze`` on a few of them end to end.
"""

import gzip
import http.server
import io
import os
import sqlite3
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest
from harness import run_kiskadee, write_config

from kiskadee.config import AnalysisConfig
from kiskadee.core.events import SourceEvent
from kiskadee.errors import SourceError, SourceNotFound, TransientSourceError
from kiskadee.sources.local import LocalFetcher
from kiskadee.sources.prepare import unpack_source

C_FILE = b"#include <string.h>\nvoid f(char *d, const char *s) { strcpy(d, s); }\n"
LIMITS = AnalysisConfig(max_unpacked_bytes=1024**2, max_files=200, max_depth=64, max_download_bytes=1024**2)


# --- building archives -----------------------------------------------------------------

def _tar(members, mode="w", fmt=tarfile.GNU_FORMAT) -> bytes:
    """A tar (compressed per ``mode``) of (TarInfo, data) pairs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode, format=fmt, encoding="utf-8",
                      errors="surrogateescape") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def reg(name, data=C_FILE, size=None):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data) if size is None else size, 0o644
    return info, data


def node(name, kind, target=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.devmajor, info.devminor = kind, target, 0o777, 1, 3
    return info, None


def tree(*extra, top="pkg-1.0"):
    """A small release: two C files under one top directory, then ``extra`` members."""
    return [reg(f"{top}/src/main.c"), reg(f"{top}/src/util.c", C_FILE * 40), *extra]


def _zip(members, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of (name, data) or (name, data, unix mode) members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data, *mode in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            info.external_attr = (mode[0] if mode else 0o100644) << 16
            zf.writestr(info, data)
    return buffer.getvalue()


def flipped(data: bytes, at: float = 0.5, count: int = 64) -> bytes:
    """``data`` with ``count`` bytes inverted from ``at`` (a fraction of its length)."""
    start = int(len(data) * at)
    return data[:start] + bytes(b ^ 0xFF for b in data[start:start + count]) + data[start + count:]


def big_tree():
    """A release large enough that a flip in the middle of its stream hits content, not headers."""
    return [reg(f"pkg-1.0/src/f{i}.c", (C_FILE * 30) + bytes(range(256)) * i) for i in range(12)]


def stored_gzip_with_bad_content() -> bytes:
    """gzip with stored blocks: a flipped byte decompresses fine, only the CRC can tell."""
    raw = _tar([reg("pkg-1.0/src/big.c", C_FILE * 2000)])          # its middle is content
    data = bytearray(gzip.compress(raw, compresslevel=0))
    data[len(data) // 2] ^= 0x01
    return bytes(data)


def gzip_with_bad_crc() -> bytes:
    data = bytearray(gzip.compress(_tar(tree())))
    data[-8] ^= 0xFF                        # the CRC-32 of the trailer; every content byte is intact
    return bytes(data)


def tar_with_bad_second_header() -> bytes:
    data = bytearray(_tar(tree(reg("pkg-1.0/src/last.c"))))
    second = 512 + 512                      # main.c's header and its one block of content
    data[second + 10:second + 40] = b"\xff" * 30
    return bytes(data)


def tar_without_end_marker() -> bytes:
    data = _tar(tree())
    return data[:512 * 2 + 512 + (len(C_FILE * 40) + 511) // 512 * 512]


def zip_with_bad_crc() -> bytes:
    data = bytearray(_zip([("pkg-1.0/src/main.c", C_FILE * 20)], zipfile.ZIP_STORED))
    data[len(data) // 3] ^= 0x01
    return bytes(data)


def zip_with_bad_utf8_name() -> bytes:
    data = _zip([("pkg-1.0/src/caf\u00e9.c", C_FILE)])
    return data.replace("caf\u00e9".encode(), b"caf\xff\xfe")     # flag 0x800 stays: names claim UTF-8


def half(data: bytes) -> bytes:
    return data[:len(data) // 2]


def zeros(count, size=512 * 1024):
    """``count`` members of ``size`` zero bytes: each within the limit, together over it."""
    return [reg(f"pkg-1.0/zeros{i}", b"\0" * size) for i in range(count)]


def huge_declared_size() -> bytes:
    """A header claiming 50 GiB, followed by a little data: a reader must not trust it."""
    info, _ = reg("pkg-1.0/big", b"", size=50 * 1024**3)
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape") + b"\0" * 4096


def deep(levels):
    return [reg("/".join(["d"] * levels) + "/x.c")]


def zip_cp437_name() -> bytes:
    """A legacy zip (no UTF-8 flag): its names are cp437 by the format's rules."""
    data = bytearray(_zip([("pkg-1.0/src/xyz.c", C_FILE)]))
    return bytes(data).replace(b"xyz", "\u00e9\u00e8z".encode("cp437"))


def non_utf8(name: bytes) -> str:
    return name.decode("utf-8", "surrogateescape")


# --- the cases -------------------------------------------------------------------------
# name: (archive bytes, expected): a string is part of the refusal message,
# a list the files (relative to the source root) that must be there intact.

def archive_cases():
    tgz = lambda *extra: _tar(tree(*extra), "w:gz")    # noqa: E731 (a table of cases reads better)
    sym, hard = tarfile.SYMTYPE, tarfile.LNKTYPE
    return {
        # integrity: every stream is read to its end and checked
        "gzip, 64 bytes flipped": (flipped(_tar(big_tree(), "w:gz")), "corrupt"),
        "bzip2, 64 bytes flipped": (flipped(_tar(big_tree(), "w:bz2")), "corrupt"),
        "xz, 64 bytes flipped": (flipped(_tar(big_tree(), "w:xz")), "corrupt"),
        "gzip, bad CRC in the trailer": (gzip_with_bad_crc(), "CRC check failed"),
        "gzip, stored content altered": (stored_gzip_with_bad_content(), "CRC check failed"),
        "zip, bad CRC": (zip_with_bad_crc(), "Bad CRC-32"),
        "tar, invalid second header": (tar_with_bad_second_header(), "bad checksum after member 'pkg-1.0/src/main.c'"),
        "tar, data after the end marker": (_tar(tree()) + b"EVIL" * 300, "data follows the end-of-archive marker"),
        "tar, no end marker": (tar_without_end_marker(), "ends without its end-of-archive marker"),
        "tar.gz, truncated": (half(_tar(big_tree(), "w:gz")), "Compressed file ended"),
        "tar.xz, truncated": (half(_tar(big_tree(), "w:xz")), "Compressed file ended"),
        "zip, truncated": (_zip([("a.c", C_FILE * 50)])[:-30], "corrupt, truncated"),
        "random bytes": (os.urandom(4096), "is not a tar or zip archive"),
        "empty file": (b"", "is not a tar or zip archive"),
        # names an analyzer or a terminal would mangle
        "newline in a name": (tgz(reg("pkg-1.0/src/a\nb.c")), r"'pkg-1.0/src/a\nb.c': path contains the control character '\n'"),
        "ESC in a name": (tgz(reg("pkg-1.0/\x1b[31mred.c")), r"'pkg-1.0/\x1b[31mred.c': path contains the control character '\x1b'"),
        "DEL in a name": (tgz(reg("pkg-1.0/a\x7f.c")), r"control character '\x7f'"),
        "tab in a name": (tgz(reg("pkg-1.0/a\tb.c")), r"control character '\t'"),
        "C1 CSI in a name": (tgz(reg("pkg-1.0/a\u009b2J.c")), r"control character '\x9b'"),
        "not UTF-8, tar": (tgz(reg(non_utf8(b"pkg-1.0/caf\xe9.c"))), r"b'pkg-1.0/caf\xe9.c': path is not valid UTF-8"),
        "not UTF-8, zip": (zip_with_bad_utf8_name(), r"b'pkg-1.0/src/caf\xff\xfe.c': path is not valid UTF-8"),
        "newline in a symlink target": (tgz(node("pkg-1.0/l", sym, "src/a\nb")), "symlink target 'src/a\\nb' contains"),
        "not UTF-8 hard link target": (tgz(node("pkg-1.0/h", hard, non_utf8(b"pkg-1.0/\xff"))), "is not valid UTF-8"),
        "odd but valid names": (tgz(reg("pkg-1.0/src/a b.c"), reg("pkg-1.0/src/\u00e9t\u00e9 \u65e5\u672c.c"),
                                    reg("pkg-1.0/src/$(touch pwned).c"), reg("pkg-1.0/src/;rm -rf ~;'\".c"),
                                    reg("pkg-1.0/src/-rf.c")),
                                ["src/a b.c", "src/\u00e9t\u00e9 \u65e5\u672c.c", "src/$(touch pwned).c",
                                 "src/;rm -rf ~;'\".c", "src/-rf.c"]),
        "zip, cp437 name": (zip_cp437_name(), ["src/\u00e9\u00e8z.c"]),
        # nesting
        "3000 levels of directories": (_tar(deep(3000), "w:gz"), "nested deeper than the limit of 64 directory levels"),
        "65 levels": (_tar(deep(64), "w:gz"), "nested deeper than the limit of 64"),
        "64 levels": (_tar(deep(63), "w:gz"), ["/".join(["d"] * 62) + "/x.c"]),
        # escaping the work directory
        "path traversal": (tgz(reg("../evil.c")), "'../evil.c': path escapes the work directory"),
        "traversal after a name": (tgz(reg("pkg-1.0/../../evil.c")), "path escapes the work directory"),
        "absolute path": (tgz(reg("/tmp/kk-evil.c")), "path is absolute"),
        "absolute symlink": (tgz(node("pkg-1.0/etc", sym, "/etc")), "symlink target '/etc' is absolute"),
        "symlink out, then through it": (tgz(node("pkg-1.0/up", sym, "../../.."), reg("pkg-1.0/up/evil.c")),
                                         "points outside the work directory"),
        "symlink chain out": (tgz(node("pkg-1.0/b", sym, ".."), node("pkg-1.0/a", sym, "b/.."),
                                  reg("pkg-1.0/a/evil.c")), "has '..' after a name"),
        "symlink chain inside": (tgz(node("pkg-1.0/c", sym, "src/main.c"), node("pkg-1.0/b", sym, "c"),
                                     node("pkg-1.0/a", sym, "b")), ["a", "b", "c", "src/main.c"]),
        "symlink loop inside": (tgz(node("pkg-1.0/x", sym, "y"), node("pkg-1.0/y", sym, "x")), ["src/main.c"]),
        "hard link to /etc/passwd": (tgz(node("pkg-1.0/p", hard, "/etc/passwd")), "hard link target '/etc/passwd' is absolute"),
        "hard link outside": (tgz(node("pkg-1.0/p", hard, "../outside/sentinel")), "escapes the work directory"),
        "hard link inside": (tgz(node("pkg-1.0/copy.c", hard, "pkg-1.0/src/main.c")), ["copy.c"]),
        "character device": (tgz(node("pkg-1.0/null", tarfile.CHRTYPE)), "device file is not allowed"),
        "block device": (tgz(node("pkg-1.0/sda", tarfile.BLKTYPE)), "device file is not allowed"),
        "FIFO": (tgz(node("pkg-1.0/fifo", tarfile.FIFOTYPE)), "FIFO is not allowed"),
        "duplicate member": (tgz(reg("pkg-1.0/src/main.c", b"int evil;\n")), "a member of that name exists already"),
        "file over a directory": (tgz(reg("pkg-1.0/src")), "exists already"),
        # bombs and lies about sizes
        "gzip size bomb": (_tar(zeros(3), "w:gz"), "expands beyond the limit of 1048576 bytes"),
        "one member over the limit": (_tar(zeros(1, 2 * 1024**2), "w:gz"), "member is larger than the limit"),
        "file-count bomb": (_tar([reg(f"pkg-1.0/f{i}", b"") for i in range(300)], "w:gz"), "more than 200 members"),
        "huge declared size": (huge_declared_size(), "member is larger than the limit"),
        "zip bomb": (_zip([(info.name, data) for info, data in zeros(3)]), "expands beyond the limit"),
        "zip slip": (_zip([("pkg-1.0/a.c", C_FILE), ("../../evil.sh", b"#!/bin/sh\n")]), "escapes the work directory"),
        "zip absolute": (_zip([("/tmp/kk-evil.sh", b"x")]), "path is absolute"),
        "zip backslash": (_zip([("..\\..\\evil.sh", b"x")]), "Windows drive or backslash"),
        "zip symlink out": (_zip([("pkg-1.0/l", b"../../../etc", 0o120777)]), "points outside the work directory"),
        "zip device": (_zip([("pkg-1.0/null", b"", 0o020666)]), "device file is not allowed"),
        "name of 100000 characters": (_tar([reg("pkg-1.0/" + "n" * 100_000)], "w:gz", tarfile.PAX_FORMAT),
                                      "File name too long"),
    }


CASES = archive_cases()


class Place:
    """tmp/work is the work directory; tmp/outside holds a sentinel; tmp is snapshotted."""

    def __init__(self, tmp: Path):
        self.tmp, self.work = tmp, tmp / "work"
        self.work.mkdir()
        (tmp / "outside").mkdir()
        (tmp / "outside" / "sentinel").write_text("keep me")
        self.before = self.snapshot()

    def snapshot(self):
        """Every entry under tmp outside the work directory, with its content or target."""
        seen = {}
        for top, dirs, files in os.walk(self.tmp):
            dirs[:] = [d for d in dirs if Path(top, d) != self.work]
            for name in dirs + files:
                path = Path(top, name)
                seen[path] = os.readlink(path) if path.is_symlink() else \
                    path.read_bytes() if path.is_file() else "dir"
        return seen

    def assert_nothing_outside(self):
        assert self.snapshot() == self.before
        assert not Path("/tmp/kk-evil.c").exists() and not Path("/tmp/kk-evil.sh").exists()


def fetch_and_unpack(place: Place, event: SourceEvent, fetcher: LocalFetcher) -> Path:
    """What the pipeline does before the analyzers: download into work/download, unpack into work/source."""
    download = place.work / "download"
    download.mkdir()
    source = fetcher.download(event, download)
    return unpack_source(source.path, place.work, LIMITS)


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_archive(case, tmp_path):
    data, expected = CASES[case]
    place = Place(tmp_path)
    archive = tmp_path / "in" / "release.tar"
    archive.parent.mkdir()
    archive.write_bytes(data)
    place.before = place.snapshot()
    fetcher = LocalFetcher(LIMITS.max_download_bytes, 5, spool_dir=None)
    event = SourceEvent("local", "pkg", "1.0", source_url=str(archive))
    if isinstance(expected, str):
        with pytest.raises(SourceError) as refused:
            fetch_and_unpack(place, event, fetcher)
        message = str(refused.value)
        assert expected in message
        assert len(message) < 1000 and message.isprintable()      # fit for a log line and the database
    else:
        root = fetch_and_unpack(place, event, fetcher)
        for name in expected:
            assert os.path.lexists(root / name), name
        if case == "odd but valid names":
            assert {p.name for p in (root / "src").iterdir()} == {Path(n).name for n in expected} | {"main.c", "util.c"}
            assert all((root / name).read_bytes() == C_FILE for name in expected)
    place.assert_nothing_outside()


def test_the_suite_covers_at_least_fifty_cases():
    assert len(CASES) + len(URL_CASES) >= 50


# --- hostile servers -------------------------------------------------------------------

GOOD = _tar(tree(), "w:gz")


class Hostile(http.server.BaseHTTPRequestHandler):
    """Routes an attacker's server could answer with."""

    def do_GET(self):  # noqa: N802 (the base class's name)
        route = self.path.split("?")[0]
        if route.startswith("/trickle-body"):
            self._headers(200, length=len(GOOD))
            self._trickle(GOOD)
        elif route == "/trickle-headers":
            self._trickle(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"z" * 200)
        elif route == "/huge":
            self._headers(200, length=50 * 1024**3)
            self._send(b"\0" * 65536)
        elif route == "/endless":
            self._headers(200, chunked=True)
            while self._send(b"%x\r\n%s\r\n" % (65536, b"\0" * 65536)):
                pass
        elif route.startswith("/to-"):
            target = {"/to-ftp": "ftp://127.0.0.1/x.tar.gz", "/to-file": "file:///etc/passwd",
                      "/to-loop": "/to-loop", "/to-good": "/good.tar.gz"}[route]
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route == "/short":
            self._headers(200, length=len(GOOD) * 2)
            self._send(GOOD)
        elif route == "/missing.tar.gz":
            self._headers(404, length=0)
        else:
            self._headers(200, length=len(GOOD))
            self._send(GOOD)

    def _headers(self, status, length=None, chunked=False):
        self.send_response(status)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, data) -> bool:
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except OSError:             # the client gave up: what the test wants
            return False

    def _trickle(self, data):
        for byte in data:
            if not self._send(bytes([byte])):
                return
            time.sleep(0.25)

    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        pass


@pytest.fixture(scope="module")
def hostile():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


# path -> (error class or None for success, part of the message)
URL_CASES = {
    "/trickle-body/pkg.tar.gz": (SourceError, "not finished within the 2-second deadline"),
    "/trickle-headers": (SourceError, "not finished within the 2-second deadline"),
    "/huge": (SourceError, "huge is larger than the 1048576-byte limit (the server declares 53687091200 bytes)"),
    "/endless": (SourceError, "endless is larger than the 1048576-byte limit"),
    "/to-ftp": (SourceError, "redirects to ftp://127.0.0.1/x.tar.gz, and only http and https are followed"),
    "/to-file": (SourceError, "redirect refused"),
    "/to-loop": (SourceError, "redirect refused"),
    "/to-good": (None, "to-good"),                  # named after what was asked for
    "/short": (TransientSourceError, f"the connection closed {len(GOOD)} bytes before the declared end"),
    "/missing.tar.gz": (SourceNotFound, "HTTP 404"),
    "/pkg/%2e%2e": (None, "source"),
    "/": (None, "source"),
    "/get?name=../../etc/passwd&v=1": (None, "get"),
    "/\u0125ello-\u00fc.tar.gz": (None, "_ello-_.tar.gz"),
    "/a b\n\x1b[31m.tar.gz": (None, "a_b__31m.tar.gz"),    # urlsplit drops the newline, as browsers do
    "http:///no-host.tar.gz": (SourceError, "the URL names no host"),
    "http://127.0.0.1:99999/x.tar.gz": (SourceError, "not a valid URL (Port out of range"),
    "ftp://127.0.0.1/x.tar.gz": (SourceError, "not a local path, a file:// URL or an http(s) URL"),
}


@pytest.mark.parametrize("path", list(URL_CASES))
def test_hostile_url(path, hostile, tmp_path):
    error, expected = URL_CASES[path]
    url = path if "://" in path else hostile + path
    place = Place(tmp_path)
    fetcher = LocalFetcher(LIMITS.max_download_bytes, 5, spool_dir=None, deadline=2)
    event = SourceEvent("local", "pkg", "1.0", source_url=url)
    started = time.monotonic()
    if error is None:
        root = fetch_and_unpack(place, event, fetcher)
        assert (root / "src" / "main.c").read_bytes() == C_FILE
        assert [p.name for p in (place.work / "download").iterdir()] == [expected]
    else:
        with pytest.raises(error) as refused:
            fetch_and_unpack(place, event, fetcher)
        assert expected in str(refused.value) and str(refused.value).isprintable()
        assert not list((place.work / "download").iterdir())        # no partial file left
    assert time.monotonic() - started < 4                            # the deadline holds, to the second
    place.assert_nothing_outside()


def test_a_huge_declared_size_is_refused_before_reading(hostile, tmp_path):
    """Refused on the header alone: the 50 GiB are never asked for (the server sent 64 KiB)."""
    fetcher = LocalFetcher(LIMITS.max_download_bytes, 5, spool_dir=None, deadline=30)
    started = time.monotonic()
    with pytest.raises(SourceError, match="the server declares 53687091200 bytes"):
        fetcher.download(SourceEvent("local", "p", "1", source_url=hostile + "/huge"), tmp_path)
    assert time.monotonic() - started < 1


# --- end to end: the real command -------------------------------------------------------

def analyze(tmp_path, source, *extra_config):
    """``kiskadee analyze`` with flawfinder, its work directory under tmp_path/work."""
    config = write_config(tmp_path / "k.toml", {"analysis": "\n".join(
        [f'work_dir = "{tmp_path / "work"}"', 'analyzers = ["flawfinder"]', *extra_config])})
    return run_kiskadee("analyze", source, "--db", tmp_path / "k.db", "--name", "pkg", "--version", "1.0",
                        config=config, timeout=60)


def test_analyze_refuses_a_corrupt_gzip_and_stores_nothing(tmp_path):
    archive = tmp_path / "pkg-1.0.tar.gz"
    archive.write_bytes(gzip_with_bad_crc())
    result = analyze(tmp_path, archive)
    assert result.returncode == 4, result.stderr
    assert "CRC check failed" in result.stderr and "Traceback" not in result.stderr
    assert list((tmp_path / "work").iterdir()) == []             # the work directory was cleaned up


def test_analyze_carries_odd_but_valid_names_to_the_database_exactly(tmp_path):
    names = ["src/a b.c", "src/\u00e9t\u00e9 \u65e5\u672c.c", "src/$(touch pwned).c"]
    archive = tmp_path / "pkg-1.0.tar.gz"
    archive.write_bytes(_tar([reg(f"pkg-1.0/{name}") for name in names], "w:gz"))
    result = analyze(tmp_path, archive)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "k.db") as db:
        paths = {row[0] for row in db.execute("SELECT DISTINCT path FROM finding_detail")}
    assert paths == set(names)
    assert not list(Path.cwd().glob("pwned")) and not list(tmp_path.rglob("pwned"))


@pytest.mark.slow
def test_analyze_of_a_trickling_url_ends_at_the_deadline(tmp_path, hostile):
    started = time.monotonic()
    result = analyze(tmp_path, hostile + "/trickle-body/pkg-1.0.tar.gz", "download_deadline = 2.0")
    assert result.returncode == 4, result.stderr
    assert "not finished within the 2-second deadline" in result.stderr
    assert time.monotonic() - started < 15

