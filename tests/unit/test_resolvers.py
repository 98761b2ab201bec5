"""The pure rules of the resolvers and of gap filling: names, URLs, versions, checksums, configuration."""

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from kiskadee.core.events import SourceEvent
from kiskadee.errors import SourceError, UnresolvedSource
from kiskadee.sources.anitya import KnownProject, missed_versions, project_meta
from kiskadee.sources.resolvers import safe_file_name, tag_spellings, url_path_parts, verify_integrity
from kiskadee.sources.resolvers.crates import cargo_index, download_url, index_path
from kiskadee.sources.resolvers.debian import upstream_version
from kiskadee.sources.resolvers.github import owner_repo
from kiskadee.sources.resolvers.gitlab import project_location
from kiskadee.sources.resolvers.gnu import listed_names
from kiskadee.sources.resolvers.pypi import configured_index, json_api_base, pick_sdist, pip_json_api

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "anitya-backends"


def event(**meta) -> SourceEvent:
    return SourceEvent("anitya", "flatpak", "1.0.4", meta=meta)


def test_tag_spellings_try_the_bare_version_first_then_v_then_project_prefixes():
    assert tag_spellings("flatpak", "1.2") == ["1.2", "v1.2", "flatpak-1.2", "release-1.2", "flatpak_1_2"]
    assert tag_spellings("x", "1.2", prefix="rel/")[:3] == ["rel/1.2", "1.2", "v1.2"]
    assert tag_spellings("x", "1.2", prefix="v") == ["v1.2", "1.2", "x-1.2", "release-1.2", "x_1_2"]


def test_repository_from_anitya_version_url_or_homepage():
    assert owner_repo(event(version_url="flatpak/flatpak")) == ("flatpak", "flatpak")
    assert owner_repo(event(version_url="https://github.com/theory/pg-semver.git")) == ("theory", "pg-semver")
    assert owner_repo(event(version_url=None, homepage="https://www.github.com/a/b/releases")) == ("a", "b")
    with pytest.raises(UnresolvedSource, match="cannot tell the repository"):
        owner_repo(event(homepage="https://www.flatpak.org/about"))


def test_gitlab_projects_on_the_public_instance_map_to_the_configured_base():
    base = "http://127.0.0.1:9/gl"
    assert project_location(event(version_url="https://gitlab.com/xonotic/xonotic"), base) == (
        base, ["xonotic", "xonotic"])
    assert project_location(event(version_url="https://gitlab.gnome.org/GNOME/gnome-video-arcade"), base) == (
        "https://gitlab.gnome.org", ["GNOME", "gnome-video-arcade"])
    assert project_location(event(homepage="https://gitlab.com/a/b/c/-/tags"), base) == (base, ["a", "b", "c"])
    assert url_path_parts("group/repo") == ["group", "repo"]


def test_gnu_listing_gives_files_and_folders_but_not_sort_or_parent_links():
    names = listed_names((FIXTURES / "gnu-gcc-listing.html").read_text())
    assert names == {"gcc-12.3.0/", "gcc-13.2.0/", "gnu-keyring.gpg"}


def test_crate_index_paths_follow_cargos_layout():
    assert [index_path(n) for n in ("a", "ab", "abc", "itoa", "Serde")] == [
        "1/a", "2/ab", "3/a/abc", "it/oa/itoa", "se/rd/serde"]
    assert download_url("http://h/crates", "itoa", "1.0.9", "c") == "http://h/crates/itoa/1.0.9/download"
    assert download_url("http://h/{prefix}/{crate}-{version}.crate?s={sha256-checksum}", "itoa", "1.0.9",
                        "c") == "http://h/it/oa/itoa-1.0.9.crate?s=c"


def test_cargo_index_from_the_environment_or_cargos_configuration(tmp_path):
    assert cargo_index({"CARGO_REGISTRIES_CRATES_IO_INDEX": "sparse+http://mirror/"}) == "sparse+http://mirror/"
    assert cargo_index({"CARGO_HOME": str(tmp_path)}) == ""
    (tmp_path / "config.toml").write_text('[source.crates-io]\nreplace-with = "local"\n'
                                          '[source.local]\nregistry = "sparse+http://local/index/"\n')
    assert cargo_index({"CARGO_HOME": str(tmp_path)}) == "sparse+http://local/index/"


def test_pypi_json_api_from_an_index_url():
    assert json_api_base("https://mirror.example/simple/") == "https://mirror.example/pypi"
    assert json_api_base("https://host/root/pypi/+simple") == "https://host/root/pypi/pypi"
    assert json_api_base("https://host/pypi") == "https://host/pypi"


