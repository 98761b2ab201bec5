"""Where the HTML report puts a version's pages: one layout for the report and for the bus messages that link it.

Every path segment comes from a package, a version or a fetcher name, which
are hostile: ``slug`` turns each into one safe segment (other bytes as ~XX,
a leading dot and the report's own file names escaped, long names cut and
hashed), so no name can climb out of the report directory or take the place
of another page.
"""

import hashlib
import string

SLUG_CHARS = frozenset(string.ascii_letters + string.digits + "-_.+")     # kept as they are
LONGEST_SLUG = 120
RESERVED = frozenset(("index.html", "diff.html", "summary.json", "report.css", "report.js"))   # the report's files


def slug(name: str) -> str:
    """``name`` as one safe path segment of the report."""
    escaped = "".join(c if c in SLUG_CHARS else "".join(f"~{b:02x}" for b in c.encode("utf-8")) for c in name)
    if not escaped or escaped.startswith("."):
        escaped = "~2e" + escaped[1:] if escaped else "~"
    if escaped in RESERVED:                 # a version called index.html must not take its package's page
        escaped = escaped.replace(".", "~2e")
    if len(escaped) > LONGEST_SLUG:
        escaped = escaped[:LONGEST_SLUG - 17] + "-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
    return escaped


def package_dir(fetcher: str, package: str) -> str:
    """A package's directory in the report, relative to the report directory."""
    return f"{slug(fetcher)}/{slug(package)}"


def version_page(fetcher: str, package: str, version: str) -> str:
    """A version's page, relative to the report directory (a relative URL as well)."""
    return f"{package_dir(fetcher, package)}/{slug(version)}/index.html"
