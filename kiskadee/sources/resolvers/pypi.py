"""PyPI: the sdist of a release, from the JSON API of the index pip uses, checked by SHA-256.

The JSON API base is ``fetchers.anitya.pypi_url`` when set. Otherwise it is
derived from pip's own configuration: ``$PIP_INDEX_URL``, else the
``index-url`` that ``pip config list`` reports, else pip's built-in default
index (read from pip itself). An index URL ``https://HOST/PATH/simple`` has
its JSON API at ``https://HOST/PATH/pypi``.
"""

import functools
import logging
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Dict, List, Optional

from packaging.version import InvalidVersion, Version

from kiskadee.core.events import DownloadedSource, SourceEvent
from kiskadee.errors import SourceNotFound, UnresolvedSource
from kiskadee.sources.resolvers import Http, safe_file_name

log = logging.getLogger(__name__)

PIP_CONFIG_TIMEOUT = 60.0
# pip config list's variants, the later ones overriding the earlier as pip applies them.
_INDEX_KEYS = ("global.index-url", "install.index-url", ":env:.index-url")
_ARCHIVE_PREFERENCE = (".tar.gz", ".tar.bz2", ".tar.xz", ".zip")


def json_api_base(index_url: str) -> str:
    """The JSON API base (``.../pypi``) of a simple index URL (``.../simple``)."""
    base = index_url.strip().rstrip("/")
    for suffix in ("/+simple", "/simple"):
        if base.endswith(suffix):
            return base[: -len(suffix)] + "/pypi"
    return base + "/pypi" if not base.endswith("/pypi") else base


def configured_index() -> str:
    """The index-url pip's configuration sets ('' if none); $PIP_INDEX_URL comes first."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"].split()[0]
    try:
        listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                                text=True, timeout=PIP_CONFIG_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("cannot ask pip for its index: %s", exc)
        return ""
    values: Dict[str, str] = {}
    for line in listed.stdout.splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    chosen = [values[key] for key in _INDEX_KEYS if values.get(key)]
    return chosen[-1].split()[0] if chosen else ""


def _pip_default_index() -> str:
    """pip's built-in default index, as pip itself names it."""
    try:
        from pip._internal.models.index import PyPI
    except ImportError:
        return ""
    return PyPI.simple_url


@functools.lru_cache(maxsize=1)
def pip_json_api() -> str:
    """The JSON API base of the index pip uses here; UnresolvedSource if there is none to use."""
    index = configured_index() or _pip_default_index()
    if not index.startswith(("http://", "https://")):
        raise UnresolvedSource("PyPI: pip's index %r has no JSON API; set fetchers.anitya.pypi_url"
                               % (index or "(none: pip is not installed)"))
    return json_api_base(index)


class PypiResolver:
    """The sdist of a PyPI release, verified against the SHA-256 the JSON API publishes."""

    backends = ("PyPI",)

    def __init__(self, http: Http, api_url: str = ""):
        self.http, self.api_url = http, api_url.rstrip("/")

    def fetch(self, event: SourceEvent, dest: Path) -> DownloadedSource:
        base = self.api_url or pip_json_api()
        url = "%s/%s/json" % (base, urllib.parse.quote(event.package, safe=""))
        try:
            project = self.http.json(url)
        except SourceNotFound:
            raise UnresolvedSource(f"PyPI has no project {event.package!r} ({url})") from None
        sdist = pick_sdist(_release_files(project, event.version), event.package, event.version)
        target = dest / safe_file_name(sdist["filename"])
        digest = self.http.download(sdist["url"], target, sha256=sdist["digests"]["sha256"])
        return DownloadedSource(target, sdist["url"], digest)


def _release_files(project: dict, version: str) -> List[dict]:
    """The files of release ``version`` (matched exactly, else by PEP 440 equality)."""
    releases = project.get("releases") or {}
    if version in releases:
        return releases[version]
    if (project.get("info") or {}).get("version") == version and project.get("urls"):
        return project["urls"]      # the latest release's files, for an index that lists no releases
    wanted = _pep440(version)
    for number, files in releases.items():
        if wanted is not None and _pep440(number) == wanted:
            return files
    name = (project.get("info") or {}).get("name", "?")
    newest = (project.get("info") or {}).get("version", "?")
    raise UnresolvedSource(f"PyPI project {name} has no release {version} (its latest is {newest})")


def _pep440(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def pick_sdist(files: List[dict], package: str, version: str) -> dict:
    """The source distribution among a release's files, a .tar.gz first; UnresolvedSource if none."""
    sdists = [f for f in files if f.get("packagetype") == "sdist" and f.get("url")
              and (f.get("digests") or {}).get("sha256")]
    if not sdists:
        kinds = sorted({str(f.get("packagetype")) for f in files}) or ["no files"]
        raise UnresolvedSource(f"PyPI release {package} {version} has no sdist with a SHA-256 "
                               f"(only {', '.join(kinds)})")

    def rank(entry: dict) -> int:
        name = entry.get("filename", "")
        return next((i for i, suffix in enumerate(_ARCHIVE_PREFERENCE) if name.endswith(suffix)),
                    len(_ARCHIVE_PREFERENCE))

    return min(sdists, key=rank)
