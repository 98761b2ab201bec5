"""Resolving Anitya's versions to sources, per backend, against a local HTTP server.

The server on 127.0.0.1 answers with the responses recorded in
tests/fixtures/anitya-backends (see SOURCE.md there) and serves small real
tarballs built here. The fetcher is the real one, made by make_fetcher from a
real configuration whose base URLs point at the server.
"""

import base64
import hashlib
import json
from pathlib import Path

import pytest
from builders import anitya_event, c_tarball, sha256

from kiskadee import config
from kiskadee.core.events import SourceEvent
from kiskadee.errors import SourceError, UnresolvedSource
from kiskadee.sources import make_fetcher
from kiskadee.sources.fetcher import sha256_file
from kiskadee.sources.resolvers.crates import CratesResolver

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "anitya-backends"
CRATES = CratesResolver.backends[0]      # the name Anitya gives its Rust crates backend
HELLO_ORIG_SHA256 = "31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b"


def anitya_settings(backends, tmp_path, debian_mirror: str = "", **anitya):
    """A real configuration whose backends point at the local server."""
    values = {"github_url": backends.url + "/gh", "gitlab_url": backends.url + "/gl",
              "gnu_url": backends.url + "/gnu", "pypi_url": backends.url + "/pypi",
              "npm_url": backends.url + "/npm", "crates_index": f"sparse+{backends.url}/index/"}
    values.update(anitya)
    mapping = {"fetchers": {"anitya": values}, "database": {"path": str(tmp_path / "k.db")},
               "service": {"state_dir": str(tmp_path / "state")}}
    if debian_mirror:
        mapping["fetchers"]["debian"] = {"mirror": debian_mirror}
    return config.from_mapping(mapping, "test")


def anitya_fetcher(backends, tmp_path, **anitya):
    return make_fetcher("anitya", anitya_settings(backends, tmp_path, **anitya))


@pytest.fixture
def dest(tmp_path):
    folder = tmp_path / "download"
    folder.mkdir()
    return folder


# --- GitHub ----------------------------------------------------------------------------

def test_github_tag_spelled_v_is_found_after_the_bare_version_404s(backends, tmp_path, dest):
    archive = c_tarball("flatpak-1.2")
    backends.add("/gh/flatpak/flatpak/archive/refs/tags/v1.2.tar.gz", archive)
    event = anitya_event("flatpak", "1.2", "GitHub", version_url="flatpak/flatpak",
                         homepage="https://www.flatpak.org")
    source = anitya_fetcher(backends, tmp_path).download(event, dest)
    assert backends.requests == ["/gh/flatpak/flatpak/archive/refs/tags/1.2.tar.gz",
                                 "/gh/flatpak/flatpak/archive/refs/tags/v1.2.tar.gz"]
    assert source.url == backends.url + "/gh/flatpak/flatpak/archive/refs/tags/v1.2.tar.gz"
    assert source.sha256 == sha256(archive) == sha256_file(source.path)
    assert source.path.parent == dest


def test_github_repository_from_the_homepage_when_version_url_is_empty(backends, tmp_path, dest):
    archive = c_tarball("pg-semver-0.17.0")
    backends.add("/gh/theory/pg-semver/archive/refs/tags/0.17.0.tar.gz", archive)
    event = anitya_event("pg-semver", "0.17.0", "GitHub", homepage="https://github.com/theory/pg-semver")
    assert anitya_fetcher(backends, tmp_path).download(event, dest).sha256 == sha256(archive)


def test_github_without_any_tag_of_the_version_is_unresolved_naming_what_was_tried(backends, tmp_path, dest):
    event = anitya_event("flatpak", "9.9", "GitHub", version_url="flatpak/flatpak")
    with pytest.raises(UnresolvedSource) as caught:
        anitya_fetcher(backends, tmp_path).download(event, dest)
    assert "GitHub: no tag for flatpak 9.9" in str(caught.value)
    assert "/flatpak/flatpak/archive/refs/tags/v9.9.tar.gz" in str(caught.value)
    assert list(dest.iterdir()) == []


# --- GitLab ----------------------------------------------------------------------------

