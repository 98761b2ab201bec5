"""Version comparison under the rules of each origin.

Each origin's versions follow one scheme (``SCHEME_OF_FETCHER``, the one table
of them, read through ``scheme_of``):

``debian``
    Debian policy 5.6.12 (``[epoch:]upstream[-revision]``, ``~`` sorts first),
    as implemented by python-debian.
``pep440``
    PEP 440 through ``packaging``.  Upstream versions (Anitya, tarball names)
    are often not PEP 440 (``2023-01-05``, ``1.0b-fix``); when either side of a
    comparison is not valid PEP 440, both sides are compared with the ``rpm``
    rules instead, which order any string sensibly.
``rpm``
    rpm's ``rpmvercmp`` (rpm >= 4.15, with ``~`` and ``^``), applied to
    ``[epoch:]version[-release]``; a missing release sorts before any release.

``compare`` returns -1, 0 or 1; ``newest`` picks the highest of several
versions; ``sort_key`` gives a key for ``sorted``; ``check`` says why a
string is not a version of a scheme (the monitor's catalog refuses such
events before storing them).
"""

import functools
import re
import string
from typing import Callable, Iterable, Optional, Tuple

from debian import debian_support
from packaging.version import InvalidVersion, Version

SCHEMES = ("debian", "pep440", "rpm")

# The version rules of each origin; fetchers not listed use PEP 440 (with rpm's rules as fallback).
# Anitya orders versions the rpm way by default.
SCHEME_OF_FETCHER = {"debian": "debian", "anitya": "rpm"}


def scheme_of(fetcher: str) -> str:
    """The version rules of the versions ``fetcher`` announces."""
    return SCHEME_OF_FETCHER.get(fetcher, "pep440")

_DIGITS = frozenset(string.digits)
_LETTERS = frozenset(string.ascii_letters)
_ALNUM = _DIGITS | _LETTERS


def _sign(value: int) -> int:
    """-1, 0 or 1 after the sign of ``value``."""
    return (value > 0) - (value < 0)


def _take(text: str, pos: int, charset: frozenset) -> int:
    """Index of the first character at or after ``pos`` that is not in ``charset``."""
    while pos < len(text) and text[pos] in charset:
        pos += 1
    return pos


def _skip_separators(text: str, pos: int) -> int:
    """Skip what rpm ignores between segments: anything but ASCII alnum, ``~``, ``^``."""
    while pos < len(text) and text[pos] not in _ALNUM and text[pos] not in "~^":
        pos += 1
    return pos


def _compare_segments(seg_a: str, seg_b: str, numeric: bool) -> int:
    """Compare two segments of the same kind as rpm does."""
    if numeric:
        seg_a, seg_b = seg_a.lstrip("0"), seg_b.lstrip("0")
        if len(seg_a) != len(seg_b):
            return _sign(len(seg_a) - len(seg_b))
    return (seg_a > seg_b) - (seg_a < seg_b)


def _tilde_or_caret(a: str, i: int, b: str, j: int) -> Optional[int]:
    """Outcome of the ``~``/``^`` rules at positions i, j: -1/1 to stop, 0 to go on, None if neither."""
    ca = a[i] if i < len(a) else ""
    cb = b[j] if j < len(b) else ""
    if ca == "~" or cb == "~":
        if ca != "~":
            return 1
        return 0 if cb == "~" else -1
    if ca == "^" or cb == "^":
        if not ca:
            return -1
        if not cb:
            return 1
        if ca != "^":
            return 1
        return 0 if cb == "^" else -1
    return None


