"""DebianFetcher against a real HTTP server serving a mirror laid out from real archive files.

The index excerpt and the pool files are in tests/fixtures/debian (see SOURCE.txt).
"""

import dataclasses
import json
import socket
import time
from pathlib import Path

import pytest
from harness import SOURCES

from kiskadee.errors import SourceError
from kiskadee.sources.debian import DebianFetcher, main_tarball, parse_sources
from kiskadee.sources.fetcher import sha256_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEBIAN = FIXTURES / "debian"

HELLO_DSC_SHA256 = "75296f5ef618ae2f1849e22b142a2b5ab52c452ebefa4e7b0564c44617db3790"
HELLO_ORIG_SHA256 = "31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b"
HOSTNAME_TAR_SHA256 = "f3fb39f30b00ba7dba2cec013195d7e1bb215f241153208ccd52da3eedfe7a7d"
C_PACKAGES = {"doxygen", "gzip", "hello", "hostname", "tinyxml2"}
NOT_C = {"fzf", "rust-ripgrep", "shellcheck", "lsb"}
@pytest.fixture
def state(tmp_path):
    return tmp_path / "state" / "debian.json"


def delivered_pass(fetcher):
    """The events of one pass, committed as ``kiskadee fetch`` does once the monitor acknowledged them."""
    events = list(fetcher.poll())
    fetcher.commit()
    return events


def events_by_name(fetcher):
    return {event.package: event for event in delivered_pass(fetcher)}


def with_version(text: str, package: str, old: str, new: str) -> str:
    paragraphs = text.split("\n\n")
    for index, paragraph in enumerate(paragraphs):
        if paragraph.startswith("Package: %s\n" % package):
            assert "Version: %s\n" % old in paragraph
            paragraphs[index] = paragraph.replace("Version: %s\n" % old, "Version: %s\n" % new)
    return "\n\n".join(paragraphs)


# --- parse_sources on the real excerpt ----------------------------------------------

def test_parse_sources_keeps_the_newest_and_ignores_extra_source_only():
    packages = parse_sources(SOURCES)
    assert set(packages) == C_PACKAGES | NOT_C
    assert packages["doxygen"].version == "1.9.4-4"     # 1.9.1-2 and 1.9.4-2 are Extra-Source-Only
    hello = packages["hello"]
    assert (hello.version, hello.directory, hello.architecture) == ("2.10-3", "pool/main/h/hello", "any")
    assert hello.dsc.name == "hello_2.10-3.dsc" and hello.dsc.sha256 == HELLO_DSC_SHA256
    assert hello.dsc.size == 1721
    assert [f.name for f in hello.files] == [
        "hello_2.10-3.dsc", "hello_2.10.orig.tar.gz", "hello_2.10.orig.tar.gz.asc",
        "hello_2.10-3.debian.tar.xz"]
    assert "help2man" in hello.build_dependency_names
    assert "mingw-w64" in packages["gzip"].build_depends_indep
    extra_only = SOURCES.split("\n\n")[0]
    assert "Version: 1.9.1-2\n" in extra_only and "Extra-Source-Only: yes" in extra_only
    assert parse_sources(extra_only) == {}


def test_parse_sources_takes_lines_of_bytes_and_any_order():
    reordered = "\n\n".join(reversed(SOURCES.strip().split("\n\n"))) + "\n"
    duplicated = SOURCES + "\n" + with_version(SOURCES, "hello", "2.10-3", "2.10-2")
    for data in (reordered.encode().splitlines(keepends=True), duplicated):
        packages = parse_sources(data)
        assert packages["hello"].version == "2.10-3"
        assert packages["doxygen"].version == "1.9.4-4"


def test_parse_sources_is_fast_on_an_index_the_size_of_bookworm():
    paragraphs = SOURCES.strip().split("\n\n")
    big = []
    for copy in range(3200):     # 35,200 paragraphs, about the size of bookworm main
        for paragraph in paragraphs:
            name = paragraph.split("\n", 1)[0][len("Package: "):]
            big.append(paragraph.replace("Package: %s\n" % name, "Package: %s-%d\n" % (name, copy), 1))
    text = "\n\n".join(big) + "\n"
    started = time.monotonic()
    packages = parse_sources(text.splitlines(keepends=True))
    assert len(packages) == 9 * 3200
    assert time.monotonic() - started < 10


def test_main_tarball_rules():
    assert main_tarball(["a_1.dsc", "a_1.orig.tar.gz", "a_1.orig.tar.gz.asc", "a_1-1.debian.tar.xz"]) \
        == "a_1.orig.tar.gz"
    assert main_tarball(["a_1.orig.tar.xz", "a_1.orig-doc.tar.xz", "a_1-1.debian.tar.xz"]) \
        == "a_1.orig.tar.xz"
    assert main_tarball(["a_1.dsc", "a_1.tar.xz"]) == "a_1.tar.xz"
    assert main_tarball(["a_1.orig.tar.gz", "a_1-1.diff.gz"]) == "a_1.orig.tar.gz"
    with pytest.raises(ValueError):
        main_tarball(["a_1.dsc", "a_1-1.debian.tar.xz"])


