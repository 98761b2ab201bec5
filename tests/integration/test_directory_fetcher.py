"""DirectoryFetcher on a real folder where tarballs appear."""

import json
import logging
import os
import shutil
import time
from pathlib import Path

import pytest

from kiskadee.errors import SourceError
from kiskadee.sources.directory import DirectoryFetcher, parse_name
from kiskadee.sources.fetcher import sha256_file

HELLO_ORIG = Path(__file__).resolve().parent.parent / "fixtures" / "hello_2.10.orig.tar.gz"
HELLO_SHA256 = "31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b"


@pytest.fixture
def folder(tmp_path):
    watched = tmp_path / "incoming"
    watched.mkdir()
    return watched


@pytest.fixture
def fetcher(folder, tmp_path):
    return DirectoryFetcher(folder, state_path=tmp_path / "state" / "directory.json")


def drop(folder: Path, name: str, content: bytes = b"", age: float = 60, source: Path = None) -> Path:
    """Put a file in the folder, modified ``age`` seconds ago."""
    path = folder / name
    if source is not None:
        shutil.copyfile(source, path)
    else:
        path.write_bytes(content)
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def delivered_pass(fetcher):
    """The events of one pass, committed as ``kiskadee fetch`` does once the monitor acknowledged them."""
    events = list(fetcher.poll())
    fetcher.commit()
    return events


def announced(fetcher):
    return [(event.package, event.version) for event in delivered_pass(fetcher)]


@pytest.mark.parametrize("filename, expected", [
    ("hello-2.10.tar.gz", ("hello", "2.10")),
    ("foo-bar-1.2.3rc1.tgz", ("foo-bar", "1.2.3rc1")),
    ("zlib-1.3.1.tar.xz", ("zlib", "1.3.1")),
    ("bzip2-1.0.8.tar.bz2", ("bzip2", "1.0.8")),
    ("x264-0.164-snapshot.zip", ("x264", "0.164-snapshot")),
    ("libfoo2-3-1.ZIP", ("libfoo2-3", "1")),
    ("/some/where/hello-2.10.tar.gz", ("hello", "2.10")),
])
def test_parse_name(filename, expected):
    assert parse_name(filename) == expected


@pytest.mark.parametrize("filename, message", [
    ("hello.tar.gz", "cannot tell name and version"),
    ("-1.0.tar.gz", "cannot tell name and version"),
    ("hello-beta.tar.gz", "cannot tell name and version"),
    ("hello-2.10.rar", "not an archive"),
    ("hello-2.10.tar.gz.part", "not an archive"),
])
def test_parse_name_refuses(filename, message):
    with pytest.raises(ValueError, match=message):
        parse_name(filename)


def test_each_file_is_announced_once(folder, fetcher, tmp_path):
    hello = drop(folder, "hello-2.10.tar.gz", source=HELLO_ORIG)
    drop(folder, "foo-bar-1.2.3rc1.tgz", b"foo")
    events = delivered_pass(fetcher)
    assert [(e.package, e.version) for e in events] == [("foo-bar", "1.2.3rc1"), ("hello", "2.10")]
    event = events[1]
    assert event.fetcher == "directory"
    assert event.source_url == hello.resolve().as_uri()
    assert event.source_url.startswith("file:///")
    assert event.sha256 == HELLO_SHA256
    assert announced(fetcher) == []
    drop(folder, "zlib-1.3.1.tar.xz", b"zlib")
    assert announced(fetcher) == [("zlib", "1.3.1")]
    state = json.loads((tmp_path / "state" / "directory.json").read_text())
    assert set(state["files"]) == {"hello-2.10.tar.gz", "foo-bar-1.2.3rc1.tgz", "zlib-1.3.1.tar.xz"}


def test_partial_and_fresh_files_wait(folder, fetcher):
    drop(folder, "hello-2.10.tar.gz.part", b"half")
    drop(folder, "hello-2.11.tar.gz.tmp", b"half")
    drop(folder, "hello-2.12.tar.gz", b"being written", age=0)
    assert announced(fetcher) == []
    os.rename(folder / "hello-2.10.tar.gz.part", folder / "hello-2.10.tar.gz")
    drop(folder, "hello-2.12.tar.gz", b"written now", age=60)
    assert announced(fetcher) == [("hello", "2.10"), ("hello", "2.12")]


def test_settle_time_is_configurable(folder, tmp_path):
    drop(folder, "hello-2.10.tar.gz", b"x", age=5)
    assert announced(DirectoryFetcher(folder, tmp_path / "a.json", settle_seconds=10)) == []
    assert announced(DirectoryFetcher(folder, tmp_path / "b.json", settle_seconds=2)) == [("hello", "2.10")]