def rpmvercmp(a: str, b: str) -> int:
    """rpm's ``rpmvercmp``: compare two version (or release) strings, -1/0/1."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        i, j = _skip_separators(a, i), _skip_separators(b, j)
        special = _tilde_or_caret(a, i, b, j)
        if special is not None:
            if special:
                return special
            i, j = i + 1, j + 1
            continue
        if i >= len(a) or j >= len(b):
            break
        numeric = a[i] in _DIGITS
        charset = _DIGITS if numeric else _LETTERS
        end_a, end_b = _take(a, i, charset), _take(b, j, charset)
        if end_b == j:      # segments of different kinds: numbers are newer
            return 1 if numeric else -1
        result = _compare_segments(a[i:end_a], b[j:end_b], numeric)
        if result:
            return result
        i, j = end_a, end_b
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


MAX_LENGTH = 256        # characters in a version, unless the caller allows more
MAX_DIGITS = 64         # digits in one number of a version: no release counts further
_DIGIT_RUN = re.compile(r"[0-9]{%d,}" % (MAX_DIGITS + 1))


def check(scheme: str, version: str, max_length: int = MAX_LENGTH) -> None:
    """Raise ValueError saying why ``version`` is not a version under ``scheme``'s rules.

    Every scheme: not empty, no surrounding space, printable, at most ``max_length``
    characters, no number of over MAX_DIGITS digits (comparing would convert it).
    Debian versions must also parse as Debian policy says.
    """
    _comparator(scheme)
    if not version.strip() or version != version.strip():
        raise ValueError(f"version {_quoted(version)} is empty or surrounded by white space")
    if len(version) > max_length:
        raise ValueError(f"version of {len(version)} characters is over the limit of {max_length}")
    if not version.isprintable():
        raise ValueError(f"version {_quoted(version)} holds control or other non-printable characters")
    if _DIGIT_RUN.search(version):
        raise ValueError(f"version {_quoted(version)} has a number of over {MAX_DIGITS} digits")
    if scheme == "debian":
        try:
            debian_support.Version(version)
        except ValueError:
            raise ValueError(f"{_quoted(version)} is not a Debian version "
                             "([epoch:]upstream[-revision], Debian policy 5.6.12)") from None


def is_valid(scheme: str, version: str, max_length: int = MAX_LENGTH) -> bool:
    """Whether ``check`` passes: a version stored before it existed may not."""
    try:
        check(scheme, version, max_length)
    except ValueError:
        return False
    return True


def _quoted(version: str) -> str:
    text = repr(version)
    return text if len(text) <= 60 else text[:57] + "..."


def _split_evr(evr: str) -> Tuple[int, str, str]:
    """Split ``[epoch:]version[-release]`` into its three parts (epoch 0 if absent)."""
    epoch = 0
    head, sep, rest = evr.partition(":")
    if sep and head.isdigit():
        epoch, evr = int(head), rest
    version, sep, release = evr.rpartition("-")
    if not sep:
        version, release = release, ""
    return epoch, version, release


def _compare_rpm(a: str, b: str) -> int:
    """Compare two ``[epoch:]version[-release]`` strings the rpm way."""
    epoch_a, version_a, release_a = _split_evr(a)
    epoch_b, version_b, release_b = _split_evr(b)
    if epoch_a != epoch_b:
        return _sign(epoch_a - epoch_b)
    return rpmvercmp(version_a, version_b) or rpmvercmp(release_a, release_b)


def _compare_debian(a: str, b: str) -> int:
    """Compare two Debian versions (ValueError if one is not a Debian version)."""
    return _sign(debian_support.version_compare(a, b))


def _compare_pep440(a: str, b: str) -> int:
    """Compare two PEP 440 versions, or both the rpm way if either is not PEP 440."""
    try:
        version_a, version_b = Version(a), Version(b)
    except InvalidVersion:
        return _compare_rpm(a, b)
    return (version_a > version_b) - (version_a < version_b)


_COMPARATORS = {
    "debian": _compare_debian,
    "pep440": _compare_pep440,
    "rpm": _compare_rpm,
}


def _comparator(scheme: str) -> Callable[[str, str], int]:
    """The comparison function of ``scheme``; ValueError names the known schemes."""
    try:
        return _COMPARATORS[scheme]
    except KeyError:
        raise ValueError(
            "unknown version scheme %r: use one of %s" % (scheme, ", ".join(SCHEMES))
        ) from None


def compare(scheme: str, a: str, b: str) -> int:
    """Compare versions ``a`` and ``b`` under ``scheme``: -1 if a < b, 0 if equal, 1 if a > b."""
    return _comparator(scheme)(a, b)


def sort_key(scheme: str) -> Callable[[str], object]:
    """A key function for ``sorted``/``max`` that orders versions under ``scheme``."""
    return functools.cmp_to_key(_comparator(scheme))


def newest(scheme: str, versions: Iterable[str]) -> str:
    """The highest of ``versions`` under ``scheme`` (ValueError if there is none)."""
    candidates = list(versions)
    if not candidates:
        raise ValueError("newest() needs at least one version, got none")
    return max(candidates, key=sort_key(scheme))
