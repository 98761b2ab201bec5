"""Tests of kiskadee.sources.unpack: every archive here is built in the test itself."""

import gzip
import io
import os
import stat
import tarfile
import uuid
import zipfile
from pathlib import Path

import pytest

from kiskadee.errors import SourceError, UnsafeArchiveError
from kiskadee.sources import unpack as unpack_module
from kiskadee.sources.unpack import UnpackLimits, unpack

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hello_2.10.orig.tar.gz"
MiB = 1024 * 1024


# --- building archives -----------------------------------------------------

def reg(name, data=b"", mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def directory(name, mode=0o755):
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info, None


def link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, target, 0o777
    return info, None


def special(name, kind):
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = kind, 1, 3
    return info, None


def make_tar(path, members, mode="w:gz"):
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def make_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    """members: (name, data) or (name, data, unix_mode)."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data, *mode in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            if mode:
                info.external_attr = mode[0] << 16
            zf.writestr(info, data)
    return path


# --- the layout every test works in ----------------------------------------

class Layout:
    """tmp/work/dest is where archives go; tmp/outside holds a sentinel."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.dest = tmp / "work" / "dest"
        self.dest.mkdir(parents=True)
        self.outside = tmp / "outside"
        self.outside.mkdir()
        (self.outside / "sentinel").write_text("keep me")
        self.before = None

    def snapshot(self):
        """Every entry under tmp but outside dest, with its content or link target."""
        seen = {}
        for top, dirs, files in os.walk(self.tmp):
            if Path(top) == self.dest:
                dirs[:] = []
                continue
            for name in dirs + files:
                path = Path(top) / name
                if path == self.dest:
                    continue
                if path.is_symlink():
                    seen[path] = ("link", os.readlink(path))
                elif path.is_file():
                    seen[path] = ("file", path.read_bytes())
                else:
                    seen[path] = ("dir", None)
        return seen

    def unpack(self, archive, limits=UnpackLimits()):
        self.before = self.snapshot()
        return unpack(archive, self.dest, limits)

    def refused(self, archive, member, error=UnsafeArchiveError, limits=UnpackLimits()):
        """Unpack, expecting error naming member; check nothing outside dest changed."""
        with pytest.raises(error) as caught:
            self.unpack(archive, limits)
        assert f"refusing archive member {member!r}: " in str(caught.value)
        self.assert_outside_untouched()
        return str(caught.value)

    def assert_outside_untouched(self):
        assert self.snapshot() == self.before
        assert (self.outside / "sentinel").read_text() == "keep me"


@pytest.fixture
def lay(tmp_path):
    return Layout(tmp_path)


def dest_files(dest):
    """Relative path -> content of every regular file under dest."""
    return {p.relative_to(dest).as_posix(): p.read_bytes()
            for p in dest.rglob("*") if p.is_file() and not p.is_symlink()}


# --- good archives -----------------------------------------------------------

GOOD = [reg("pkg-1.0/README", b"hello\n"), directory("pkg-1.0/src"),
        reg("pkg-1.0/src/main.c", b"int main(void) { return 0; }\n", 0o755)]


@pytest.mark.parametrize("mode,suffix", [("w:gz", "tar.gz"), ("w:bz2", "tar.bz2"),
                                         ("w:xz", "tar.xz"), ("w", "tar")])
def test_tar_with_single_top_dir_returns_it(lay, mode, suffix):
    archive = make_tar(lay.tmp / f"pkg.{suffix}", GOOD, mode)
    root = lay.unpack(archive)
    assert root == lay.dest / "pkg-1.0"
    assert dest_files(root) == {"README": b"hello\n",
                                "src/main.c": b"int main(void) { return 0; }\n"}
    assert stat.S_IMODE((root / "src" / "main.c").stat().st_mode) == 0o755
    lay.assert_outside_untouched()


def test_format_is_detected_by_content_not_name(lay):
    archive = make_tar(lay.tmp / "misnamed.zip", GOOD, "w:xz")
    assert lay.unpack(archive) == lay.dest / "pkg-1.0"
    zipped = make_zip(lay.tmp / "misnamed.tar.gz", [("z-1/a.txt", b"zip content")])
    other = lay.tmp / "work" / "other"
    other.mkdir()
    assert unpack(zipped, other) == other / "z-1"
    assert (other / "z-1" / "a.txt").read_bytes() == b"zip content"


def test_zip_with_single_top_dir_returns_it(lay):
    archive = make_zip(lay.tmp / "pkg.zip", [("pkg-2/", b""), ("pkg-2/a.txt", b"A" * 1000),
                                              ("pkg-2/sub/b.txt", b"bee", 0o100600)])
    root = lay.unpack(archive)
    assert root == lay.dest / "pkg-2"
    assert dest_files(root) == {"a.txt": b"A" * 1000, "sub/b.txt": b"bee"}
    lay.assert_outside_untouched()


def test_archive_without_single_top_dir_returns_dest(lay):
    archive = make_tar(lay.tmp / "flat.tar.gz", [reg("a/x", b"1"), reg("b/y", b"2")])
    assert lay.unpack(archive) == lay.dest
    assert dest_files(lay.dest) == {"a/x": b"1", "b/y": b"2"}


def test_single_top_level_file_returns_dest(lay):
    archive = make_tar(lay.tmp / "one.tar", [reg("./README", b"r")], "w")
    assert lay.unpack(archive) == lay.dest
    assert (lay.dest / "README").read_bytes() == b"r"


def test_internal_relative_symlink_is_kept(lay):
    archive = make_tar(lay.tmp / "links.tar.gz", [
        reg("p/lib/real.h", b"#define X 1\n"), link("p/include/alias.h", "../lib/real.h"),
        link("p/same", "lib"), reg("p/same/through.txt", b"via link")])
    root = lay.unpack(archive)
    alias = root / "include" / "alias.h"
    assert alias.is_symlink() and os.readlink(alias) == "../lib/real.h"
    assert alias.read_bytes() == b"#define X 1\n"
    assert (root / "lib" / "through.txt").read_bytes() == b"via link"
    lay.assert_outside_untouched()


def test_internal_hard_link_is_materialised_as_copy(lay):
    archive = make_tar(lay.tmp / "hard.tar.gz", [
        reg("p/orig", b"same bytes"), link("p/copy", "p/orig", tarfile.LNKTYPE)])
    root = lay.unpack(archive)
    assert (root / "copy").read_bytes() == b"same bytes"
    assert not (root / "copy").is_symlink()


def test_modes_are_sanitised(lay):
    """Readable by all, writable by the owner only, no setuid, setgid or sticky bit, whatever the archive
    says: jq 1.6's tarball has directories only their owner may enter, which analyzers running as nobody
    (the local sandbox under root) could not read."""
    archive = make_tar(lay.tmp / "modes.tar", [
        directory("p", 0o500), reg("p/suid", b"x", 0o4755), reg("p/none", b"y", 0o000),
        directory("p/sticky", 0o1777), reg("p/sticky/f", b"z", 0o2644),
        directory("p/private", 0o700), reg("p/private/a.c", b"int a;", 0o600), reg("p/open", b"w", 0o666)], "w")
    root = lay.unpack(archive)
    modes = {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}
    assert modes == {".": 0o755, "suid": 0o755, "none": 0o644, "sticky": 0o755, "sticky/f": 0o644,
                     "private": 0o755, "private/a.c": 0o644, "open": 0o644}


def test_real_hello_fixture(lay):
    root = lay.unpack(FIXTURE)
    assert root.name == "hello-2.10" and root.parent == lay.dest
    assert (root / "src" / "hello.c").is_file()
    assert b"main (int argc, char *argv[])" in (root / "src" / "hello.c").read_bytes()
    lay.assert_outside_untouched()


# --- hostile members ---------------------------------------------------------

@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "./../evil", "a/b/../../../evil"])
def test_path_traversal_is_refused(lay, name):
    archive = make_tar(lay.tmp / "trav.tar.gz", [reg("a/ok", b"ok"), reg(name, b"pwned")])
    message = lay.refused(archive, name)
    assert "escapes the work directory" in message
    assert not (lay.tmp / "work" / "evil").exists()
    assert not (lay.tmp / "evil").exists()


