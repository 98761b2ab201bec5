"""Downloading a URL to a file: streamed, size-capped, checksummed."""

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from kiskadee import __version__
from kiskadee.errors import SourceError, TransientSourceError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = f"kiskadee/{__version__}"


def download(url: str, dest: Path, *, max_bytes: int, timeout: float, sha256: str = "") -> str:
    """Save ``url`` to ``dest`` and return its SHA-256; verify it against ``sha256`` if given."""
    log.info("downloading %s", url)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    partial = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(partial, "wb") as out:
            actual = _copy(response, out, url, max_bytes)
    except urllib.error.HTTPError as exc:
        partial.unlink(missing_ok=True)
        error = TransientSourceError if exc.code >= 500 or exc.code == 429 else SourceError
        raise error(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise TransientSourceError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from None
    except SourceError:
        partial.unlink(missing_ok=True)
        raise
    if sha256 and actual != sha256.lower():
        partial.unlink()
        raise SourceError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}")
    os.replace(partial, dest)
    return actual


def _copy(response, out, url: str, max_bytes: int) -> str:
    digest = hashlib.sha256()
    total = 0
    for block in iter(lambda: response.read(CHUNK), b""):
        total += len(block)
        if total > max_bytes:
            raise SourceError(f"{url} is larger than the {max_bytes} byte download limit")
        digest.update(block)
        out.write(block)
    return digest.hexdigest()
