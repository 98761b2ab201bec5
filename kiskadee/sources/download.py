"""Downloading a URL to a file: streamed, size-capped, time-capped, checksummed.

Only http and https are spoken, in redirects too (no file://, ftp://, data:).
Every read waits at most ``timeout`` seconds, and the whole exchange
(connecting, redirects, headers, body) at most ``deadline`` seconds: a
watchdog shuts the connection down when the deadline passes, so a server
trickling a byte at a time cannot hold a runner and its lease for hours.
A declared ``Content-Length`` over the size limit is refused before the body
is read. An odd URL (no host, a bad port, control characters, ``..`` as its
file name) is a SourceError, never a crash; non-ASCII characters are
percent-encoded as browsers do.
"""

import contextlib
import hashlib
import http.client
import logging
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, List, Optional
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from kiskadee import __version__
from kiskadee.config import AnalysisConfig
from kiskadee.errors import SourceError, SourceNotFound, TransientSourceError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = f"kiskadee/{__version__}"
DEFAULT_DEADLINE = AnalysisConfig.download_deadline
SCHEMES = ("http", "https")
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~-._"      # kept as they are; anything else is percent-encoded
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._+~-]")
_MAX_NAME = 128


def checked_url(url: str) -> str:
    """``url`` as kiskadee will request it, or SourceError saying what is wrong with it.

    Non-ASCII and other unsafe characters are percent-encoded and a non-ASCII
    host name IDNA-encoded, so the URL can be shown and logged as it is.
    """
    try:
        parts = urlsplit(url.strip())
        host, _ = parts.hostname, parts.port        # .port raises ValueError on a bad port
        if host and not host.isascii():
            netloc = parts.netloc.replace(host, host.encode("idna").decode("ascii"))
            parts = parts._replace(netloc=netloc)
    except (ValueError, UnicodeError) as exc:
        raise SourceError(f"cannot download {quote(url, safe=_URL_SAFE)!r}: not a valid URL ({exc})") from None
    shown = quote(urlunsplit(parts), safe=_URL_SAFE)
    if parts.scheme.lower() not in SCHEMES:
        raise SourceError(f"cannot download {shown}: only http and https URLs are downloaded")
    if not host:
        raise SourceError(f"cannot download {shown}: the URL names no host")
    return shown


def safe_file_name(name: str) -> str:
    """``name`` reduced to a short plain file name that cannot leave its directory."""
    cleaned = _UNSAFE_NAME.sub("_", name.rsplit("/", 1)[-1]).lstrip(".")
    return cleaned[-_MAX_NAME:] or "source"


def url_file_name(url: str) -> str:
    """A safe file name for what ``url`` points to: its last path segment, else 'source'."""
    return safe_file_name(unquote(urlsplit(url).path))