def test_absolute_path_is_refused(lay):
    target = Path(f"/tmp/kk-evil-{uuid.uuid4().hex}")
    archive = make_tar(lay.tmp / "abs.tar.gz", [reg(str(target), b"pwned")])
    assert "is absolute" in lay.refused(archive, str(target))
    assert not target.exists()


def test_symlink_escape_then_write_through_it_is_refused(lay):
    archive = make_tar(lay.tmp / "sym.tar.gz", [
        link("link", "../../outside"), reg("link/file", b"pwned")])
    assert "points outside" in lay.refused(archive, "link")
    assert not (lay.outside / "file").exists()
    assert not os.path.lexists(lay.dest / "link")


def test_nested_symlink_escape_is_refused(lay):
    archive = make_tar(lay.tmp / "sym2.tar.gz", [
        directory("d"), link("d/up", "../../.."), reg("d/up/pwned", b"x")])
    lay.refused(archive, "d/up")
    assert not (lay.tmp / "pwned").exists()


def test_symlink_resolved_through_later_link_is_refused(lay):
    # "x -> d/l/.." looks harmless lexically, but once d/l -> ".." it means "../":
    # a target with '..' after a name is refused whatever exists at the time.
    archive = make_tar(lay.tmp / "sym3.tar.gz", [
        directory("d"), link("x", "d/l/../.."), link("d/l", ".."), reg("x/pwned", b"x")])
    assert "'..' after a name" in lay.refused(archive, "x")
    assert not (lay.tmp / "work" / "pwned").exists()


