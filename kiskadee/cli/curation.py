"""Working with stored results: ``diff``, ``waive``, ``export`` and ``retry``."""

import sys
from pathlib import Path

from kiskadee import config
from kiskadee.cli.common import open_store
from kiskadee.errors import EXIT_OK, EXIT_USAGE
from kiskadee.results import render
from kiskadee.store import queries


def add_commands(commands, database) -> None:
    """Add this module's commands to the parser; ``database`` is the shared --db option."""
    _add_diff(commands, database)
    _add_waive(commands, database)
    _add_export(commands, database)
    _add_retry(commands, database)


def _add_diff(commands, database) -> None:
    cmd = commands.add_parser(
        "diff", parents=[database], help="new, fixed and unchanged findings between two versions",
        usage="kiskadee diff [-h] [--db PATH] [--format {table,json}] [--all] [--fetcher NAME] PKG [OLD] NEW",
        description="Compare the findings of version NEW of PKG with those of OLD (default: the analyzed "
                    "version before NEW by the package's version rules), matched by fingerprint so "
                    "that code that only moved is unchanged. Findings of an analyzer that failed, timed "
                    "out or did not run on either version are listed as not analyzed, never as new or "
                    "fixed; an analyzer whose tool version changed is flagged.")
    cmd.add_argument("package", metavar="PKG")
    cmd.add_argument("versions", metavar="VERSION", nargs="+", help="[OLD] NEW")
    cmd.add_argument("--format", choices=("table", "json"), default="table")
    cmd.add_argument("--all", action="store_true", help="also list the unchanged findings")
    cmd.add_argument("--fetcher", metavar="NAME",
                     help="the package as this fetcher knows it, when several have it (see 'kiskadee packages')")
    cmd.set_defaults(func=cmd_diff)


def _add_waive(commands, database) -> None:
    from kiskadee.store.waivers import KINDS

    cmd = commands.add_parser(
        "waive", parents=[database], help="record a verdict on a finding, for every version that has it",
        description="Mark the finding FINGERPRINT (as 'show' and 'diff' print it; at least its first 6 "
                    "characters) as a false positive, intentional, or a real bug. The waiver belongs to "
                    "the package and the fingerprint, so it carries forward to later versions.")
    cmd.add_argument("fingerprint", metavar="FINGERPRINT")
    cmd.add_argument("--as", dest="kind", choices=KINDS, help="the verdict")
    cmd.add_argument("--comment", default="", help="why (shown with the finding and in exports)")
    cmd.add_argument("--package", metavar="PKG", help="the package, when the fingerprint is in several")
    cmd.add_argument("--remove", action="store_true", help="withdraw the finding's waiver instead")
    cmd.set_defaults(func=cmd_waive)


def _add_export(commands, database) -> None:
    from kiskadee.results.export import FORMATS

    cmd = commands.add_parser(
        "export", parents=[database], help="write a version's results as SARIF, Firehose XML or JSON",
        description="Write the findings of version VERSION of PKG with their fingerprints, their state "
                    "against the previous analyzed version and their waivers, in SARIF 2.1.0, Firehose "
                    "XML or JSON.")
    cmd.add_argument("package", metavar="PKG")
    cmd.add_argument("version", metavar="VERSION")
    cmd.add_argument("--format", choices=FORMATS, default="sarif", help="default: sarif")
    cmd.add_argument("--analyzer", metavar="NAME", help="only this analyzer's results")
    cmd.add_argument("--fetcher", metavar="NAME",
                     help="the package as this fetcher knows it, when several have it (see 'kiskadee packages')")
    cmd.add_argument("-o", "--output", metavar="FILE", help="default: standard output")
    cmd.set_defaults(func=cmd_export)


def _add_retry(commands, database) -> None:
    from kiskadee.store.retry import DEFAULT_STATES, STATES

    cmd = commands.add_parser(
        "retry", parents=[database], help="put failed, unresolved or analyzed versions back in the queue",
        description="Put the versions of PKG (those named, or all of it) or of every package back in the "
                    "analysis queue, with their attempts reset, if they are in one of the given states "
                    f"(default: {', '.join(DEFAULT_STATES)}). 'done' analyzes versions again, e.g. after "
                    "enabling an analyzer: the new results replace the old ones. Queued and leased "
                    "versions are left alone. A running monitor hands them to the next free runner.")
    cmd.add_argument("package", metavar="PKG", nargs="?")
    cmd.add_argument("versions", metavar="VERSION", nargs="*")
    cmd.add_argument("--state", default=",".join(DEFAULT_STATES), metavar="STATE[,STATE...]",
                     help=f"states to re-queue, of {', '.join(STATES)}")
    cmd.add_argument("--fetcher", metavar="NAME", help="only packages of this fetcher (debian, anitya...)")
    cmd.add_argument("-n", "--dry-run", action="store_true", help="list what would be re-queued, change nothing")
    cmd.set_defaults(func=cmd_retry)


def cmd_diff(args, settings: config.Config) -> int:
    from kiskadee.results import diff

    open_store(args, settings, schema="current")
    old, new = diff.resolve(args.package, args.versions, args.fetcher)
    data = diff.as_data(diff.compare(old, new), unchanged=args.all)
    print(render.as_json(data) if args.format == "json" else render.diff_text(data, unchanged=args.all))
    return EXIT_OK


def cmd_waive(args, settings: config.Config) -> int:
    from kiskadee.store import waivers

    if not args.remove and not args.kind:
        print("kiskadee: error: waive needs --as KIND (or --remove)", file=sys.stderr)
        return EXIT_USAGE
    open_store(args, settings, schema="current")
    if args.remove:
        target = waivers.remove(args.fingerprint, package=args.package)
        print(f"{target.package}: withdrew the waiver of {target.fingerprint}")
        return EXIT_OK
    target, replaced = waivers.waive(args.fingerprint, args.kind, args.comment, package=args.package,
                                     author=_user())
    again = " (replacing the earlier verdict)" if replaced else ""
    print(f"{target.package}: {target.fingerprint} waived as {args.kind}{again}")
    return EXIT_OK


def _user() -> str:
    """Who runs the command, for the waiver's record."""
    import getpass
    import os

    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return ""


def cmd_export(args, settings: config.Config) -> int:
    from kiskadee.results import export

    open_store(args, settings, schema="current")
    version = queries.find_version(args.package, args.version, fetcher=args.fetcher)
    document = export.render(export.collect(version, args.analyzer), args.format)
    if args.output:
        Path(args.output).write_bytes(document)
    else:
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
    return EXIT_OK


def cmd_retry(args, settings: config.Config) -> int:
    from kiskadee.store import retry

    open_store(args, settings, schema="current")
    states = [state.strip() for state in args.state.split(",") if state.strip()]
    versions = retry.requeue(args.package, args.versions, states, fetcher=args.fetcher, dry_run=args.dry_run)
    for version in versions:
        why = f": {version.error.splitlines()[0][:120]}" if version.error else ""
        print(f"{version.fetcher} {version.package} {version.version} ({version.state}{why})")
    verb = "would re-queue" if args.dry_run else "re-queued"
    print(f"kiskadee: {verb} {len(versions)} version{'s' if len(versions) != 1 else ''}"
          + ("" if versions else f" (none in state {', '.join(states)})"), file=sys.stderr)
    return EXIT_OK
