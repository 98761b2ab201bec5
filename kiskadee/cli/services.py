"""The service commands: ``monitor``, ``runner``, ``run``, ``submit``, ``fetch``, ``status`` and ``keys``."""

import logging
import sys
from pathlib import Path

from kiskadee import config
from kiskadee.cli.common import database_option, open_store, with_database
from kiskadee.core.events import SourceEvent
from kiskadee.errors import EXIT_OK, EXIT_USAGE
from kiskadee.results import render
from kiskadee.sources import make_fetcher
from kiskadee.sources.local import submitted_source
from kiskadee.store import queries
from kiskadee.store.db import open_database

log = logging.getLogger(__name__)


def add_commands(commands, database) -> None:
    """Add this module's commands to the parser; ``database`` is the shared --db option."""
    _add_services(commands)
    _add_keys(commands)


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
    status = commands.add_parser("status", parents=[database_option()],
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


def cmd_monitor(args, settings: config.Config) -> int:
    from kiskadee.service.monitor import Monitor

    return Monitor(with_database(args, settings)).serve()


def cmd_runner(args, settings: config.Config) -> int:
    from kiskadee.service.runner import RunnerService

    return RunnerService(settings, args.name).serve()


def cmd_run(args, settings: config.Config) -> int:
    from kiskadee.service import supervisor

    verbosity = -1 if args.quiet else args.verbose
    return supervisor.run(settings, args.config, verbosity)


def cmd_submit(args, settings: config.Config) -> int:
    from kiskadee.service.intake import EventRejected, IntakeSender, check_may_send

    check_may_send(settings.service.intake_endpoint)           # before copying anything into the spool
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

    path = settings.database.location
    if not config.is_server(path) and (not path or path == ":memory:" or not Path(path).exists()):
        return []
    try:
        open_database(path, schema="current", busy_timeout_ms=settings.database.busy_timeout_ms)
        return queries.anitya_versions()
    except (DatabaseError, peewee.DatabaseError) as exc:
        # Gap filling still helps for the configured projects; the warning says what is missing.
        log.warning("cannot read the projects in %s (%s): polling the configured ones only", path, exc)
        return []


def cmd_status(args, settings: config.Config) -> int:
    from kiskadee.store import status
    from kiskadee.store.models import utcnow

    open_store(args, settings, schema="current")
    now = utcnow()
    data = status.collect(now)
    print(render.as_json(render.jsonable(data)) if args.format == "json" else render.status_text(data, now))
    return EXIT_OK


def cmd_keys(args, settings: config.Config) -> int:
    from kiskadee.service.curve import create_keys

    if args.role == "monitor" and args.name:
        print("kiskadee: error: 'keys monitor' takes no NAME", file=sys.stderr)
        return EXIT_USAGE
    public, secret = create_keys(settings.service, args.role, args.name, force=args.force)
    print(f"public key {public}")
    print(f"secret key {secret} (mode 0600: keep it on the host that uses it, and nowhere else)")
    return EXIT_OK