def test_gitlab_public_project_in_a_subgroup_comes_from_the_configured_gitlab(backends, tmp_path, dest):
    archive = c_tarball("libfoo-v2.0")
    backends.add("/gl/group/sub/libfoo/-/archive/v2.0/libfoo-v2.0.tar.gz", archive)
    event = anitya_event("libfoo", "2.0", "GitLab", version_url="https://gitlab.com/group/sub/libfoo")
    source = anitya_fetcher(backends, tmp_path).download(event, dest)
    assert source.url == backends.url + "/gl/group/sub/libfoo/-/archive/v2.0/libfoo-v2.0.tar.gz"
    assert source.sha256 == sha256(archive)


def test_gitlab_self_hosted_instance_is_asked_at_its_own_address(backends, tmp_path, dest):
    archive = c_tarball("gnome-video-arcade-0.8.8")
    backends.add("/GNOME/gnome-video-arcade/-/archive/0.8.8/gnome-video-arcade-0.8.8.tar.gz", archive)
    event = anitya_event("gnome-video-arcade", "0.8.8", "GitLab",
                         homepage=backends.url + "/GNOME/gnome-video-arcade/-/tags")
    source = anitya_fetcher(backends, tmp_path).download(event, dest)
    assert source.url.startswith(backends.url + "/GNOME/") and source.sha256 == sha256(archive)


# --- GNU -------------------------------------------------------------------------------

def test_gnu_tarball_found_in_the_project_listing(backends, tmp_path, dest):
    archive = c_tarball("aspell-0.60.8.1")
    backends.add_fixture("/gnu/aspell/", "gnu-aspell-listing.html")
    backends.add("/gnu/aspell/aspell-0.60.8.1.tar.gz", archive)
    event = anitya_event("aspell", "0.60.8.1", "GNU project", homepage="http://www.gnu.org/software/aspell/")
    source = anitya_fetcher(backends, tmp_path).download(event, dest)
    assert source.url == backends.url + "/gnu/aspell/aspell-0.60.8.1.tar.gz"
    assert source.sha256 == sha256(archive) and source.path.name == "aspell-0.60.8.1.tar.gz"


def test_gnu_tarball_in_a_release_subfolder_prefers_xz(backends, tmp_path, dest):
    archive = c_tarball("gcc-13.2.0")
    backends.add_fixture("/gnu/gcc/", "gnu-gcc-listing.html")
    backends.add_fixture("/gnu/gcc/gcc-13.2.0/", "gnu-gcc-13.2.0-listing.html")
    backends.add("/gnu/gcc/gcc-13.2.0/gcc-13.2.0.tar.xz", archive)
    source = anitya_fetcher(backends, tmp_path).download(anitya_event("gcc", "13.2.0", "GNU project"), dest)
    assert source.url == backends.url + "/gnu/gcc/gcc-13.2.0/gcc-13.2.0.tar.xz"


def test_gnu_version_missing_from_the_listing_is_unresolved(backends, tmp_path, dest):
    backends.add_fixture("/gnu/aspell/", "gnu-aspell-listing.html")
    with pytest.raises(UnresolvedSource, match=r"GNU: .*/gnu/aspell/ lists no aspell-0\.61"):
        anitya_fetcher(backends, tmp_path).download(anitya_event("aspell", "0.61", "GNU project"), dest)


# --- crates ------------------------------------------------------------------------------

def serve_itoa(backends, archive: bytes, cksum: str) -> None:
    backends.add_fixture("/index/config.json", "crates-config.json")
    backends.add_fixture("/index/it/oa/itoa", "crates-index-itoa", cksum=cksum)
    backends.add("/api/v1/crates/itoa/1.0.9/download", archive)


def test_crate_is_checked_against_the_index_checksum(backends, tmp_path, dest):
    archive = c_tarball("itoa-1.0.9")
    serve_itoa(backends, archive, sha256(archive))
    source = anitya_fetcher(backends, tmp_path).download(anitya_event("itoa", "1.0.9", CRATES), dest)
    assert source.url == backends.url + "/api/v1/crates/itoa/1.0.9/download"
    assert source.sha256 == sha256(archive) and source.path.name == "itoa-1.0.9.crate"


