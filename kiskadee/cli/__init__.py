"""The ``kiskadee`` command: one entry point, one subcommand per job.

Each module here adds its commands to the parser and holds one function per
command: it parses nothing itself, calls the layers below, prints, and returns
the exit status (``kiskadee.errors``).
"""

import argparse
import os
import select
import signal
import sys
from typing import List, Optional

from kiskadee import __version__, config, logs
from kiskadee.cli import analyze, common, curation, images, maintenance, publish, ranking, report, services
from kiskadee.errors import KiskadeeError
from kiskadee.store.db import close_bound_database

# The commands that bind or reach the monitor's sockets: the runtime directory is checked before they start.
SOCKET_COMMANDS = ("monitor", "runner", "run", "submit", "fetch")
# As a tool killed by SIGPIPE reports it: the reader of standard output left early.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE

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
  141  standard output was closed early (e.g. by head); nothing else is printed

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
    database = common.database_option()
    for group in (analyze, services, images, curation, maintenance, ranking, report, publish):
        group.add_commands(commands, database)
    return parser


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
        status = args.func(args, settings)
        sys.stdout.flush()   # a reader that left early shows here, not as a traceback at exit
        return status
    except KiskadeeError as exc:
        print(logs.for_stderr(f"kiskadee: error: {exc}"), file=sys.stderr)     # at priority err under journald
        return exc.exit_code
    except KeyboardInterrupt:
        print("kiskadee: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        return EXIT_BROKEN_PIPE
    finally:
        close_bound_database()      # the last one out leaves the file readable by the group (store.db)


def _stdout_closed() -> bool:
    """Whether the reader of standard output went away (``kiskadee packages | head``).

    Then what is left of the output goes nowhere, so that exiting does not
    print a second traceback; a broken pipe anywhere else is not ours to hide.
    """
    try:
        stdout = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return False
    poller = select.poll()
    poller.register(stdout, select.POLLOUT)
    if not any(mask & (select.POLLERR | select.POLLHUP) for _, mask in poller.poll(0)):
        return False
    os.dup2(os.open(os.devnull, os.O_WRONLY), stdout)
    return True


if __name__ == "__main__":
    sys.exit(main())
