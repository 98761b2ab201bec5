"""What the command modules share: the --db option and opening the database it names."""

import argparse
import dataclasses

from kiskadee import config
from kiskadee.store.db import open_database


def database_option() -> argparse.ArgumentParser:
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--db", metavar="PATH|URL", help="the database: an SQLite file, or a postgresql:// URL"
                          " (default: database.url, else database.path, from the configuration)")
    return database


def open_store(args, settings: config.Config, schema: str = "upgrade"):
    return open_database(args.db or settings.database.location, schema=schema,
                         busy_timeout_ms=settings.database.busy_timeout_ms)


def with_database(args, settings: config.Config) -> config.Config:
    """The configuration with the --db given on the command line, if any."""
    if not getattr(args, "db", None):
        return settings
    analysis = settings.analysis
    state_dir = settings.service.state_dir
    if analysis.cache.path == config.default_cache_path(settings.database.location, state_dir):  # it moves along
        analysis = dataclasses.replace(analysis, cache=dataclasses.replace(
            analysis.cache, path=config.default_cache_path(args.db, state_dir)))
    database = (dataclasses.replace(settings.database, url=args.db) if config.is_server(args.db)
                else dataclasses.replace(settings.database, path=args.db, url=""))
    return dataclasses.replace(settings, analysis=analysis, database=database)
