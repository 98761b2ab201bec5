"""``AnityaConsumer``: fedmsg-hub forwards Anitya's version updates to kiskadee's monitor.

The consumer is registered on the ``moksha.consumer`` entry point (extra
``fedmsg``) and runs when the fedmsg configuration sets its ``config_key``
(``packaging/fedmsg.d/kiskadee.py``). It reads kiskadee's own configuration
from the file named by ``kiskadee.bridge.config`` in the fedmsg
configuration, or by kiskadee's usual lookup when that is unset: the intake
socket (``[service]``) and the ``[anitya]`` section.

It subscribes to ``<topic_prefix>.anitya.project.version.update`` and its
``.v2``, turns each message into a source event
(:func:`kiskadee.anitya.messages.normalize`) and hands it to an ``Outbox``,
which never makes the hub wait. A message that is too large, not JSON,
malformed or not a version update is dropped, logged and counted; the counts
are logged every ``report_seconds``.

The consumer does all its work on the hub's reactor thread, where messages
arrive: normalizing takes tens of microseconds and sending never waits.
moksha's worker thread (its default) would add a second busy thread, and
the reactor would then wait for the GIL after each of its ZeroMQ calls.

Stopping hands the monitor what the bridge holds and waits up to
``STOP_SECONDS`` for its acknowledgements. fedmsg-hub runs the reactor
without Twisted's signal handlers and handles only SIGINT and SIGHUP, so
SIGTERM (systemd's stop) would kill it at once; the bridge therefore makes
SIGTERM stop the reactor, as Twisted's own handler does, and stops from the
reactor's "before shutdown" trigger, on the reactor thread.
"""

import json
import logging
import signal
import time
from typing import Any, List

import fedmsg.consumers
import moksha.hub.reactor
from twisted.internet import task
from twisted.internet.error import ReactorNotRunning
from twisted.python import threadable

from kiskadee import config, logs
from kiskadee.anitya.messages import MessageError, normalize, prepare, topics
from kiskadee.anitya.outbox import STOP_SECONDS, TICK_SECONDS, Outbox, Tally

log = logging.getLogger(__name__)

CONFIG_KEY = "kiskadee.bridge.enabled"
CONFIG_FILE_KEY = "kiskadee.bridge.config"      # kiskadee's TOML file; unset: the usual lookup


def subscriptions(prefix: str, strict: bool) -> List[str]:
    """The topics to subscribe to. Unless the hub sets ``zmq_strict``, ZeroMQ matches topic prefixes:
    the v1 topic then brings the v2 one too, and subscribing to both would deliver each v2 message twice."""
    v1, v2 = topics(prefix)
    return [v1, v2] if strict else [v1]