def test_crate_whose_checksum_does_not_match_is_refused(backends, tmp_path, dest):
    archive = c_tarball("itoa-1.0.9")
    serve_itoa(backends, archive, sha256(b"what the index says was published"))
    with pytest.raises(SourceError, match="SHA-256 mismatch") as caught:
        anitya_fetcher(backends, tmp_path).download(anitya_event("itoa", "1.0.9", CRATES), dest)
    assert not isinstance(caught.value, UnresolvedSource)
    assert list(dest.iterdir()) == []


def test_crate_version_missing_from_the_index_is_unresolved(backends, tmp_path, dest):
    serve_itoa(backends, b"", "0" * 64)
    with pytest.raises(UnresolvedSource, match="crate itoa has no version 2.0.0"):
        anitya_fetcher(backends, tmp_path).download(anitya_event("itoa", "2.0.0", CRATES), dest)


def test_crates_without_a_configured_index_is_unresolved_saying_what_to_set(backends, tmp_path, dest,
                                                                           monkeypatch):
    monkeypatch.setenv("CARGO_HOME", str(tmp_path / "empty-cargo-home"))
    monkeypatch.delenv("CARGO_REGISTRIES_CRATES_IO_INDEX", raising=False)
    with pytest.raises(UnresolvedSource, match="set fetchers.anitya.crates_index"):
        anitya_fetcher(backends, tmp_path, crates_index="").download(
            anitya_event("itoa", "1.0.9", CRATES), dest)


# --- npm -----------------------------------------------------------------------------------

def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def serve_left_pad(backends, archive: bytes, published: bytes) -> None:
    backends.add_fixture("/npm/left-pad", "npm-left-pad.json", integrity=integrity(published),
                         shasum=hashlib.sha1(published).hexdigest())
    backends.add("/left-pad/-/left-pad-1.3.0.tgz", archive)


def test_npm_tarball_is_checked_against_its_sha512_integrity(backends, tmp_path, dest):
    archive = c_tarball("package")
    serve_left_pad(backends, archive, archive)
    source = anitya_fetcher(backends, tmp_path).download(anitya_event("left-pad", "1.3.0", "npmjs"), dest)
    assert source.url == backends.url + "/left-pad/-/left-pad-1.3.0.tgz"
    assert source.sha256 == sha256(archive)


def test_npm_tarball_whose_integrity_does_not_match_is_refused(backends, tmp_path, dest):
    serve_left_pad(backends, c_tarball("package"), b"the tarball that was published")
    with pytest.raises(SourceError, match="sha512 integrity mismatch") as caught:
        anitya_fetcher(backends, tmp_path).download(anitya_event("left-pad", "1.3.0", "npmjs"), dest)
    assert not isinstance(caught.value, UnresolvedSource)
    assert list(dest.iterdir()) == []


def test_npm_scoped_package_and_the_registry_from_npms_own_configuration(backends, tmp_path, dest,
                                                                        monkeypatch):
    archive = c_tarball("package")
    backends.add_fixture("/npm/@kiskadee%2Fhello-c", "npm-scoped.json", integrity=integrity(archive),
                         shasum=hashlib.sha1(archive).hexdigest())
    backends.add("/@kiskadee/hello-c/-/hello-c-0.1.0.tgz", archive)
    monkeypatch.setenv("npm_config_registry", backends.url + "/npm/")   # what npm itself reads
    from kiskadee.sources.resolvers.npm import NpmResolver, npm_registry
    npm_registry.cache_clear()      # the process-wide answer of 'npm config get registry'
    try:
        source = anitya_fetcher(backends, tmp_path, npm_url="").download(
            anitya_event("@kiskadee/hello-c", "0.1.0", "npmjs"), dest)
    finally:
        npm_registry.cache_clear()
    assert "/npm/@kiskadee%2Fhello-c" in backends.requests
    assert source.sha256 == sha256(archive) and NpmResolver.backends == ("npmjs",)


def test_npm_version_not_published_is_unresolved(backends, tmp_path, dest):
    serve_left_pad(backends, b"", b"")
    with pytest.raises(UnresolvedSource, match=r"left-pad has no version 9\.0\.0 \(latest is 1\.3\.0\)"):
        anitya_fetcher(backends, tmp_path).download(anitya_event("left-pad", "9.0.0", "npmjs"), dest)


# --- PyPI-shaped answers (the real index is exercised in test_anitya_fetcher.py) ------------

