"""The ``kiskadee`` command: one entry point, one subcommand per job."""

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Callable, List, Optional

from kiskadee import __version__, config, logs, queries, report
from kiskadee.analysis import analyze_tree
from kiskadee.analyzers import make_analyzers, registry
from kiskadee.db import open_database
from kiskadee.errors import EXIT_ANALYSIS_INCOMPLETE, EXIT_OK, EXIT_USAGE, KiskadeeError
from kiskadee.migrations import LATEST, current_version, upgrade
from kiskadee.sandbox import Limits, make_sandbox
from kiskadee.source import guess_name_version, is_url, prepared
from kiskadee.store import VersionKey, record_analysis

log = logging.getLogger(__name__)

EPILOG = """\
exit status:
  0  success
  1  an analyzer failed or timed out (its results are stored with the reason)
  2  usage error
  3  configuration error
  4  the source could not be fetched, or was refused when unpacking
  5  the database could not be opened or has a newer schema
  6  the package or version asked for is not in the database
  7  a service kiskadee needs cannot be reached

The configuration is read from --config, else $KISKADEE_CONFIG, else
/etc/kiskadee/kiskadee.toml, else built-in defaults.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiskadee",
        description="Continuous static analysis of upstream releases and distribution archives.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kiskadee {__version__}")
    parser.add_argument("-c", "--config", metavar="FILE", help="configuration file (TOML)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    database = _database_option()
    _add_analyze(commands, database)
    _add_packages(commands, database)
    _add_show(commands, database)
    _add_db(commands, database)
    _add_services(commands)
    return parser


def _database_option() -> argparse.ArgumentParser:
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--db", metavar="PATH", help="SQLite database (default: from the configuration)")
    return database


def _add_services(commands) -> None:
    monitor = commands.add_parser("monitor", help="run the monitor service (the database's only writer)")
    monitor.set_defaults(func=cmd_monitor, service=True)
    runner = commands.add_parser("runner", help="run one runner service")
    runner.add_argument("--name", default="", help="runner name (default: HOST-PID)")
    runner.set_defaults(func=cmd_runner, service=True)
    run = commands.add_parser("run", help="run the whole suite without systemd: monitor, runners, fetchers")
    run.set_defaults(func=cmd_run, service=True)
    submit = commands.add_parser("submit", help="send one source to the monitor by hand",
                                 description="Announce version VERSION of package NAME, whose source is "
                                             "SOURCE (a path or an http(s) URL of a tarball, zip or "
                                             "directory), to the running monitor.")
    submit.add_argument("name", metavar="NAME")
    submit.add_argument("version", metavar="VERSION")
    submit.add_argument("source", metavar="SOURCE")
    submit.set_defaults(func=cmd_submit)
    fetch = commands.add_parser("fetch", help="run one polling pass of a fetcher (debian, directory)")
    fetch.add_argument("fetcher", metavar="FETCHER", choices=("debian", "directory"))
    fetch.set_defaults(func=cmd_fetch)
    status = commands.add_parser("status", parents=[_database_option()],
                                 help="versions by state, runners and recent failures")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(func=cmd_status)


def _add_analyze(commands, database) -> None:
    cmd = commands.add_parser(
        "analyze", parents=[database], help="analyze one source now and store the findings",
        description="Unpack SOURCE safely, run the analyzers that apply, store everything and "
                    "print a summary. SOURCE is a tarball (gz, bz2, xz), a zip, a directory "
                    "or an http(s) URL.")
    cmd.add_argument("source", metavar="SOURCE")
    cmd.add_argument("--name", help="package name (default: guessed from SOURCE, e.g. hello-2.10.tar.gz)")
    cmd.add_argument("--version", dest="version_number", metavar="VERSION",
                     help="version (default: guessed from SOURCE)")
    cmd.add_argument("--analyzers", metavar="A,B", help=f"analyzers to run (known: {', '.join(sorted(registry()))})")
    cmd.add_argument("--top", type=int, default=10, metavar="N", help="findings to print (default 10)")
    cmd.set_defaults(func=cmd_analyze)


def _add_packages(commands, database) -> None:
    cmd = commands.add_parser("packages", parents=[database], help="list the packages in the database")
    cmd.add_argument("--format", choices=("table", "json"), default="table")
    cmd.set_defaults(func=cmd_packages)


def _add_show(commands, database) -> None:
    cmd = commands.add_parser("show", parents=[database], help="show the analyses and findings of a version",
                              description="Show a version's analyses and its findings, best ranked first.")
    cmd.add_argument("package", metavar="PKG")
    cmd.add_argument("version", metavar="VERSION", nargs="?", help="default: the latest analyzed version")
    cmd.add_argument("--format", choices=("table", "json"), default="table")
    cmd.add_argument("--top", type=int, metavar="N", help="only the N best-ranked findings")
    cmd.set_defaults(func=cmd_show)


def _add_db(commands, database) -> None:
    cmd = commands.add_parser("db", help="database maintenance")
    actions = cmd.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    up = actions.add_parser("upgrade", parents=[database], help="create the database or apply pending migrations")
    up.set_defaults(func=cmd_db_upgrade)
    status = actions.add_parser("status", parents=[database], help="print the schema version")
    status.set_defaults(func=cmd_db_status)


def _database(args, settings: config.Config, schema: str = "upgrade"):
    return open_database(args.db or settings.database.path, schema=schema,
                         busy_timeout_ms=settings.database.busy_timeout_ms)


def cmd_analyze(args, settings: config.Config) -> int:
    names = args.analyzers.split(",") if args.analyzers else list(settings.analysis.analyzers)
    try:
        analyzers = make_analyzers([n.strip() for n in names if n.strip()], settings.analyzers)
    except ValueError as exc:
        print(f"kiskadee: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    guessed_name, guessed_version = guess_name_version(args.source)
    key = VersionKey("local", args.name or guessed_name, args.version_number or guessed_version)
    db = _database(args, settings)
    analysis = settings.analysis
    limits = Limits(analysis.timeout, analysis.memory_limit_mb, analysis.max_output_bytes)
    with prepared(args.source, analysis) as source:
        progress = None if args.quiet else _progress(key)
        runs = analyze_tree(source.root, analyzers, make_sandbox(settings.sandbox.backend), limits, progress)
    version = record_analysis(key, runs, source_url=source.url, sha256=source.sha256, db=db)
    if not args.quiet:
        print(report.version_text(queries.version_report(version, top=args.top)))
    incomplete = [run for run in runs if run.status in ("failed", "timeout")]
    return EXIT_ANALYSIS_INCOMPLETE if incomplete else EXIT_OK


def _progress(key: VersionKey) -> Callable[[str], None]:
    def show(analyzer: str) -> None:
        print(f"kiskadee: analyzing {key.package} {key.version} with {analyzer}...", file=sys.stderr, flush=True)

    return show


def cmd_packages(args, settings: config.Config) -> int:
    _database(args, settings, schema="current")
    summaries = queries.package_summaries()
    print(report.as_json(summaries) if args.format == "json" else report.packages_table(summaries))
    return EXIT_OK


def cmd_show(args, settings: config.Config) -> int:
    _database(args, settings, schema="current")
    data = queries.version_report(queries.find_version(args.package, args.version), top=args.top)
    print(report.as_json(data) if args.format == "json" else report.version_text(data))
    return EXIT_OK


def cmd_db_upgrade(args, settings: config.Config) -> int:
    path = args.db or settings.database.path
    applied = upgrade(_database(args, settings, schema="as-is"))
    done = f"applied {', '.join(str(m.number) for m in applied)}" if applied else "up to date"
    print(f"{path}: schema {LATEST}, {done}")
    return EXIT_OK


def cmd_db_status(args, settings: config.Config) -> int:
    path = args.db or settings.database.path
    current = current_version(_database(args, settings, schema="as-is"))
    state = "up to date" if current == LATEST else f"run 'kiskadee db upgrade' to reach {LATEST}"
    print(f"{path}: schema {current}, {state}")
    return EXIT_OK


def cmd_monitor(args, settings: config.Config) -> int:
    from kiskadee.monitor import Monitor

    return Monitor(_with_database(args, settings)).serve()


def cmd_runner(args, settings: config.Config) -> int:
    from kiskadee.runner import RunnerService

    return RunnerService(settings, args.name).serve()


def cmd_run(args, settings: config.Config) -> int:
    from kiskadee import supervisor

    verbosity = -1 if args.quiet else args.verbose
    return supervisor.run(settings, args.config, verbosity)


def cmd_submit(args, settings: config.Config) -> int:
    from kiskadee.fetchers import SourceEvent
    from kiskadee.intake import IntakeSender

    source = args.source if is_url(args.source) else str(Path(args.source).resolve())
    with IntakeSender(settings.service.intake_endpoint) as intake:
        intake.send(SourceEvent("local", args.name, args.version, source_url=source))
    print(f"submitted {args.name} {args.version} to {settings.service.intake_endpoint}")
    return EXIT_OK


def cmd_fetch(args, settings: config.Config) -> int:
    from kiskadee.fetchers import make_fetcher
    from kiskadee.intake import IntakeSender

    fetcher = make_fetcher(args.fetcher, settings)
    with IntakeSender(settings.service.intake_endpoint) as intake:
        for event in fetcher.poll():
            intake.send(event)
    print(f"{args.fetcher}: sent {intake.sent} events to {settings.service.intake_endpoint}")
    return EXIT_OK


def cmd_status(args, settings: config.Config) -> int:
    from kiskadee import status

    return status.show(_with_database(args, settings), args.format)


def _with_database(args, settings: config.Config) -> config.Config:
    """The configuration with the --db given on the command line, if any."""
    if not getattr(args, "db", None):
        return settings
    return dataclasses.replace(settings, database=dataclasses.replace(settings.database, path=args.db))


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    # Services log their progress (info) by default; one-shot commands only problems.
    floor = 1 if getattr(args, "service", False) else 0
    logs.setup(-1 if args.quiet else max(args.verbose, floor))
    try:
        settings = config.load(args.config)
        return args.func(args, settings)
    except KiskadeeError as exc:
        print(f"kiskadee: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kiskadee: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