def test_pypi_index_from_pips_configuration(tmp_path, monkeypatch):
    """The index pip would use: $PIP_INDEX_URL, else what 'pip config list' reports."""
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text("[global]\nindex-url = http://127.0.0.1:9/local/simple\n")
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(pip_conf))
    assert configured_index() == "http://127.0.0.1:9/local/simple"
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/env/simple")
    assert configured_index() == "http://127.0.0.1:9/env/simple"


def test_pypi_default_index_is_read_from_pip_itself():
    ask_pip = "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"
    pip_default = subprocess.run([sys.executable, "-c", ask_pip], capture_output=True, text=True).stdout.strip()
    assert pip_default.startswith("https://")
    assert pip_json_api() == json_api_base(configured_index() or pip_default)


def test_sdist_chosen_over_wheels_and_tar_gz_over_zip():
    files = [{"packagetype": "bdist_wheel", "filename": "a.whl", "url": "u1", "digests": {"sha256": "1"}},
             {"packagetype": "sdist", "filename": "a-1.zip", "url": "u2", "digests": {"sha256": "2"}},
             {"packagetype": "sdist", "filename": "a-1.tar.gz", "url": "u3", "digests": {"sha256": "3"}}]
    assert pick_sdist(files, "a", "1")["url"] == "u3"
    with pytest.raises(UnresolvedSource, match="no sdist .*only bdist_wheel"):
        pick_sdist(files[:1], "a", "1")


def test_debian_upstream_version():
    assert [upstream_version(v) for v in ("2.10-3", "1:2.10-1", "2.10+dfsg-2", "3.23+nmu1", "1.2-3-4")] == [
        "2.10", "2.10", "2.10", "3.23+nmu1", "1.2-3"]


def test_integrity_checked_with_the_strongest_hash_listed(tmp_path):
    path = tmp_path / "a.tgz"
    path.write_bytes(b"archive")
    good = "sha512-" + base64.b64encode(hashlib.sha512(b"archive").digest()).decode()
    weak = "sha1-" + base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    verify_integrity(path, f"{weak} {good}", "u")       # sha1 is ignored when sha512 is there
    with pytest.raises(SourceError, match="sha512 integrity mismatch"):
        verify_integrity(path, "sha512-" + base64.b64encode(hashlib.sha512(b"x").digest()).decode(), "u")
    assert not path.exists()
    path.write_bytes(b"archive")
    with pytest.raises(UnresolvedSource, match="names no hash"):
        verify_integrity(path, "md5-abc", "u")


def test_file_names_from_remote_names_cannot_leave_their_folder():
    assert safe_file_name("../../etc/passwd") == "passwd"
    assert safe_file_name("..") == "source"
    assert safe_file_name("a b;c.tar.gz") == "a_b_c.tar.gz"


# --- gap filling ----------------------------------------------------------------------

LISTING = {"latest_version": "1.0.6", "versions": ["1.0.6", "1.0.5", "1.0.4", "1.0.4rc1", "0.99.3"],
           "stable_versions": ["1.0.6", "1.0.5", "1.0.4", "0.99.3"]}


def test_a_project_never_seen_gets_its_latest_version_only():
    assert missed_versions(LISTING, []) == ["1.0.6"]
    assert missed_versions({"versions": ["2", "10", "9"]}, []) == ["10"]
    assert missed_versions({"versions": []}, []) == []


def test_a_known_project_gets_the_stable_versions_it_missed_newest_first():
    assert missed_versions(LISTING, ["1.0.4"]) == ["1.0.6", "1.0.5"]
    assert missed_versions(LISTING, ["0.99.3", "1.0.6"]) == ["1.0.5", "1.0.4"]   # a gap in between
    assert missed_versions(LISTING, ["1.0.6", "1.0.5", "1.0.4"]) == []


def test_event_metadata_from_an_api_record_keeps_the_known_mappings():
    record = {"id": 18163, "name": "pg-semver", "backend": "GitHub", "homepage": "https://h",
              "version_url": "theory/pg-semver", "ecosystem": None}
    known = KnownProject(meta={"distributions": [{"distro": "Debian", "package_name": "pgsemver"}]})
    assert project_meta(record, known) == {
        "project_id": 18163, "backend": "GitHub", "homepage": "https://h", "version_url": "theory/pg-semver",
        "ecosystem": "", "distributions": [{"distro": "Debian", "package_name": "pgsemver"}], "topic": ""}
