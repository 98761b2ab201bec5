"""The ``publish`` command: kiskadee's events from the outbox to fedora-messaging (``kiskadee-publish.service``)."""

from kiskadee import config
from kiskadee.cli.common import with_database
from kiskadee.errors import EXIT_OK, EXIT_UNAVAILABLE


def add_commands(commands, database) -> None:
    """Add this module's command to the parser; ``database`` is the shared --db option."""
    publish = commands.add_parser(
        "publish", parents=[database],
        help="send the events the monitor wrote to the outbox to fedora-messaging's broker",
        description="Send the messages the monitor wrote to the outbox ([publish] enabled = true) to the "
                    "broker in fedora-messaging's configuration ([publish] messaging_config), with publisher "
                    "confirms, deleting each the broker confirmed. Runs as a service until stopped; a broker "
                    "that is away delays the messages, and none is lost.")
    publish.add_argument("--once", action="store_true",
                         help="send what waits and exit: 0 when the outbox is empty, 7 when the broker "
                              "could not take every message")
    publish.set_defaults(func=cmd_publish, service=True)


def cmd_publish(args, settings: config.Config) -> int:
    from kiskadee.anitya.publisher import Publisher

    publisher = Publisher(with_database(args, settings))
    if not args.once:
        return publisher.serve()
    publisher.install_signal_handlers()
    return EXIT_OK if publisher.drain() == 0 else EXIT_UNAVAILABLE
