"""Resolvers: where the source of a version Anitya announced is, and downloading it.

One module per kind of origin (Anitya's ``backend``): ``pypi``, ``github``,
``gitlab``, ``gnu``, ``crates``, ``npm``, and ``debian`` for projects Anitya
maps to a Debian package. A resolver's ``fetch(event, dest)`` downloads the
version's source into ``dest`` and returns a ``DownloadedSource``, verified
against the checksum its origin publishes where there is one. It raises
``UnresolvedSource`` (with the reason) when it cannot tell where the source
is, ``SourceError`` when the download fails or is refused (a checksum
mismatch), and ``TransientSourceError`` when trying again later may help.
"""

import base64
import hashlib
import http.client
import json
import logging
import re
from pathlib import Path
from typing import Any, Iterable, List, Mapping, Sequence, Tuple

from kiskadee.core.events import DownloadedSource, SourceEvent
from kiskadee.errors import SourceError, SourceNotFound, TransientSourceError, UnresolvedSource
# safe_file_name lives with the downloads now; the resolvers import it from here.
from kiskadee.sources.download import DEFAULT_DEADLINE, download, open_url, safe_file_name

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 64 * 1024**2      # an index page or JSON document; archives have their own limit
_SRI_STRENGTH = ("sha512", "sha384", "sha256")


class Http:
    """HTTP for resolvers: documents, and archives saved with their checksums checked."""

    def __init__(self, timeout: float, max_bytes: int, deadline: float = DEFAULT_DEADLINE):
        self.timeout, self.max_bytes, self.deadline = timeout, max_bytes, deadline

    def text(self, url: str) -> str:
        """The body of ``url`` as text; SourceNotFound on 404, SourceError if it is too large."""
        log.debug("reading %s", url)
        try:
            with open_url(url, self.timeout, self.deadline, MAX_DOCUMENT_BYTES) as response:
                body = response.read(MAX_DOCUMENT_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:      # the connection broke in the middle
            raise TransientSourceError(f"reading {url} failed: {exc}") from None
        if len(body) > MAX_DOCUMENT_BYTES:
            raise SourceError(f"{url}: larger than the {MAX_DOCUMENT_BYTES}-byte limit for an index")
        return body.decode("utf-8", "replace")

    def json(self, url: str) -> Any:
        """The JSON document at ``url``; SourceError if it is not JSON."""
        try:
            return json.loads(self.text(url))
        except ValueError as exc:
            raise SourceError(f"{url} did not answer with JSON: {exc}") from None

    def download(self, url: str, dest: Path, sha256: str = "") -> str:
        """Save ``url`` to ``dest``; its SHA-256, checked against ``sha256`` if given."""
        return download(url, dest, max_bytes=self.max_bytes, timeout=self.timeout, sha256=sha256,
                        deadline=self.deadline)

    def first_found(self, urls: Sequence[Tuple[str, str]], dest_dir: Path) -> DownloadedSource:
        """Download the first of ``(url, file name)`` that exists; UnresolvedSource if none does."""
        for url, name in urls:
            target = dest_dir / safe_file_name(name)
            try:
                digest = self.download(url, target)
            except SourceNotFound:
                log.info("%s: not found, trying the next spelling", url)
                continue
            return DownloadedSource(target, url, digest)
        raise UnresolvedSource("none of these exists: " + ", ".join(url for url, _ in urls))


def meta_text(event: SourceEvent, key: str) -> str:
    """A string field of the event's Anitya metadata, '' when absent or null."""
    value = event.meta.get(key)
    return value.strip() if isinstance(value, str) else ""


def tag_spellings(project: str, version: str, prefix: str = "") -> List[str]:
    """The tag names a release of ``version`` is commonly given, most common first."""
    tags = [prefix + version] if prefix else []
    tags += [version, "v" + version, f"{project}-{version}", f"release-{version}",
             f"{project}_{version.replace('.', '_')}"]
    return list(dict.fromkeys(tags))


def url_path_parts(url: str) -> List[str]:
    """The non-empty path segments of a URL or of a bare ``owner/repo`` path."""
    path = re.sub(r"^[a-z][a-z0-9+.-]*://[^/]*", "", url.strip(), flags=re.I)
    parts = [part for part in path.split("/") if part]
    if parts and parts[-1].endswith(".git"):
        parts[-1] = parts[-1][: -len(".git")]
    return parts


def verify_integrity(path: Path, integrity: str, url: str) -> None:
    """Check ``path`` against a Subresource Integrity string (``sha512-BASE64`` ...).

    The strongest algorithm listed is used; SourceError (and the file removed)
    on a mismatch, UnresolvedSource if no algorithm listed is known.
    """
    entries = _sri_entries(integrity)
    for algorithm in _SRI_STRENGTH:
        expected = [digest for name, digest in entries if name == algorithm]
        if not expected:
            continue
        actual = base64.b64encode(_file_digest(path, algorithm)).decode()
        if actual not in expected:
            path.unlink(missing_ok=True)
            raise SourceError(f"{path.name}: {algorithm} integrity mismatch (expected "
                              f"{expected[0]}, actual {actual}) for {url}")
        return
    raise UnresolvedSource(f"{url}: integrity {integrity!r} names no hash kiskadee knows")


def _sri_entries(integrity: str) -> List[Tuple[str, str]]:
    entries = []
    for token in integrity.split():
        name, _, digest = token.partition("-")
        entries.append((name.lower(), digest.split("?", 1)[0]))
    return entries


def _file_digest(path: Path, algorithm: str) -> bytes:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def verify_hex(path: Path, algorithm: str, expected: str, url: str) -> None:
    """Check ``path`` against a hex digest; SourceError (and the file removed) on a mismatch."""
    actual = _file_digest(path, algorithm).hex()
    if actual != expected.lower():
        path.unlink(missing_ok=True)
        raise SourceError(f"{path.name}: {algorithm} mismatch (expected {expected}, actual "
                          f"{actual}) for {url}")


def mapped_packages(event: SourceEvent, distro: str) -> List[str]:
    """The package names Anitya maps the project to in ``distro`` (case does not matter)."""
    mappings: Iterable[Any] = event.meta.get("distributions") or ()
    names = []
    for mapping in mappings:
        if isinstance(mapping, Mapping) and str(mapping.get("distro", "")).lower() == distro.lower():
            name = mapping.get("package_name")
            if isinstance(name, str) and name.strip():
                names.append(name.strip())
    return names
