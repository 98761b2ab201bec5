"""The anitya fetcher through the real service suite: real monitor and runner processes.

PyPI resolution runs against the real PyPI index pip uses here, through to
findings in the database. Gap filling runs ``kiskadee fetch anitya`` against
a local server answering with recorded Anitya API v2 responses, and the
runner resolves what it announces from a local GitHub stand-in.
"""

import json
import socket

import pytest
from builders import anitya_event, c_tarball, sha256
from harness import Suite, run_kiskadee, wait_until

from kiskadee import config
from kiskadee.errors import ConfigError, TransientSourceError
from kiskadee.service.intake import IntakeSender
from kiskadee.sources import make_fetcher

# crcmod 1.7: a small sdist with a C extension; PyPI's published SHA-256 of crcmod-1.7.tar.gz.
CRCMOD_SHA256 = "dc7051a0db5f2bd48665a990d3ec1cc305a466a77358ca4492826f41f283601e"
FLATPAK_META = {    # the project of the real Anitya message v2-fedora_mapping.json
    "project_id": 6377, "homepage": "https://www.flatpak.org",
    "version_url": "flatpak/flatpak", "ecosystem": "http://flatpak.org/",
    "distributions": [{"distro": "Fedora", "package_name": "flatpak"},
                      {"distro": "Arch Linux", "package_name": "flatpak"}],
}


def send(suite, *events):
    with IntakeSender(f"ipc://{suite.root / 'run' / 'intake.sock'}") as intake:
        for event in events:
            intake.send(event)


def test_pypi_release_announced_by_anitya_is_analyzed_with_pypis_checksum(short_tmp):
    suite = Suite(short_tmp, analyzers=("cppcheck", "flawfinder"))
    try:
        suite.start_monitor()
        suite.start_runner("r1")
        send(suite, anitya_event("crcmod", "1.7", "PyPI", ecosystem="pypi"),
             anitya_event("zero-install", "2.12", "Sourceforge", version_url="zero-install"))
        wait_until(lambda: suite.states() == {"crcmod 1.7": "done", "zero-install 2.12": "unresolved"},
                   180, "crcmod analyzed and zero-install unresolved")
        (url, digest), = suite.rows("SELECT source_url, sha256 FROM version WHERE number = '1.7'")
        assert url.endswith("/crcmod-1.7.tar.gz") and digest == CRCMOD_SHA256
        assert suite.rows("SELECT analyzer, status FROM analysis_detail ORDER BY analyzer") == [
            ("cppcheck", "ok"), ("flawfinder", "ok")]
        assert suite.rows("SELECT COUNT(*) FROM finding_detail WHERE package = 'crcmod' "
                          "AND path LIKE '%src/_crcfunext.c'")[0][0] > 0
        (error,), = suite.rows("SELECT error FROM version WHERE number = '2.12'")
        assert "no resolver for Anitya backend 'Sourceforge'" in error
        shown = run_kiskadee("status", config=suite.config)
        assert "unresolved 1" in shown.stdout and "zero-install" in shown.stdout
        assert "no resolver for Anitya" in shown.stdout
    finally:
        suite.stop()


def serve_anitya(backends) -> dict:
    """The Anitya API and the GitHub archives of the gap-filling scenario; the archives by version."""
    backends.add_fixture("/api/v2/versions/?project_id=6377", "anitya-v2-versions-6377.json")
    backends.add_fixture("/api/v2/projects/?name=pg-semver", "anitya-v2-projects-pg-semver.json")
    backends.add_fixture("/api/v2/projects/?name=no-such-project", "anitya-v2-projects-empty.json")
    archives = {version: c_tarball(f"flatpak-{version}") for version in ("1.0.4", "1.0.6")}
    for version, archive in archives.items():
        backends.add(f"/gh/flatpak/flatpak/archive/refs/tags/{version}.tar.gz", archive)
    return archives


def test_gap_filling_announces_the_versions_the_bus_missed(short_tmp, backends):
    archives = serve_anitya(backends)
    suite = Suite(short_tmp, extra=f'[fetchers.anitya]\napi_url = "{backends.url}"\n'
                                   f'github_url = "{backends.url}/gh"\n'
                                   'projects = ["pg-semver", "no-such-project"]\n')
    try:
        suite.start_monitor()
        suite.start_runner("r1")
        send(suite, anitya_event("flatpak", "1.0.4", "GitHub", **FLATPAK_META))     # from the bus
        wait_until(lambda: suite.states().get("flatpak 1.0.4") == "done", 60, "flatpak 1.0.4 analyzed")
        fetched = run_kiskadee("fetch", "anitya", config=suite.config)
        assert fetched.returncode == 0, fetched.stderr
        assert "sent 3 events" in fetched.stdout            # flatpak 1.0.6 and 1.0.5, pg-semver 0.17.0
        assert "Anitya has no project named 'no-such-project'" in fetched.stderr
        wait_until(lambda: suite.states() == {"flatpak 1.0.4": "done", "flatpak 1.0.6": "done",
                                              "flatpak 1.0.5": "seen", "pg-semver 0.17.0": "unresolved"},
                   60, "the missed versions recorded, the newest analyzed")
        (url, digest, event), = suite.rows("SELECT source_url, sha256, event FROM version WHERE number = '1.0.6'")
        assert url == f"{backends.url}/gh/flatpak/flatpak/archive/refs/tags/1.0.6.tar.gz"
        assert digest == sha256(archives["1.0.6"])
        assert json.loads(event)["meta"]["distributions"] == FLATPAK_META["distributions"]
        (error,), = suite.rows("SELECT error FROM version WHERE number = '0.17.0'")
        assert "GitHub: no tag for pg-semver 0.17.0" in error and "v0.17.0.tar.gz" in error
        assert suite.rows("SELECT COUNT(*) FROM finding_detail WHERE version = '1.0.6'")[0][0] > 0
        again = run_kiskadee("fetch", "anitya", config=suite.config)
        assert again.returncode == 0 and "sent 0 events" in again.stdout
    finally:
        suite.stop()


def test_gap_filling_needs_anityas_address(tmp_path):
    fetcher = make_fetcher("anitya", config.from_mapping({"database": {"path": str(tmp_path / "k.db")}}))
    with pytest.raises(ConfigError, match="set fetchers.anitya.api_url"):
        list(fetcher.poll())


def test_gap_filling_with_anitya_unreachable_fails_the_pass(tmp_path):
    with socket.socket() as probe:          # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = config.from_mapping({"database": {"path": str(tmp_path / "k.db")},
                                    "fetchers": {"anitya": {"api_url": f"http://127.0.0.1:{port}",
                                                            "projects": ["flatpak"]}}})
    with pytest.raises(TransientSourceError, match="cannot download"):
        list(make_fetcher("anitya", settings).poll())
