"""``kiskadee report``: the static HTML report, by hand or from the kiskadee-report timer (--changed)."""

import os
import sys
from pathlib import Path
from typing import List

from kiskadee import config
from kiskadee.cli.common import open_store
from kiskadee.errors import EXIT_OK, NotFoundError, UsageError
from kiskadee.results.html import site
from kiskadee.store import queries
from kiskadee.store.models import Fetcher, Package, Version, utcnow


def add_commands(commands, database) -> None:
    """Add this module's commands to the parser; ``database`` is the shared --db option."""
    cmd = commands.add_parser(
        "report", parents=[database], help="write the HTML report: the packages, each version and its diff",
        description="Write static HTML pages (an index of packages, a page per version with its findings and "
                    "filters, a page per release diff) under DIR, with relative links: serve DIR with any "
                    "web server or open it from disk. With PKG, only the versions of that package (or VERSION); "
                    "with --changed, only the versions analyzed since the last --changed pass in DIR "
                    "(what the kiskadee-report timer runs); with neither, every analyzed version.")
    cmd.add_argument("package", metavar="PKG", nargs="?")
    cmd.add_argument("version", metavar="VERSION", nargs="?")
    cmd.add_argument("-o", "--output", metavar="DIR", help="where to write (default: report.dir, STATE_DIR/html)")
    cmd.add_argument("--changed", action="store_true", help="only the versions finished since the last pass")
    cmd.add_argument("--fetcher", metavar="NAME", help="the package as this fetcher knows it, when several have it")
    cmd.set_defaults(func=cmd_report)


def output_dir(settings: config.Config) -> str:
    """Where the report goes when -o is not given."""
    return settings.report.dir or os.path.join(settings.service.state_dir, "html")


def cmd_report(args, settings: config.Config) -> int:
    if args.changed and args.package:
        raise UsageError("--changed writes what changed in every package; give no PKG with it")
    out = Path(args.output or output_dir(settings))
    open_store(args, settings, schema="current")
    now = utcnow()
    if args.changed:
        written = site.write_changed(out, now)
    elif args.package:
        written = site.write(out, _versions(args.package, args.version, args.fetcher), now)
    else:
        written = site.write_all(out, now)
    if not args.quiet and (written or not args.changed):     # the timer's idle passes leave the journal alone
        print(f"{out}: {written} version page{'s' if written != 1 else ''} written", file=sys.stderr)
    return EXIT_OK


def _versions(package: str, number: str, fetcher: str) -> List[Version]:
    """VERSION of PKG, or every finished version of PKG."""
    if number:
        return [queries.find_version(package, number, fetcher)]
    latest = queries.find_version(package, None, fetcher)      # NotFoundError, or the fetchers to choose from
    found = list(Version.select().join(Package).join(Fetcher)
                 .where((Version.package == latest.package_id) & Version.finished_at.is_null(False)))
    if not found:
        raise NotFoundError(f"no analyzed version of {package}")
    return found
