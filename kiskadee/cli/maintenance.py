"""``kiskadee prune``, ``kiskadee db backup``, ``db copy`` and ``db rerank``: keeping the database small,
safe and current, and moving it."""

import argparse
import sys
from pathlib import Path

from kiskadee import config
from kiskadee.cli.common import open_store
from kiskadee.core import ranking
from kiskadee.errors import EXIT_OK, DatabaseError, UsageError
from kiskadee.store.backup import backup
from kiskadee.store.copy import copy
from kiskadee.store.db import close_database, open_database, write_transaction
from kiskadee.store.models import Version
from kiskadee.store.prune import prune
from kiskadee.store.results import rerank


def add_commands(commands, database) -> None:
    """Add this module's commands to the parser; ``database`` is the shared --db option."""
    cmd = commands.add_parser(
        "prune", parents=[database], help="delete the analyses of older versions, keeping the last N per package",
        description="Keep the last N analyzed versions of each package and delete the analyses and "
                    "findings of the older ones. A package's newest analyzed version and versions in the "
                    "queue (queued, leased) are never pruned; the version rows stay, so the monitor does "
                    "not queue them again. Safe while the service runs.")
    cmd.add_argument("--keep", type=_at_least_one, required=True, metavar="N",
                     help="analyzed versions to keep per package (at least 1)")
    cmd.add_argument("--package", metavar="PKG", help="only this package")
    cmd.add_argument("--fetcher", metavar="NAME", help="only packages of this fetcher")
    cmd.add_argument("--dry-run", action="store_true", help="print what would be deleted and change nothing")
    cmd.set_defaults(func=cmd_prune)


def add_db_commands(actions, database) -> None:
    """Add this module's ``kiskadee db`` actions to ``actions``, the db command's subparsers."""
    cmd = actions.add_parser(
        "backup", parents=[database], help="copy the database to FILE with SQLite's online backup",
        description="Copy the database to FILE, a new file, with SQLite's online backup: a consistent "
                    "snapshot taken while the monitor and runners keep writing. The copy is checked and "
                    "opens at the same schema.")
    cmd.add_argument("file", metavar="FILE", type=Path)
    cmd.set_defaults(func=cmd_db_backup)
    cmd = actions.add_parser(
        "copy", help="copy every row of one database into another, empty one (SQLite or PostgreSQL)",
        description="Copy every table of the database FROM into the database TO, keeping every id: to move "
                    "a site from its SQLite file to PostgreSQL (or back). TO is created at the latest schema "
                    "if it has no tables and must hold no rows; FROM must be at the latest schema. FROM is "
                    "read in one snapshot, TO written in one transaction, and the row counts are compared "
                    "at the end. Stop the monitor first when moving a site: what it writes after the copy "
                    "began stays behind. Then set database.url to TO.")
    cmd.add_argument("--from", dest="source", metavar="PATH|URL",
                     help="the database to copy (default: the configured one)")
    cmd.add_argument("--to", dest="target", metavar="PATH|URL", required=True,
                     help="an empty database: an SQLite file (path or sqlite:///PATH) or a postgresql:// URL")
    cmd.set_defaults(func=cmd_db_copy)
    cmd = actions.add_parser(
        "rerank", parents=[database], help="rank every stored finding again with the current priors",
        description="Rank the findings of every version again, with the priors table of ranking.priors "
                    "(or the shipped one) and the survival counts stored: after changing ranking.priors, "
                    "or on a database whose findings were ranked by an older kiskadee. One version per "
                    "transaction, so it is safe while the service runs.")
    cmd.set_defaults(func=cmd_db_rerank)


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1: a package's newest analyzed version is always kept")
    return value


def cmd_prune(args, settings: config.Config) -> int:
    table = ranking.load_priors(settings.ranking.priors)
    db = open_store(args, settings, schema="current")
    report = prune(db, args.keep, package=args.package, fetcher=args.fetcher, dry_run=args.dry_run, table=table)
    verb = "would prune" if args.dry_run else "pruned"
    for version in report.pruned:
        print(f"{verb} {version.package} {version.number} ({version.fetcher}):"
              f" {version.analyses} analyses, {version.findings} findings")
    for version in report.held:
        print(f"kept {version.package} {version.number} ({version.fetcher}): {version.state}, in the queue")
    packages = len({(version.fetcher, version.package) for version in report.pruned})
    print(f"{verb} {len(report.pruned)} versions of {packages} packages:"
          f" {sum(v.analyses for v in report.pruned)} analyses,"
          f" {sum(v.findings for v in report.pruned)} findings")
    return EXIT_OK


def cmd_db_backup(args, settings: config.Config) -> int:
    path = args.db or settings.database.location
    if config.is_server(path):
        raise UsageError(f"{path}: kiskadee db backup copies an SQLite file; back a PostgreSQL database up with"
                         " pg_dump, or snapshot it into a file with 'kiskadee db copy --to FILE'")
    if not Path(path).exists():
        raise DatabaseError(f"{path}: no such database")
    schema = backup(open_store(args, settings, schema="as-is"), args.file)
    print(f"{path}: copied to {args.file}, schema {schema}")
    return EXIT_OK


def cmd_db_copy(args, settings: config.Config) -> int:
    source_location = args.source or settings.database.location
    if source_location == args.target:
        raise UsageError(f"{args.target}: --from and --to name the same database")
    if not config.is_server(source_location) and not Path(config.sqlite_path(source_location)).exists():
        raise DatabaseError(f"{source_location}: no such database")
    timeout = settings.database.busy_timeout_ms
    source = open_database(source_location, schema="current", busy_timeout_ms=timeout)
    target = open_database(args.target, schema="upgrade", busy_timeout_ms=timeout)
    try:
        copied = copy(source, target, progress=lambda table, rows: print(f"{table}: {rows} rows", file=sys.stderr))
    finally:
        close_database(target)
        close_database(source)
    print(f"copied {source.kiskadee_path} to {target.kiskadee_path}: {sum(copied.values())} rows,"
          f" {copied['finding']} findings of {copied['version']} versions")
    return EXIT_OK


def cmd_db_rerank(args, settings: config.Config) -> int:
    table = ranking.load_priors(settings.ranking.priors)
    db = open_store(args, settings, schema="current")
    versions = [row.id for row in Version.select(Version.id).order_by(Version.id)]
    changed = 0
    for version_id in versions:
        with write_transaction(db):
            changed += rerank(version_id, table=table)
    priors = settings.ranking.priors or "the shipped priors"
    print(f"{args.db or settings.database.location}: ranked {len(versions)} versions again with {priors}:"
          f" {changed} findings changed rank")
    return EXIT_OK