def test_pypi_release_with_wheels_only_is_unresolved(backends, tmp_path, dest):
    backends.add_fixture("/pypi/wheelonly-demo/json", "pypi-wheel-only.json")
    with pytest.raises(UnresolvedSource, match="has no sdist .*only bdist_wheel"):
        anitya_fetcher(backends, tmp_path).download(anitya_event("wheelonly-demo", "2.0.0", "PyPI"), dest)


def test_pypi_project_unknown_to_the_index_is_unresolved(backends, tmp_path, dest):
    with pytest.raises(UnresolvedSource, match="PyPI has no project 'no-such-project'"):
        anitya_fetcher(backends, tmp_path).download(anitya_event("no-such-project", "1.0", "PyPI"), dest)


# --- events made from real Anitya messages by the bus consumers' own code -------------------

ANITYA_MESSAGES = FIXTURES.parent / "anitya"


def bus_event(name: str) -> SourceEvent:
    """The event kiskadee's bus consumers make of a recorded real Anitya message."""
    from kiskadee.anitya.messages import normalize

    body = json.loads((ANITYA_MESSAGES / name).read_text())
    if "msg" in body:               # fedmsg's envelope around a v1 message
        return normalize(body["topic"], body["msg"])
    return normalize("org.release-monitoring.prod.anitya.project.version.update.v2", body)


def test_real_v2_message_of_a_github_project_resolves_to_its_tag_archive(backends, tmp_path, dest):
    archive = c_tarball("flatpak-1.0.4")
    backends.add("/gh/flatpak/flatpak/archive/refs/tags/1.0.4.tar.gz", archive)
    source = anitya_fetcher(backends, tmp_path).download(bus_event("v2-fedora_mapping.json"), dest)
    assert source.sha256 == sha256(archive)


def test_real_v1_message_of_a_gnu_project_resolves_to_its_tarball(backends, tmp_path, dest):
    archive = c_tarball("aspell-0.60.6.1")
    backends.add_fixture("/gnu/aspell/", "gnu-aspell-listing.html")
    backends.add("/gnu/aspell/aspell-0.60.6.1.tar.gz", archive)
    source = anitya_fetcher(backends, tmp_path).download(bus_event("fedmsg-v1-aspell.json"), dest)
    assert source.url == backends.url + "/gnu/aspell/aspell-0.60.6.1.tar.gz"
    assert source.sha256 == sha256(archive)


# --- backends kiskadee does not know; Debian ------------------------------------------------

def test_unknown_backend_is_unresolved_with_its_reason(backends, tmp_path, dest):
    event = anitya_event("zero-install", "2.12", "Sourceforge", version_url="zero-install")
    with pytest.raises(UnresolvedSource) as caught:
        anitya_fetcher(backends, tmp_path).download(event, dest)
    assert "zero-install 2.12: kiskadee has no resolver for Anitya backend 'Sourceforge'" in str(caught.value)
    assert backends.requests == []


def test_project_mapped_to_debian_falls_back_to_the_debian_archive(backends, tmp_path, dest, mirror):
    event = anitya_event("hello", "2.10", "GNU project",
                         distributions=[{"distro": "Fedora", "package_name": "hello"},
                                        {"distro": "Debian", "package_name": "hello"}])
    fetcher = make_fetcher("anitya", anitya_settings(backends, tmp_path, debian_mirror=mirror.url))
    source = fetcher.download(event, dest)
    assert backends.requests == ["/gnu/hello/"]             # GNU first: 404 here
    assert source.url == f"{mirror.url}/pool/main/h/hello/hello_2.10.orig.tar.gz"
    assert source.sha256 == HELLO_ORIG_SHA256 == sha256_file(source.path)


def test_debian_version_that_is_not_the_announced_one_is_unresolved_with_every_reason(
        backends, tmp_path, dest, mirror):
    event = anitya_event("hello", "2.12", "Sourceforge",
                         distributions=[{"distro": "Debian", "package_name": "hello"}])
    fetcher = make_fetcher("anitya", anitya_settings(backends, tmp_path, debian_mirror=mirror.url))
    with pytest.raises(UnresolvedSource) as caught:
        fetcher.download(event, dest)
    assert "no resolver for Anitya backend 'Sourceforge'" in str(caught.value)
    assert "Debian bookworm has no hello of upstream version 2.12 (it has hello 2.10-3)" in str(caught.value)