class _Watchdog:
    """Shuts down every connection of one download once its deadline has passed.

    It holds a duplicate of each socket's descriptor: shutting that down
    stops a blocked read on the original (plain or TLS, during the handshake
    too), and the number cannot be reused by another file before ``cancel``.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds, self.expired = seconds, False
        self._end = time.monotonic() + seconds
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self, timeout: Optional[float]) -> float:
        """``timeout`` cut down to the time left (connecting cannot be interrupted otherwise)."""
        left = max(0.01, self._end - time.monotonic())
        return min(timeout, left) if isinstance(timeout, (int, float)) and timeout > 0 else left

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock.dup())
            if self.expired:
                _shutdown(self._sockets[-1])

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):      # already closed by the peer: nothing left to stop
        sock.shutdown(socket.SHUT_RDWR)


class _Watched:
    """A connection whose sockets the download's watchdog can shut down."""

    def __init__(self, *args, watchdog: _Watchdog, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._watchdog = watchdog
        self._create_connection = self._connect_watched

    def _connect_watched(self, address, timeout=None, source_address=None):
        sock = socket.create_connection(address, self._watchdog.remaining(timeout), source_address)
        self._watchdog.watch(sock)
        return sock


class _HTTPConnection(_Watched, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Watched, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.watchdog = watchdog

    def http_open(self, req):
        return self.do_open(lambda *a, **k: _HTTPConnection(*a, watchdog=self.watchdog, **k), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.watchdog = watchdog

    def https_open(self, req):
        return self.do_open(lambda *a, **k: _HTTPSConnection(*a, watchdog=self.watchdog, **k), req,
                            context=self._context)


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http and https only (urllib would follow ftp:// too)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).scheme.lower() not in SCHEMES:
            raise SourceError(f"cannot download {req.full_url}: it redirects to "
                              f"{quote(newurl, safe=_URL_SAFE)}, and only http and https are followed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(watchdog: _Watchdog) -> urllib.request.OpenerDirector:
    """An opener that speaks http and https only: no file://, ftp:// or data: handler."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), _HTTPHandler(watchdog), _HTTPSHandler(watchdog),
                    _HttpOnlyRedirects(), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


@contextlib.contextmanager
def open_url(url: str, timeout: float, deadline: float = DEFAULT_DEADLINE,
             max_bytes: Optional[int] = None) -> Iterator[http.client.HTTPResponse]:
    """A response to read ``url`` from, within the ``with`` block; SourceError naming the URL if it cannot be had.

    Server errors, rate limits and network failures are TransientSourceError:
    the same request may work later. Other HTTP errors (404...), refused
    redirects, a declared size over ``max_bytes`` and the deadline passing
    (here or while the block reads) are permanent SourceErrors.
    """
    shown = checked_url(url)
    watchdog = _Watchdog(deadline)
    try:
        with _request(shown, timeout, watchdog) as response:
            _check_length(response, shown, max_bytes)
            yield response
        if watchdog.expired:        # a cut connection can look like a short, complete body
            raise _past_deadline(shown, deadline)
    except Exception:
        if watchdog.expired:        # whatever the cut connection made the reader raise
            raise _past_deadline(shown, deadline) from None
        raise
    finally:
        watchdog.cancel()


def _request(url: str, timeout: float, watchdog: _Watchdog):
    """The response to a GET of ``url``, its failures sorted into kiskadee's errors."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        return _opener(watchdog).open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        reason = _one_line(exc.reason)
        if 300 <= exc.code < 400:
            raise SourceError(f"cannot download {url}: redirect refused (HTTP {exc.code} {reason})") from None
        error = TransientSourceError if exc.code >= 500 or exc.code == 429 else SourceError
        error = SourceNotFound if exc.code in (404, 410) else error
        raise error(f"cannot download {url}: HTTP {exc.code} {reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        if watchdog.expired:
            raise _past_deadline(url, watchdog.seconds) from None
        if isinstance(exc, http.client.InvalidURL):
            raise SourceError(f"cannot download {url}: {exc}") from None
        raise TransientSourceError(f"cannot download {url}: {_one_line(getattr(exc, 'reason', exc))}; "
                                   "check the URL and the network") from None


def _one_line(reason) -> str:
    """A server's or library's words on one line, for logs and the database."""
    return " ".join(str(reason).split())


def _check_length(response, url: str, max_bytes: Optional[int]) -> None:
    """Refuse at once a body the server declares larger than ``max_bytes``."""
    declared = getattr(response, "length", None)
    if max_bytes is not None and declared is not None and declared > max_bytes:
        raise SourceError(f"{url}: {url_file_name(url)} is larger than the {max_bytes}-byte limit "
                          f"(the server declares {declared} bytes); not downloaded")


def _past_deadline(url: str, deadline: float) -> SourceError:
    return SourceError(f"cannot download {url}: not finished within the {deadline:g}-second "
                       "deadline (analysis.download_deadline)")


def download(url: str, dest: Path, *, max_bytes: int, timeout: float, sha256: str = "",
             deadline: float = DEFAULT_DEADLINE) -> str:
    """Save ``url`` to ``dest`` and return its SHA-256; verify it against ``sha256`` if given.

    ``dest`` exists afterwards only if the download completed (and matched).
    """
    shown = checked_url(url)
    log.info("downloading %s", shown)
    partial = dest.with_name(dest.name + ".part")
    try:
        with open_url(url, timeout, deadline, max_bytes) as response, open(partial, "wb") as out:
            actual = _copy(response, out, shown, max_bytes)
    except (OSError, http.client.HTTPException) as exc:     # the connection broke in the middle
        partial.unlink(missing_ok=True)
        raise TransientSourceError(f"download of {shown} failed: {_one_line(repr(exc))}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if sha256 and actual != sha256.lower():
        partial.unlink()
        raise SourceError(f"{dest.name}: SHA-256 mismatch (expected {sha256}, actual {actual}) for {shown}")
    os.replace(partial, dest)
    return actual


def _copy(response, out, url: str, max_bytes: int) -> str:
    digest = hashlib.sha256()
    total = 0
    for block in iter(lambda: response.read(CHUNK), b""):
        total += len(block)
        if total > max_bytes:
            raise SourceError(f"{url}: {url_file_name(url)} is larger than the {max_bytes}-byte limit")
        digest.update(block)
        out.write(block)
    missing = getattr(response, "length", None)     # http.client ends a short body in silence
    if missing:
        raise TransientSourceError(f"download of {url} failed: the connection closed {missing} bytes "
                                   "before the declared end")
    return digest.hexdigest()