# --- poll --------------------------------------------------------------------------------

def test_first_poll_announces_the_c_packages_with_their_dsc(mirror, state):
    events = events_by_name(DebianFetcher(mirror.url, state_path=state))
    assert set(events) == C_PACKAGES
    hello = events["hello"]
    assert (hello.fetcher, hello.version) == ("debian", "2.10-3")
    assert hello.source_url == mirror.url + "/pool/main/h/hello/hello_2.10-3.dsc"
    assert hello.sha256 == HELLO_DSC_SHA256
    assert hello.meta["directory"] == "pool/main/h/hello"
    assert hello.meta["suite"] == "bookworm"
    assert {"name": "hello_2.10.orig.tar.gz", "size": 725946, "sha256": HELLO_ORIG_SHA256} \
        in hello.meta["files"]
    assert events["hostname"].source_url == mirror.url + "/pool/main/h/hostname/hostname_3.23+nmu1.dsc"
    assert events["doxygen"].version == "1.9.4-4"
    assert json.loads(state.read_text())["packages"]["hello"] == "2.10-3"


def test_unchanged_index_announces_nothing_then_a_new_version_exactly_once(mirror, state):
    fetcher = DebianFetcher(mirror.url, state_path=state)
    assert set(events_by_name(fetcher)) == C_PACKAGES
    assert delivered_pass(fetcher) == []
    mirror.publish(with_version(SOURCES, "hello", "2.10-3", "2.10-4"))
    events = delivered_pass(fetcher)
    assert [(e.package, e.version) for e in events] == [("hello", "2.10-4")]
    assert events[0].source_url.endswith("/pool/main/h/hello/hello_2.10-3.dsc")  # index names the files
    assert delivered_pass(fetcher) == []


def test_an_interrupted_pass_announces_again(mirror, state):
    fetcher = DebianFetcher(mirror.url, state_path=state)
    passing = fetcher.poll()
    next(passing)
    passing.close()
    assert not state.exists()
    assert set(events_by_name(fetcher)) == C_PACKAGES


def test_a_pass_is_remembered_only_when_committed(mirror, state):
    fetcher = DebianFetcher(mirror.url, state_path=state, allow=["hello"])
    assert set(events_by_name(fetcher)) == {"hello"}
    remembered = state.read_bytes()
    mirror.publish(with_version(SOURCES, "hello", "2.10-3", "2.10-4"))
    assert [e.version for e in fetcher.poll()] == ["2.10-4"]        # never acknowledged
    assert state.read_bytes() == remembered
    assert [e.version for e in delivered_pass(fetcher)] == ["2.10-4"]
    assert json.loads(state.read_text())["packages"] == {"hello": "2.10-4"}
    assert delivered_pass(fetcher) == []


def test_allow_and_deny_lists(mirror, state, tmp_path):
    allowed = DebianFetcher(mirror.url, state_path=tmp_path / "a.json", allow=["hello", "fzf"])
    assert set(events_by_name(allowed)) == {"hello"}                 # fzf is Go
    everything = DebianFetcher(mirror.url, state_path=tmp_path / "b.json",
                               allow=["hello", "fzf", "lsb"], c_only=False)
    assert set(events_by_name(everything)) == {"hello", "fzf", "lsb"}
    denied = DebianFetcher(mirror.url, state_path=tmp_path / "c.json", deny=["hello", "gzip"])
    assert set(events_by_name(denied)) == C_PACKAGES - {"hello", "gzip"}


def test_a_package_newly_allowed_is_announced(mirror, state):
    assert set(events_by_name(DebianFetcher(mirror.url, state_path=state, deny=["hello"]))) \
        == C_PACKAGES - {"hello"}
    assert set(events_by_name(DebianFetcher(mirror.url, state_path=state))) == {"hello"}


def test_newest_version_across_components(mirror, state):
    contrib = with_version(SOURCES.split("\n\n")[5], "hello", "2.10-3", "2.10-5")
    assert contrib.startswith("Package: hello\n")
    mirror.publish(contrib + "\n", component="contrib")
    events = events_by_name(DebianFetcher(mirror.url, state_path=state, components=["main", "contrib"]))
    assert (events["hello"].version, events["hello"].meta["component"]) == ("2.10-5", "contrib")
    assert events["gzip"].meta["component"] == "main"


def test_missing_index_raises_source_error_with_its_url(mirror, state):
    fetcher = DebianFetcher(mirror.url, state_path=state, suite="trixie")
    with pytest.raises(SourceError, match="404") as caught:
        list(fetcher.poll())
    assert mirror.url + "/dists/trixie/main/source/Sources.xz" in str(caught.value)


def test_corrupt_index_raises_source_error(mirror, state):
    (mirror.root / "dists/bookworm/main/source/Sources.xz").write_bytes(b"<html>not xz</html>")
    with pytest.raises(SourceError, match="not a complete xz file"):
        list(DebianFetcher(mirror.url, state_path=state).poll())


