"""Getting sources: a version announced by an origin -> a verified tree on disk.

Each fetcher knows one origin (``debian``, ``directory``, ``local``, ``anitya``): how to
list its new versions and how to download one; ``prepare`` and ``unpack`` turn the
download into a tree.
"""

from pathlib import Path

from kiskadee.sources.fetcher import Fetcher


def make_fetcher(name: str, settings) -> Fetcher:
    """The fetcher called ``name``, configured from ``settings`` (a kiskadee.config.Config)."""
    from kiskadee.errors import ConfigError
    from kiskadee.sources.debian import DebianFetcher
    from kiskadee.sources.directory import DirectoryFetcher
    from kiskadee.sources.local import LocalFetcher

    state = Path(settings.service.state_dir)
    if name == "debian":
        return DebianFetcher.from_settings(settings)
    if name == "directory":
        if not settings.fetchers.directory.path:
            raise ConfigError("the directory fetcher is off: set fetchers.directory.path")
        return DirectoryFetcher(Path(settings.fetchers.directory.path), state / "directory.json")
    if name == "local":
        return LocalFetcher.from_settings(settings)     # submitted files: from the spool only
    if name == "anitya":
        from kiskadee.sources.anitya import AnityaFetcher

        return AnityaFetcher.from_settings(settings)
    raise ConfigError(f"unknown fetcher {name!r}; known fetchers: anitya, debian, directory, local")