def test_write_through_escaping_symlink_is_refused_even_if_link_got_in(lay, monkeypatch):
    # Defence in depth: were a bad symlink ever created, the parent-directory
    # check must still stop a member written through it.
    def careless_symlink(self, member, path):
        os.symlink(member.target, path)
    monkeypatch.setattr(unpack_module._Extractor, "_add_symlink", careless_symlink)
    archive = make_tar(lay.tmp / "sym4.tar.gz", [
        link("link", "../../outside"), reg("link/file", b"pwned")])
    assert "resolves outside" in lay.refused(archive, "link/file")
    assert not (lay.outside / "file").exists()


def test_absolute_symlink_is_refused(lay):
    archive = make_tar(lay.tmp / "abssym.tar.gz", [
        link("p/etc", "/etc"), reg("p/etc/kk-evil", b"x")])
    assert "is absolute" in lay.refused(archive, "p/etc")
    assert not os.path.lexists(lay.dest / "p" / "etc")


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside/sentinel", "../outside/x"])
def test_hard_link_escape_is_refused(lay, target):
    passwd = os.stat("/etc/passwd")
    archive = make_tar(lay.tmp / "hard.tar.gz", [link("p/h", target, tarfile.LNKTYPE)])
    assert f"hard link target {target!r}" in lay.refused(archive, "p/h")
    assert not os.path.lexists(lay.dest / "p" / "h")
    assert os.stat("/etc/passwd").st_mtime == passwd.st_mtime
    assert not (lay.outside / "x").exists()


def test_hard_link_to_later_member_is_refused(lay):
    archive = make_tar(lay.tmp / "hard2.tar.gz", [
        link("p/h", "p/later", tarfile.LNKTYPE), reg("p/later", b"x")])
    assert "not an earlier file member" in lay.refused(archive, "p/h")


@pytest.mark.parametrize("kind,word", [(tarfile.CHRTYPE, "device file"),
                                       (tarfile.BLKTYPE, "device file"),
                                       (tarfile.FIFOTYPE, "FIFO")])
def test_special_files_are_refused(lay, kind, word):
    archive = make_tar(lay.tmp / "dev.tar.gz", [reg("p/ok", b"1"), special("p/node", kind)])
    assert f"{word} is not allowed" in lay.refused(archive, "p/node")
    assert not os.path.lexists(lay.dest / "p" / "node")


def test_duplicate_member_is_refused(lay):
    archive = make_tar(lay.tmp / "dup.tar.gz", [
        link("p/f", "g"), reg("p/f", b"would follow the link")])
    assert "exists already" in lay.refused(archive, "p/f")
    assert not (lay.dest / "p" / "g").exists()


