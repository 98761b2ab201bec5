"""One spelling per package: names normalized as their origin compares them.

``MarkupSafe-2.1.5.tar.gz`` and ``markupsafe-3.0.0.tar.gz`` are releases of
one package, because PyPI, where Python distributions come from, compares
names by their PEP 503 normal form: lowercase, every run of ``-``, ``_`` and
``.`` one ``-``. A tarball of unknown origin (``kiskadee analyze`` of a file,
a directory or a URL; the directory fetcher) is normalized the same way: the
upstream projects that publish tarballs name one project in any case and
with any of these separators (``LZ4`` and ``lz4``, ``foo_bar`` and
``foo-bar``), and two different projects whose names differ only so are far
rarer than one project spelled two ways. Fetchers whose origin has its own
canonical names (Debian source packages, Anitya projects) keep them.
"""

import re

_SEPARATORS = re.compile(r"[-_.]+")


def package_name(name: str) -> str:
    """``name`` in PEP 503 normal form: ``MarkupSafe`` -> ``markupsafe``, ``Foo_Bar.baz`` -> ``foo-bar-baz``."""
    return _SEPARATORS.sub("-", name.strip()).lower()