class AnityaConsumer(fedmsg.consumers.FedmsgConsumer):
    """Forwards Anitya's version updates from the fedmsg bus to kiskadee's monitor."""

    config_key = CONFIG_KEY
    topic: List[str] = []               # set from the configured prefix when the hub starts the consumer
    _stopped = False

    def __init__(self, hub):
        logs.prioritize_stream_handlers()   # fedmsg-hub's handlers have no syslog priority: all would be info
        if not hub.config.get(self.config_key, False):
            super().__init__(hub)       # logs that the consumer is disabled and leaves it idle
            return
        settings = self._settings(hub.config.get(CONFIG_FILE_KEY))
        bus = settings.anitya
        self.topic = subscriptions(bus.topic_prefix, _true(hub.config.get("zmq_strict", False)))
        self.max_message_bytes = bus.max_message_bytes
        self.tally = Tally("anitya bridge", bus.report_seconds)
        self.outbox = Outbox(settings.service.intake_endpoint, bus.queue_size, self.tally, bus.retry_seconds,
                             service=settings.service)
        prepare()
        super().__init__(hub)
        self.blocking_mode = True       # consume on the reactor thread; see the module's docstring
        self.ticker = task.LoopingCall(self._tick)
        self.ticker.start(TICK_SECONDS, now=False)
        moksha.hub.reactor.reactor.addSystemEventTrigger("before", "shutdown", self.stop)
        stop_reactor_on_sigterm()
        log.info("anitya bridge: forwarding %s to %s (configuration: %s)", ", ".join(self.topic),
                 settings.service.intake_endpoint, settings.source)

    def _tick(self) -> None:
        try:
            self.outbox.tick(time.monotonic())
        except Exception:               # keep ticking: a stopped ticker would silently stop the bridge
            log.exception("anitya bridge: unexpected error while sending to the monitor")

    @staticmethod
    def _settings(path: Any) -> config.Config:
        try:
            return config.load(path or None)
        except config.ConfigError as exc:
            log.error("anitya bridge not started: %s", exc)
            raise

    def _consume_json(self, message) -> Any:
        """Drop an oversized body before moksha decodes it on the hub's reactor thread."""
        body = getattr(message, "body", None)
        if isinstance(body, (str, bytes)) and _oversized(body, self.max_message_bytes):
            self.tally.count("received")
            self.tally.drop("too large", f"{getattr(message, 'topic', '?')}: a body of {len(body)} "
                                         f"characters, over the {self.max_message_bytes} byte limit")
            return None
        return super()._consume_json(message)

    def consume(self, message: dict) -> None:
        """Normalize one message and pass its event on to the monitor; never waits, never raises on bad input."""
        if not threadable.isInIOThread():   # fedmsg's backlog replay runs on a thread of its own
            moksha.hub.reactor.reactor.callFromThread(self.consume, message)
            return
        self.tally.count("received")
        topic = message.get("topic")
        if self._stopped:               # on SIGINT moksha stops the consumers before the reactor
            self.tally.drop("shutdown", f"{topic}: arrived after the bridge stopped")
            return
        try:
            event = normalize(topic, anitya_body(message.get("body")))
        except MessageError as exc:
            self.tally.drop("malformed", f"{topic}: {exc}")
            return
        except Exception:
            self.tally.drop("internal error", f"{topic}: see the traceback that follows")
            raise
        self.outbox.offer(event)

    def stop(self) -> None:
        """Stop ticking, hand the monitor what is held and wait up to ``STOP_SECONDS`` for its
        acknowledgements. Called by moksha (SIGINT, SIGHUP) and by the reactor's "before shutdown"
        trigger (SIGTERM): the first call stops, later ones, even from within it, do nothing."""
        if self._stopped:
            return
        self._stopped = True
        if getattr(self, "ticker", None) is not None:
            if self.ticker.running:
                self.ticker.stop()
            self.outbox.close(STOP_SECONDS)
        super().stop()                  # moksha's: ends its worker threads and closes the hub


def stop_reactor_on_sigterm() -> None:
    """Make SIGTERM stop the reactor, unless something else handles SIGTERM already.

    fedmsg-hub leaves SIGTERM at its default, which ends the process at once. The handler only
    queues the stop for the reactor thread, as Twisted's own SIGTERM handler does; a second
    SIGTERM ends the hub at once."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm)


def _sigterm(_signum, _frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    moksha.hub.reactor.reactor.callFromThread(_stop_reactor)


def _stop_reactor() -> None:
    log.info("anitya bridge: SIGTERM: stopping fedmsg-hub (a second SIGTERM ends it at once)")
    try:
        moksha.hub.reactor.reactor.stop()
    except ReactorNotRunning:
        pass


def anitya_body(envelope: Any) -> Any:
    """The Anitya body inside a fedmsg envelope (``msg``); MessageError if there is none."""
    if not isinstance(envelope, dict) or "msg" not in envelope:
        raise MessageError("not a fedmsg envelope: it has no 'msg'")
    body = envelope["msg"]
    if isinstance(body, str):           # moksha passes bodies that are not JSON on as text
        try:
            json.loads(body)
        except ValueError as exc:
            raise MessageError(f"not JSON: {exc}") from None
    return body


def _oversized(body, limit: int) -> bool:
    if len(body) > limit:
        return True
    # Text may be up to four bytes a character; encode only when that could cross the limit.
    return isinstance(body, str) and len(body) * 4 > limit and len(body.encode("utf-8", "replace")) > limit


def _true(value: Any) -> bool:
    """A fedmsg/moksha boolean setting, which may be a string from an .ini file."""
    return str(value).strip().lower() in ("1", "true", "yes", "on")