# --- limits ------------------------------------------------------------------

def test_gzip_tar_bomb_is_refused(lay):
    archive = make_tar(lay.tmp / "bomb.tar.gz", [reg("bomb/zeros", bytes(50 * MiB))])
    assert archive.stat().st_size < 1 * MiB
    lay.refused(archive, "bomb/zeros", limits=UnpackLimits(max_bytes=10 * MiB))
    assert not (lay.dest / "bomb" / "zeros").exists()   # refused on its header already


def test_bytes_are_counted_while_streaming(lay):
    # Every member is under the limit by its header; together they are not.
    members = [reg(f"p/chunk{i}", bytes(4 * MiB)) for i in range(5)]
    archive = make_tar(lay.tmp / "many.tar.gz", members)
    message = lay.refused(archive, "p/chunk2", limits=UnpackLimits(max_bytes=10 * MiB))
    assert "beyond the limit of 10485760 bytes" in message
    assert sum(len(v) for v in dest_files(lay.dest).values()) <= 10 * MiB


def test_too_many_files_is_refused(lay):
    archive = make_tar(lay.tmp / "many.tar.gz", [reg(f"p/f{i}", b"x") for i in range(150)])
    message = lay.refused(archive, "p/f100", limits=UnpackLimits(max_files=100))
    assert "more than 100 members" in message
    assert len(list((lay.dest / "p").iterdir())) == 100


def test_limits_allow_an_archive_just_within_them(lay):
    archive = make_tar(lay.tmp / "fits.tar.gz", [reg(f"p/f{i}", bytes(100)) for i in range(9)])
    assert lay.unpack(archive, UnpackLimits(max_bytes=900, max_files=10)) == lay.dest / "p"


# --- corrupt or unknown archives -----------------------------------------------

def test_truncated_tar_gz_is_refused(lay):
    members = [reg(f"p/random{i}", os.urandom(256 * 1024)) for i in range(4)]
    archive = make_tar(lay.tmp / "trunc.tar.gz", members)
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    lay.before = lay.snapshot()
    with pytest.raises(SourceError) as caught:
        unpack(archive, lay.dest)
    assert str(archive) in str(caught.value) and "corrupt" in str(caught.value)
    lay.assert_outside_untouched()


@pytest.mark.parametrize("maker", [
    lambda p: make_tar(p, [reg("p/r", os.urandom(300 * 1024))], "w:bz2"),
    lambda p: make_tar(p, [reg("p/r", os.urandom(300 * 1024))], "w:xz"),
    lambda p: make_zip(p, [("p/r", os.urandom(300 * 1024))])])
def test_truncated_bz2_xz_zip_are_refused(lay, maker):
    archive = maker(lay.tmp / "trunc.bin")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(SourceError) as caught:
        unpack(archive, lay.dest)
    assert str(archive) in str(caught.value)


def test_random_bytes_are_not_an_archive(lay):
    archive = lay.tmp / "noise.tar.gz"
    archive.write_bytes(os.urandom(64 * 1024))
    with pytest.raises(SourceError, match="is not a tar or zip archive") as caught:
        unpack(archive, lay.dest)
    assert str(archive) in str(caught.value)
    assert list(lay.dest.iterdir()) == []


