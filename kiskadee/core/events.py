"""What an origin announces (a source event) and what a fetcher hands over (a downloaded source)."""

import dataclasses
from pathlib import Path
from typing import Dict


@dataclasses.dataclass(frozen=True)
class SourceEvent:
    """A version of a package that some origin announced."""

    fetcher: str            # name of the fetcher that produced it: "debian", "directory", "anitya"...
    package: str
    version: str
    source_url: str = ""    # where the source can be had, if known already
    sha256: str = ""        # checksum the origin publishes for source_url, if any
    meta: Dict[str, object] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class DownloadedSource:
    """A source on local disk: an archive file or a directory, with what it came from."""

    path: Path
    url: str = ""
    sha256: str = ""        # sha256 of the main archive actually downloaded
