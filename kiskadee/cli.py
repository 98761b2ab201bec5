"""The ``kiskadee`` command: one entry point, one subcommand per job."""

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import List, Optional

from kiskadee import __version__, config, logs
from kiskadee.analysis.analyzers import make_analyzers, registry
from kiskadee.analysis.pipeline import analyze_source
from kiskadee.analysis.sandbox import make_sandbox
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.core.events import SourceEvent
from kiskadee.errors import EXIT_ANALYSIS_INCOMPLETE, EXIT_OK, EXIT_USAGE, KiskadeeError
from kiskadee.results import render
from kiskadee.sources import make_fetcher
from kiskadee.sources.local import LocalFetcher, source_url, submitted_source
from kiskadee.sources.prepare import guess_name_version
from kiskadee.store import queries
from kiskadee.store.db import open_database
from kiskadee.store.migrations import LATEST, current_version, upgrade
from kiskadee.store.queue import record_analysis
from kiskadee.store.results import VersionKey

log = logging.getLogger(__name__)

# The commands that bind or reach the monitor's sockets: the runtime directory is checked before they start.
SOCKET_COMMANDS = ("monitor", "runner", "run", "submit", "fetch")

EPILOG = """\
exit status:
  0  success
  1  an analyzer failed or timed out (its results are stored with the reason)
  2  usage error
  3  configuration error
  4  the source could not be fetched, or was refused when unpacking or by the monitor (submit)
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
    _add_keys(commands)
    _add_images(commands)
    _add_diff(commands, database)
    _add_waive(commands, database)
    _add_export(commands, database)
    _add_retry(commands, database)
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
                                             "SOURCE (a tarball or zip: a local file, copied into the "
                                             "service's spool first, or an http(s) URL), to the running "
                                             "monitor. A directory is refused: use 'kiskadee analyze'.")
    submit.add_argument("name", metavar="NAME")
    submit.add_argument("version", metavar="VERSION")
    submit.add_argument("source", metavar="SOURCE")
    submit.set_defaults(func=cmd_submit)
    fetch = commands.add_parser("fetch", help="run one polling pass of a fetcher (debian, directory, "
                                              "anitya: versions the message buses missed)")
    fetch.add_argument("fetcher", metavar="FETCHER", choices=("debian", "directory", "anitya"))
    fetch.set_defaults(func=cmd_fetch)
    status = commands.add_parser("status", parents=[_database_option()],
                                 help="versions by state, runners and recent failures")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(func=cmd_status)


def _add_keys(commands) -> None:
    cmd = commands.add_parser(
        "keys", help="make the CurveZMQ key pairs tcp:// endpoints need",
        description="Write a CurveZMQ key pair (NAME.key public, NAME.key_secret 0600) under "
                    "service.curve.keys_dir. 'monitor' makes the monitor's; 'runner NAME' and 'submitter NAME' "
                    "make one in the directory of keys the monitor lets onto its tcp:// work or intake socket. "
                    "Copy NAME.key_secret and monitor.key to the other host.")
    cmd.add_argument("role", metavar="ROLE", choices=("monitor", "runner", "submitter"),
                     help="monitor, runner or submitter")
    cmd.add_argument("name", metavar="NAME", nargs="?", default="", help="the runner's or submitter's name")
    cmd.add_argument("--force", action="store_true", help="replace an existing key pair of that name")
    cmd.set_defaults(func=cmd_keys)


def cmd_keys(args, settings: config.Config) -> int:
    from kiskadee.service.curve import create_keys

    if args.role == "monitor" and args.name:
        print("kiskadee: error: 'keys monitor' takes no NAME", file=sys.stderr)
        return EXIT_USAGE
    public, secret = create_keys(settings.service, args.role, args.name, force=args.force)
    print(f"public key {public}")
    print(f"secret key {secret} (mode 0600: keep it on the host that uses it, and nowhere else)")
    return EXIT_OK


def _add_images(commands) -> None:
    cmd = commands.add_parser("images", help="build the analyzer images of the docker sandbox",
                              description="Build and inspect the images the docker sandbox runs analyzers in.")
    actions = cmd.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    names = dict(metavar="ANALYZER", nargs="*", help="default: every analyzer with a packages list in the containers directory")
    base = actions.add_parser("base", help="make a local base image from the Debian mirror (mmdebstrap)")
    base.add_argument("analyzers", **names)
    base.add_argument("--work-dir", metavar="DIR", help="where to assemble it (a tmpfs is fastest)")
    base.set_defaults(func=cmd_images_base)
    build = actions.add_parser("build", help="build the analyzer images")
    build.add_argument("analyzers", **names)
    build.add_argument("--base", metavar="IMAGE", help="image to build from (default: sandbox.docker.base_image)")
    build.add_argument("--bootstrap", action="store_true",
                       help="make a local base first ('images base') and build from it: no registry needed")
    build.add_argument("--network", metavar="MODE", default="", help="network of the build steps (e.g. none)")
    build.add_argument("--work-dir", metavar="DIR", help="with --bootstrap: where to assemble the base")
    build.set_defaults(func=cmd_images_build)
    listing = actions.add_parser("list", help="each analyzer image and the tool version it reports")
    listing.add_argument("analyzers", **names)
    listing.set_defaults(func=cmd_images_list)


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
    event = SourceEvent("local", args.name or guessed_name, args.version_number or guessed_version,
                        source_url=source_url(args.source))
    db = _database(args, settings)
    analysis = settings.analysis
    analyzed = analyze_source(event, LocalFetcher.for_command_line(settings), analyzers,
                              make_sandbox(settings.sandbox.backend, settings.sandbox),
                              Limits(analysis.timeout, analysis.memory_limit_mb, analysis.max_output_bytes),
                              analysis, None if args.quiet else _progress)
    version = record_analysis(VersionKey(event.fetcher, event.package, event.version), analyzed.runs,
                              source_url=analyzed.url, sha256=analyzed.sha256, db=db)
    if not args.quiet:
        print(render.version_text(queries.version_report(version, top=args.top)))
    incomplete = [run for run in analyzed.runs if run.status in ("failed", "timeout")]
    return EXIT_ANALYSIS_INCOMPLETE if incomplete else EXIT_OK


def _progress(activity: str) -> None:
    print(f"kiskadee: {activity}...", file=sys.stderr, flush=True)


def cmd_packages(args, settings: config.Config) -> int:
    _database(args, settings, schema="current")
    summaries = queries.package_summaries()
    print(render.as_json(summaries) if args.format == "json" else render.packages_table(summaries))
    return EXIT_OK


def cmd_show(args, settings: config.Config) -> int:
    _database(args, settings, schema="current")
    data = queries.version_report(queries.find_version(args.package, args.version), top=args.top)
    print(render.as_json(data) if args.format == "json" else render.version_text(data))
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
    from kiskadee.service.monitor import Monitor

    return Monitor(_with_database(args, settings)).serve()


def cmd_runner(args, settings: config.Config) -> int:
    from kiskadee.service.runner import RunnerService

    return RunnerService(settings, args.name).serve()


def cmd_run(args, settings: config.Config) -> int:
    from kiskadee.service import supervisor

    verbosity = -1 if args.quiet else args.verbose
    return supervisor.run(settings, args.config, verbosity)


def cmd_submit(args, settings: config.Config) -> int:
    from kiskadee.service.intake import EventRejected, IntakeSender

    url, sha256 = submitted_source(args.source, settings)      # a local file goes into the spool first
    with IntakeSender(settings.service.intake_endpoint, service=settings.service, limits=settings.limits) as intake:
        intake.send(SourceEvent("local", args.name, args.version, source_url=url, sha256=sha256))
    if intake.rejected:     # exit 4, with the monitor's reason
        raise EventRejected(f"the monitor rejected {args.name} {args.version}: {next(iter(intake.rejected.values()))}")
    print(f"submitted {args.name} {args.version} to {settings.service.intake_endpoint}")
    return EXIT_OK


def cmd_fetch(args, settings: config.Config) -> int:
    """One polling pass, remembered by the fetcher only once the monitor acknowledged all of it."""
    from kiskadee.service.intake import DELIVERY_SECONDS, IntakeSender, MonitorUnavailable

    fetcher = _anitya_fetcher(settings) if args.fetcher == "anitya" else make_fetcher(args.fetcher, settings)
    endpoint = settings.service.intake_endpoint
    with IntakeSender(endpoint, service=settings.service) as intake:
        for event in fetcher.poll():
            intake.send(event)
        if not intake.flush():
            # Not committing is what makes the next pass announce these events again.
            raise MonitorUnavailable(
                f"the monitor on {endpoint} did not acknowledge {intake.pending} of {intake.sent} events "
                f"within {DELIVERY_SECONDS} s; the {args.fetcher} fetcher's next pass sends them again")
    fetcher.commit()        # a rejected event counts as answered: sending it again would be rejected again
    refused = f" ({len(intake.rejected)} rejected by the monitor, logged above)" if intake.rejected else ""
    print(f"{args.fetcher}: sent {intake.sent} events to {endpoint}{refused}")
    return EXIT_OK


def _anitya_fetcher(settings: config.Config):
    """The anitya fetcher, told which projects and versions the database already holds."""
    from kiskadee.sources.anitya import AnityaFetcher, known_projects

    return AnityaFetcher.from_settings(settings, known=known_projects(_stored_anitya_versions(settings)))


def _stored_anitya_versions(settings: config.Config) -> list:
    """The anitya versions in the database; none when there is no database (yet) to read."""
    import peewee

    from kiskadee.errors import DatabaseError

    path = settings.database.path
    if not path or path == ":memory:" or not Path(path).exists():
        return []
    try:
        open_database(path, schema="current", busy_timeout_ms=settings.database.busy_timeout_ms)
        return queries.anitya_versions()
    except (DatabaseError, peewee.DatabaseError) as exc:
        # Gap filling still helps for the configured projects; the warning says what is missing.
        log.warning("cannot read the projects in %s (%s): polling the configured ones only", path, exc)
        return []


def cmd_images_base(args, settings: config.Config) -> int:
    from kiskadee.analysis import images

    print(f"built {images.make_base(settings.sandbox.docker, args.analyzers, args.work_dir)}")
    return EXIT_OK


def cmd_images_build(args, settings: config.Config) -> int:
    from kiskadee.analysis import images

    docker = settings.sandbox.docker
    base = images.make_base(docker, args.analyzers, args.work_dir) if args.bootstrap else args.base
    for tag, image_id in images.build_all(docker, args.analyzers, base or "", args.network):
        print(f"built {tag} {image_id}")
    return EXIT_OK


def cmd_images_list(args, settings: config.Config) -> int:
    from kiskadee.analysis import images

    for image in images.describe(settings.sandbox.docker, settings.analyzers, args.analyzers):
        print(f"{image['analyzer']:<12} {image['version']:<10} {image['image']} {image['id'][:19]}")
    return EXIT_OK


def _add_diff(commands, database) -> None:
    cmd = commands.add_parser(
        "diff", parents=[database], help="new, fixed and unchanged findings between two versions",
        usage="kiskadee diff [-h] [--db PATH] [--format {table,json}] [--all] PKG [OLD] NEW",
        description="Compare the findings of version NEW of PKG with those of OLD (default: the analyzed "
                    "version before NEW by the package's version rules), matched by fingerprint so "
                    "that code that only moved is unchanged. Findings of an analyzer that failed, timed "
                    "out or did not run on either version are listed as not analyzed, never as new or "
                    "fixed; an analyzer whose tool version changed is flagged.")
    cmd.add_argument("package", metavar="PKG")
    cmd.add_argument("versions", metavar="VERSION", nargs="+", help="[OLD] NEW")
    cmd.add_argument("--format", choices=("table", "json"), default="table")
    cmd.add_argument("--all", action="store_true", help="also list the unchanged findings")
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
    cmd.add_argument("-o", "--output", metavar="FILE", help="default: standard output")
    cmd.set_defaults(func=cmd_export)


def cmd_diff(args, settings: config.Config) -> int:
    from kiskadee.results import diff

    _database(args, settings, schema="current")
    old, new = diff.resolve(args.package, args.versions)
    data = diff.as_data(diff.compare(old, new), unchanged=args.all)
    print(render.as_json(data) if args.format == "json" else render.diff_text(data, unchanged=args.all))
    return EXIT_OK


def cmd_waive(args, settings: config.Config) -> int:
    from kiskadee.store import waivers

    if not args.remove and not args.kind:
        print("kiskadee: error: waive needs --as KIND (or --remove)", file=sys.stderr)
        return EXIT_USAGE
    _database(args, settings, schema="current")
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

    _database(args, settings, schema="current")
    document = export.render(export.collect(queries.find_version(args.package, args.version), args.analyzer),
                             args.format)
    if args.output:
        Path(args.output).write_bytes(document)
    else:
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
    return EXIT_OK


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


def cmd_retry(args, settings: config.Config) -> int:
    from kiskadee.store import retry

    _database(args, settings, schema="current")
    states = [state.strip() for state in args.state.split(",") if state.strip()]
    versions = retry.requeue(args.package, args.versions, states, fetcher=args.fetcher, dry_run=args.dry_run)
    for version in versions:
        why = f": {version.error.splitlines()[0][:120]}" if version.error else ""
        print(f"{version.fetcher} {version.package} {version.version} ({version.state}{why})")
    verb = "would re-queue" if args.dry_run else "re-queued"
    print(f"kiskadee: {verb} {len(versions)} version{'s' if len(versions) != 1 else ''}"
          + ("" if versions else f" (none in state {', '.join(states)})"), file=sys.stderr)
    return EXIT_OK


def cmd_status(args, settings: config.Config) -> int:
    from kiskadee.store import status
    from kiskadee.store.models import utcnow

    _database(args, settings, schema="current")
    now = utcnow()
    data = status.collect(now)
    print(render.as_json(render.jsonable(data)) if args.format == "json" else render.status_text(data, now))
    return EXIT_OK


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
        if args.command in SOCKET_COMMANDS:
            from kiskadee.service.access import ensure_runtime_dirs

            ensure_runtime_dirs(settings.service)   # before any socket: refuse a directory others can write
        return args.func(args, settings)
    except KiskadeeError as exc:
        print(f"kiskadee: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kiskadee: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