def test_replaced_file_is_announced_again(folder, fetcher):
    drop(folder, "hello-2.10.tar.gz", b"first", age=120)
    first = delivered_pass(fetcher)
    drop(folder, "hello-2.10.tar.gz", b"second content", age=60)
    second = delivered_pass(fetcher)
    assert [(e.package, e.version) for e in second] == [("hello", "2.10")]
    assert second[0].sha256 != first[0].sha256
    assert second[0].sha256 == sha256_file(folder / "hello-2.10.tar.gz")


def test_unparsable_and_other_files_are_skipped_and_logged_once(folder, fetcher, caplog):
    drop(folder, "README", b"read me")
    drop(folder, "snapshot.tar.gz", b"no version")
    drop(folder, "hello-2.10.tar.gz", b"hello")
    with caplog.at_level(logging.WARNING, logger="kiskadee.sources.directory"):
        assert announced(fetcher) == [("hello", "2.10")]
        assert announced(fetcher) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "snapshot.tar.gz" in warnings[0]


def test_interrupted_pass_announces_again(folder, fetcher, tmp_path):
    drop(folder, "a-1.tar.gz", b"a")
    drop(folder, "b-1.tar.gz", b"b")
    passing = fetcher.poll()
    next(passing)
    passing.close()
    assert not (tmp_path / "state" / "directory.json").exists()
    assert announced(fetcher) == [("a", "1"), ("b", "1")]


def test_a_pass_is_remembered_only_when_committed(folder, fetcher, tmp_path):
    state = tmp_path / "state" / "directory.json"
    drop(folder, "a-1.tar.gz", b"a")
    assert announced(fetcher) == [("a", "1")]
    remembered = state.read_bytes()
    drop(folder, "b-1.tar.gz", b"b")
    assert [(e.package, e.version) for e in fetcher.poll()] == [("b", "1")]    # never acknowledged
    assert state.read_bytes() == remembered
    assert announced(fetcher) == [("b", "1")]
    assert announced(fetcher) == []


def test_commit_after_an_interrupted_pass_writes_nothing(folder, fetcher, tmp_path):
    drop(folder, "a-1.tar.gz", b"a")
    passing = fetcher.poll()
    next(passing)
    passing.close()
    fetcher.commit()
    assert not (tmp_path / "state" / "directory.json").exists()
    assert announced(fetcher) == [("a", "1")]


def test_deleted_file_is_forgotten_and_announced_if_it_comes_back(folder, fetcher):
    path = drop(folder, "hello-2.10.tar.gz", b"hello")
    assert announced(fetcher) == [("hello", "2.10")]
    path.unlink()
    assert announced(fetcher) == []
    drop(folder, "hello-2.10.tar.gz", b"hello")
    assert announced(fetcher) == [("hello", "2.10")]


def test_missing_folder_raises_source_error(tmp_path):
    with pytest.raises(SourceError, match="cannot list watched folder .*nowhere"):
        list(DirectoryFetcher(tmp_path / "nowhere", tmp_path / "s.json").poll())


def test_download_copies_and_verifies(folder, fetcher, tmp_path):
    drop(folder, "hello-2.10.tar.gz", source=HELLO_ORIG)
    (event,) = list(fetcher.poll())
    dest = tmp_path / "dest"
    dest.mkdir()
    source = fetcher.download(event, dest)
    assert source.path == dest / "hello-2.10.tar.gz"
    assert source.sha256 == HELLO_SHA256 == sha256_file(source.path)
    assert source.url == event.source_url
    assert (folder / "hello-2.10.tar.gz").exists()       # copied, not moved


def test_download_refuses_a_file_changed_since_the_poll(folder, fetcher, tmp_path):
    drop(folder, "hello-2.10.tar.gz", source=HELLO_ORIG)
    (event,) = list(fetcher.poll())
    drop(folder, "hello-2.10.tar.gz", b"replaced")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SourceError) as caught:
        fetcher.download(event, dest)
    message = str(caught.value)
    assert "hello-2.10.tar.gz" in message and HELLO_SHA256 in message
    assert sha256_file(folder / "hello-2.10.tar.gz") in message
    assert list(dest.iterdir()) == []


def test_download_of_a_vanished_file_raises_source_error(folder, fetcher, tmp_path):
    path = drop(folder, "hello-2.10.tar.gz", b"hello")
    (event,) = list(fetcher.poll())
    path.unlink()
    with pytest.raises(SourceError, match="cannot copy .*hello-2.10.tar.gz"):
        fetcher.download(event, tmp_path)


@pytest.mark.parametrize("filename, expected", [
    ("MarkupSafe-2.1.5.tar.gz", ("markupsafe", "2.1.5")),
    ("markupsafe-3.0.0.tar.gz", ("markupsafe", "3.0.0")),
    ("zope.interface-6.4.tar.gz", ("zope-interface", "6.4")),
    ("Foo__Bar-1.0.tgz", ("foo-bar", "1.0")),
])
def test_names_are_normalized_as_pypi_compares_them(filename, expected):
    assert parse_name(filename) == expected
