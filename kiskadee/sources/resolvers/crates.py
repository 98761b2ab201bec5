"""Rust crates (Anitya backend of that registry): a crate's ``.crate`` archive, checked against the index's SHA-256.

It works as cargo does with a sparse registry index: ``INDEX/config.json``
names the download address (``dl``), and the crate's index file (one JSON
line per published version) gives each version's ``cksum``. The index is
``fetchers.anitya.crates_index`` when set, else what cargo's configuration
names for the crates-io registry: ``$CARGO_REGISTRIES_CRATES_IO_INDEX``,
``[registries.crates-io] index``, or the registry of the source that
``[source.crates-io] replace-with`` names, in ``$CARGO_HOME/config.toml``.
"""

import json
import logging
import os
import urllib.parse
from pathlib import Path
from typing import Any, Dict

from kiskadee.core.events import DownloadedSource, SourceEvent
from kiskadee.errors import SourceError, SourceNotFound, UnresolvedSource
from kiskadee.sources.resolvers import Http, safe_file_name

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

log = logging.getLogger(__name__)


def index_path(crate: str) -> str:
    """The crate's file in a registry index, after cargo's layout (``se/rd/serde``)."""
    name = crate.lower()
    if len(name) <= 2:
        return f"{len(name)}/{name}"
    if len(name) == 3:
        return f"3/{name[0]}/{name}"
    return f"{name[:2]}/{name[2:4]}/{name}"


def cargo_index(environ: Dict[str, str] = os.environ) -> str:
    """The crates-io index cargo's configuration names, '' when it names none."""
    if environ.get("CARGO_REGISTRIES_CRATES_IO_INDEX"):
        return environ["CARGO_REGISTRIES_CRATES_IO_INDEX"]
    home = Path(environ.get("CARGO_HOME") or Path.home() / ".cargo")
    for name in ("config.toml", "config"):
        try:
            with open(home / name, "rb") as stream:
                settings = tomllib.load(stream)
        except (OSError, tomllib.TOMLDecodeError):
            continue
        sources = settings.get("source") or {}
        replacement = (sources.get("crates-io") or {}).get("replace-with")
        index = (sources.get(replacement) or {}).get("registry") if replacement else None
        index = index or ((settings.get("registries") or {}).get("crates-io") or {}).get("index")
        if isinstance(index, str) and index:
            return index
    return ""


def download_url(dl: str, crate: str, version: str, cksum: str) -> str:
    """The ``.crate`` URL from the index's ``dl`` template (cargo's markers, else ``/NAME/VERSION/download``)."""
    markers = {"{crate}": crate, "{version}": version, "{prefix}": index_path(crate).rsplit("/", 1)[0],
               "{lowerprefix}": index_path(crate).rsplit("/", 1)[0].lower(), "{sha256-checksum}": cksum}
    if not any(marker in dl for marker in markers):
        return f"{dl.rstrip('/')}/{crate}/{version}/download"
    for marker, value in markers.items():
        dl = dl.replace(marker, value)
    return dl


class CratesResolver:
    """A crate version from a sparse index, verified against its ``cksum``."""

    backends = ("crates.io",)      # the label of Anitya's backend, not an address

    def __init__(self, http: Http, index_url: str = ""):
        self.http, self.index_url = http, index_url

    def index(self) -> str:
        """The sparse index's base URL; UnresolvedSource if none is configured or it is not sparse."""
        index = self.index_url or cargo_index()
        if not index:
            raise UnresolvedSource("crates: no crate index configured: set fetchers.anitya."
                                   "crates_index or cargo's registries.crates-io.index")
        index = index[len("sparse+"):] if index.startswith("sparse+") else index
        if not index.startswith(("http://", "https://")):
            raise UnresolvedSource(f"crates: index {index!r} is not a sparse (HTTP) index")
        return index.rstrip("/")

    def fetch(self, event: SourceEvent, dest: Path) -> DownloadedSource:
        index, crate = self.index(), event.package
        entry = self._entry(index, crate, event.version)
        dl = self.http.json(f"{index}/config.json").get("dl", "")
        if not isinstance(dl, str) or not dl:
            raise SourceError(f"{index}/config.json names no download address (dl)")
        url = download_url(dl, urllib.parse.quote(crate), urllib.parse.quote(event.version), entry["cksum"])
        target = dest / safe_file_name(f"{crate}-{event.version}.crate")
        return DownloadedSource(target, url, self.http.download(url, target, sha256=entry["cksum"]))

    def _entry(self, index: str, crate: str, version: str) -> Dict[str, Any]:
        """The index line of ``crate`` ``version``; UnresolvedSource if the index lacks it."""
        url = f"{index}/{index_path(crate)}"
        try:
            lines = self.http.text(url).splitlines()
        except SourceNotFound:
            raise UnresolvedSource(f"crates: the index has no crate {crate!r} ({url})") from None
        for line in lines:
            try:
                entry = json.loads(line) if line.strip() else {}
            except ValueError:
                continue
            if entry.get("vers") == version and isinstance(entry.get("cksum"), str):
                return entry
        raise UnresolvedSource(f"crates: crate {crate} has no version {version} in {url}")