def test_zip_with_bad_crc_is_refused(lay):
    archive = make_zip(lay.tmp / "crc.zip", [("p/a", b"A" * 5000)], zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    data[data.index(b"A" * 100) + 10] = ord("B")
    archive.write_bytes(bytes(data))
    with pytest.raises(SourceError, match="corrupt") as caught:
        unpack(archive, lay.dest)
    assert str(archive) in str(caught.value)


# --- hostile zips ----------------------------------------------------------------

@pytest.mark.parametrize("name,reason", [
    ("../evil", "escapes the work directory"), ("/tmp/kk-evil-zip", "is absolute"),
    ("C:/evil", "Windows drive or backslash"), ("..\\evil", "Windows drive or backslash"),
    ("\\evil", "Windows drive or backslash")])
def test_zip_hostile_names_are_refused(lay, name, reason):
    archive = make_zip(lay.tmp / "evil.zip", [("ok/a", b"a"), (name, b"pwned")])
    assert reason in lay.refused(archive, name)
    assert not (lay.tmp / "work" / "evil").exists()


def test_zip_bomb_is_refused(lay):
    archive = make_zip(lay.tmp / "bomb.zip", [("bomb/zeros", bytes(50 * MiB))])
    assert archive.stat().st_size < 1 * MiB
    lay.refused(archive, "bomb/zeros", limits=UnpackLimits(max_bytes=10 * MiB))
    assert sum(len(v) for v in dest_files(lay.dest).values()) <= 10 * MiB


def test_zip_bomb_of_many_members_is_counted_while_streaming(lay):
    members = [(f"bomb/z{i}", bytes(4 * MiB)) for i in range(5)]
    archive = make_zip(lay.tmp / "bombs.zip", members)
    lay.refused(archive, "bomb/z2", limits=UnpackLimits(max_bytes=10 * MiB))


def test_zip_symlinks_inside_kept_outside_refused(lay):
    good = make_zip(lay.tmp / "good.zip", [("p/real", b"r"),
                                           ("p/alias", b"real", stat.S_IFLNK | 0o777)])
    root = lay.unpack(good)
    assert os.readlink(root / "alias") == "real" and (root / "alias").read_bytes() == b"r"
    other = lay.tmp / "work" / "other"
    other.mkdir()
    evil = make_zip(lay.tmp / "evil.zip", [("p/up", b"../../..", stat.S_IFLNK | 0o777),
                                           ("p/up/pwned", b"x")])
    with pytest.raises(UnsafeArchiveError, match="refusing archive member 'p/up': "):
        unpack(evil, other)
    assert not (lay.tmp / "pwned").exists()


def test_zip_device_is_refused(lay):
    archive = make_zip(lay.tmp / "dev.zip", [("p/null", b"", stat.S_IFCHR | 0o666)])
    assert "device file is not allowed" in lay.refused(archive, "p/null")
    assert not os.path.lexists(lay.dest / "p" / "null")


def test_dest_must_be_an_existing_empty_directory(lay):
    archive = make_tar(lay.tmp / "ok.tar.gz", GOOD)
    (lay.dest / "leftover").write_text("x")
    with pytest.raises(ValueError):
        unpack(archive, lay.dest)
    with pytest.raises(ValueError):
        unpack(archive, lay.tmp / "missing")


def test_nesting_has_its_own_limit_and_message(lay):
    archive = make_tar(lay.tmp / "deep.tar.gz", [reg("a/b/c/d.c", b"x")])
    message = lay.refused(archive, "a/b/c/d.c", limits=UnpackLimits(max_depth=3))
    assert "nested deeper than the limit of 3 directory levels" in message


def test_corrupt_gzip_content_is_refused_by_its_crc(lay):
    """Only the gzip CRC can tell: the flipped byte sits in a stored block's content."""
    raw = make_tar(lay.tmp / "raw.tar", [reg("pkg/big.c", b"int x;\n" * 20000)], mode="w")
    data = bytearray(gzip.compress(raw.read_bytes(), compresslevel=0))
    data[len(data) // 2] ^= 0x01
    archive = lay.tmp / "crc.tar.gz"
    archive.write_bytes(bytes(data))
    lay.before = lay.snapshot()
    with pytest.raises(SourceError, match="CRC check failed"):
        unpack(archive, lay.dest)
    lay.assert_outside_untouched()


@pytest.mark.parametrize("name,shown", [("pkg/a\nb.c", r"'pkg/a\nb.c'"), ("pkg/\x1b[2J.c", r"'pkg/\x1b[2J.c'"),
                                        (b"pkg/\xff.c".decode("utf-8", "surrogateescape"), r"b'pkg/\xff.c'")])
def test_names_an_analyzer_would_mangle_are_refused_with_the_name_escaped(lay, name, shown):
    archive = make_tar(lay.tmp / "names.tar", [reg(name, b"x")], mode="w")
    with pytest.raises(UnsafeArchiveError) as caught:
        lay.unpack(archive)
    assert f"refusing archive member {shown}: path " in str(caught.value)
    lay.assert_outside_untouched()