def test_unreachable_mirror_raises_source_error_with_the_url(state):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = "http://127.0.0.1:%d/debian" % port
    with pytest.raises(SourceError, match="127.0.0.1:%d/debian/dists/bookworm" % port):
        list(DebianFetcher(url, state_path=state, timeout=5).poll())


# --- download ----------------------------------------------------------------------------

def poll_one(mirror, state, name):
    return events_by_name(DebianFetcher(mirror.url, state_path=state, allow=[name]))[name]


def test_download_verifies_every_file_and_returns_the_orig_tarball(mirror, state, tmp_path):
    event = poll_one(mirror, state, "hello")
    dest = tmp_path / "dest"
    dest.mkdir()
    source = DebianFetcher(mirror.url, state_path=state).download(event, dest)
    assert source.path == dest / "hello_2.10.orig.tar.gz"
    assert source.sha256 == HELLO_ORIG_SHA256 == sha256_file(source.path)
    assert source.url == mirror.url + "/pool/main/h/hello/hello_2.10.orig.tar.gz"
    assert sorted(p.name for p in dest.iterdir()) == [
        "hello_2.10-3.debian.tar.xz", "hello_2.10-3.dsc", "hello_2.10.orig.tar.gz",
        "hello_2.10.orig.tar.gz.asc"]
    assert (dest / "hello_2.10-3.debian.tar.xz").read_bytes() == \
        (DEBIAN / "hello_2.10-3.debian.tar.xz").read_bytes()


def test_native_package_downloads_its_single_tarball(mirror, state, tmp_path):
    event = poll_one(mirror, state, "hostname")
    source = DebianFetcher(mirror.url, state_path=state).download(event, tmp_path)
    assert source.path == tmp_path / "hostname_3.23+nmu1.tar.xz"
    assert source.sha256 == HOSTNAME_TAR_SHA256 == sha256_file(source.path)
    assert source.url.endswith("/pool/main/h/hostname/hostname_3.23+nmu1.tar.xz")


def test_tampered_pool_file_raises_source_error_naming_it(mirror, state, tmp_path):
    event = poll_one(mirror, state, "hello")
    tampered = mirror.pool_file("pool/main/h/hello/hello_2.10-3.debian.tar.xz")
    tampered.write_bytes(tampered.read_bytes()[:-1] + b"!")
    with pytest.raises(SourceError) as caught:
        DebianFetcher(mirror.url, state_path=state).download(event, tmp_path)
    message = str(caught.value)
    assert "hello_2.10-3.debian.tar.xz" in message
    assert "60ee7a466808301fbaa7fea2490b5e7a6d86f598956fb3e79c71b3295dc1f249" in message  # expected
    assert sha256_file(tampered) in message                                               # actual
    assert not (tmp_path / "hello_2.10-3.debian.tar.xz").exists()
    assert not list(tmp_path.glob("*.part"))


def test_tampered_dsc_raises_source_error(mirror, state, tmp_path):
    event = poll_one(mirror, state, "hello")
    dsc = mirror.pool_file("pool/main/h/hello/hello_2.10-3.dsc")
    dsc.write_text(dsc.read_text().replace("hello_2.10-3.debian.tar.xz", "evil.tar.xz"))
    with pytest.raises(SourceError, match="hello_2.10-3.dsc: SHA-256 mismatch"):
        DebianFetcher(mirror.url, state_path=state).download(event, tmp_path)


def test_missing_pool_file_raises_source_error_with_the_url(mirror, state, tmp_path):
    event = poll_one(mirror, state, "hello")
    mirror.pool_file("pool/main/h/hello/hello_2.10.orig.tar.gz").unlink()
    with pytest.raises(SourceError, match="404") as caught:
        DebianFetcher(mirror.url, state_path=state).download(event, tmp_path)
    assert mirror.url + "/pool/main/h/hello/hello_2.10.orig.tar.gz" in str(caught.value)


def test_size_cap_refuses_a_larger_file(mirror, state, tmp_path):
    event = poll_one(mirror, state, "hello")
    fetcher = DebianFetcher(mirror.url, state_path=state, max_bytes=100_000)
    with pytest.raises(SourceError, match="hello_2.10.orig.tar.gz is larger than the 100000-byte limit"):
        fetcher.download(event, tmp_path)
    assert not (tmp_path / "hello_2.10.orig.tar.gz").exists()
    assert not list(tmp_path.glob("*.part"))


def test_dsc_listing_a_path_outside_dest_is_refused(mirror, state, tmp_path):
    event = poll_one(mirror, state, "hello")
    dsc = mirror.pool_file("pool/main/h/hello/hello_2.10-3.dsc")
    dsc.write_text(dsc.read_text().replace(" hello_2.10-3.debian.tar.xz", " ../../evil.tar.xz"))
    forged = dataclasses.replace(event, sha256=sha256_file(dsc))    # as if the index were forged too
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SourceError, match="unsafe file name '../../evil.tar.xz'"):
        DebianFetcher(mirror.url, state_path=state).download(forged, dest)
    assert sorted(p.name for p in tmp_path.rglob("evil*")) == []
