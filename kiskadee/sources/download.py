"""Downloading a URL to a file: streamed, size-capped, checksummed."""

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from kiskadee import __version__
from kiskadee.errors import SourceError, SourceNotFound, TransientSourceError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = f"kiskadee/{__version__}"


def open_url(url: str, timeout: float):
    """A response to read ``url`` from; SourceError naming the URL if it cannot be had.

    Server errors, rate limits and network failures are TransientSourceError:
    the same request may work later. Other HTTP errors (404...) are permanent.
    """
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (URL from config or event)
    except urllib.error.HTTPError as exc:
        error = TransientSourceError if exc.code >= 500 or exc.code == 429 else SourceError
        error = SourceNotFound if exc.code in (404, 410) else error
        raise error(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise TransientSourceError(f"cannot download {url}: {getattr(exc, 'reason', exc)}; "
                                   "check the URL and the network") from None


def download(url: str, dest: Path, *, max_bytes: int, timeout: float, sha256: str = "") -> str:
    """Save ``url`` to ``dest`` and return its SHA-256; verify it against ``sha256`` if given.

    ``dest`` exists afterwards only if the download completed (and matched).
    """
    log.info("downloading %s", url)
    partial = dest.with_name(dest.name + ".part")
    try:
        with open_url(url, timeout) as response, open(partial, "wb") as out:
            actual = _copy(response, out, url, max_bytes)
    except OSError as exc:          # the connection broke in the middle
        partial.unlink(missing_ok=True)
        raise TransientSourceError(f"download of {url} failed: {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if sha256 and actual != sha256.lower():
        partial.unlink()
        raise SourceError(f"{dest.name}: SHA-256 mismatch (expected {sha256}, actual {actual}) for {url}")
    os.replace(partial, dest)
    return actual


def _copy(response, out, url: str, max_bytes: int) -> str:
    digest = hashlib.sha256()
    total = 0
    for block in iter(lambda: response.read(CHUNK), b""):
        total += len(block)
        if total > max_bytes:
            raise SourceError(f"{url}: {url.rsplit('/', 1)[-1]} is larger than the {max_bytes}-byte limit")
        digest.update(block)
        out.write(block)
    return digest.hexdigest()
