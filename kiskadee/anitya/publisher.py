"""``kiskadee publish``: the outbox's messages sent to fedora-messaging's broker, none lost.

The monitor writes a message to the outbox (``kiskadee.store.outbox``) in the
transaction that stores or fails a version, so announcing costs it one small
row and never waits for a broker. This service reads the outbox in order,
wraps each body in its message class (``kiskadee.anitya.schema``: validated,
with fedora-messaging's headers, under ``[publish] topic_prefix``), sends it
with publisher confirms, and deletes the messages the broker confirmed, a few
at a time. So:

- a broker that is down or does not confirm delays the messages: the service
  tries again every ``[publish] retry_seconds`` and the outbox keeps them;
- a publisher killed after the broker's confirm and before the delete sends
  those messages again on its next start, with the same message id (at most
  ``DELETE_EVERY`` of them): consumers deduplicate by id;
- a message its schema refuses (a bug, never the broker) is set aside with
  the reason, kept in the outbox, and skipped.

The broker, its TLS files and the exchange come from fedora-messaging's own
configuration file (``[publish] messaging_config``). Sending goes through a
blocking pika connection rather than ``fedora_messaging.api.publish``, whose
Twisted factory backs off reconnecting for up to an hour after an outage;
here the service paces reconnecting itself, and its loop answers signals and
the watchdog between messages. What goes on the wire is what fedora-messaging
sends for the same message (``_wire``).
"""

import json
import logging
import math
import os
import ssl
import time
from typing import Callable, List, Optional, Set, Tuple

import jsonschema.exceptions
import pika
import pika.exceptions
from fedora_messaging import config as messaging_config
from fedora_messaging import exceptions as messaging_exceptions
from fedora_messaging import message as messaging

from kiskadee.anitya.schema import CLASSES
from kiskadee.config import Config, PublishConfig
from kiskadee.errors import ConfigError, TransientError
from kiskadee.service.loop import Instant, Service
from kiskadee.store import outbox
from kiskadee.store.db import DatabaseBusy, close_database, open_database, write_transaction
from kiskadee.store.models import OutboxMessage

log = logging.getLogger(__name__)

BATCH = 100             # messages sent per step, at most: then the loop looks at signals and the watchdog
DELETE_EVERY = 20       # confirmed messages deleted per transaction: at most these are sent again after a crash
IDLE_SECONDS = 1.0      # how long an empty outbox waits before it is read again
REPORT_SECONDS = 60.0   # how often the counts are logged while they change


class BrokerUnavailable(TransientError):
    """The broker could not be reached, refused the connection, or did not confirm a message."""


class Undeliverable(Exception):
    """A message the bus can never take (its body fails its schema); it is set aside."""


def to_message(row: OutboxMessage, topic_prefix: str) -> messaging.Message:
    """The fedora-messaging message for an outbox row, with the row's message id; Undeliverable if invalid."""
    cls = CLASSES.get(row.topic)
    if cls is None:
        raise Undeliverable(f"no message class for the topic {row.topic!r}")
    try:
        message = cls(body=json.loads(row.body), topic=_prefixed(topic_prefix, row.topic))
        message.validate()
    except ValueError as exc:
        raise Undeliverable(f"the body is not JSON: {exc}") from None
    except jsonschema.exceptions.ValidationError as exc:
        raise Undeliverable(f"the body does not follow its schema: {exc.message} "
                            f"(at {'/'.join(map(str, exc.absolute_path)) or 'the top'})") from None
    message.id = row.message_id
    return message


def _prefixed(prefix: str, topic: str) -> str:
    prefix = prefix.strip(".")
    return f"{prefix}.{topic}" if prefix else topic


def _wire(message: messaging.Message) -> Tuple[str, bytes, pika.BasicProperties]:
    """Routing key, body and AMQP properties as fedora-messaging's own publisher sends them
    (its ``FedoraMessagingProtocolV2.publish``): there is no public accessor for them."""
    return message._encoded_routing_key, message._encoded_body, message._properties


class AmqpSender:
    """One blocking AMQP connection with publisher confirms, opened when needed, from fedora-messaging's settings."""

    def __init__(self, confirm_timeout: float):
        self.parameters = pika.URLParameters(messaging_config.conf["amqp_url"])
        if self.parameters.client_properties is None:
            self.parameters.client_properties = messaging_config.conf["client_properties"]
        # A send fails once the broker stays blocked (a resource alarm) or silent (heartbeats) this long.
        self.parameters.blocked_connection_timeout = confirm_timeout
        if self.parameters.heartbeat is None:       # the URL's own heartbeat= wins
            self.parameters.heartbeat = max(1, math.ceil(confirm_timeout / 2))
        if messaging_config.conf["amqp_url"].startswith("amqps"):
            self._configure_tls()
        self.exchange = messaging_config.conf["publish_exchange"]
        self.connection: Optional[pika.BlockingConnection] = None
        self.channel = None

    @property
    def address(self) -> str:
        return f"{self.parameters.host}:{self.parameters.port}"

    def send(self, message: messaging.Message) -> None:
        """Publish ``message`` and return once the broker confirmed it; BrokerUnavailable otherwise."""
        routing_key, body, properties = _wire(message)
        try:
            self._open()
            self.channel.basic_publish(self.exchange, routing_key, body, properties)
        except pika.exceptions.NackError as exc:
            raise BrokerUnavailable(f"the broker at {self.address} refused message {message.id}: {exc}") from None
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.close()
            raise BrokerUnavailable(f"cannot publish to the broker at {self.address}: "
                                    f"{type(exc).__name__}: {exc}") from None

    def wait(self, seconds: float) -> None:
        """Wait ``seconds``, answering the broker's heartbeats if connected."""
        if self.connection is None:
            time.sleep(seconds)
            return
        try:
            self.connection.process_data_events(time_limit=seconds)
        except (pika.exceptions.AMQPError, OSError) as exc:
            log.info("publisher: connection to %s lost while idle (%s); reconnecting when needed",
                     self.address, type(exc).__name__)
            self.close()

    def close(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                pass                # it is gone either way

    def _open(self) -> None:
        if self.connection is not None and self.connection.is_open and self.channel.is_open:
            return
        self.close()
        self.connection = pika.BlockingConnection(self.parameters)
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        log.info("publisher: connected to %s, publishing to the exchange %r with confirms", self.address,
                 self.exchange)

    def _configure_tls(self) -> None:
        """TLS as fedora-messaging sets it up: its [tls] CA, and the client certificate when it has one."""
        tls = messaging_config.conf["tls"]
        context = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            if tls["ca_cert"]:
                context.load_verify_locations(cafile=tls["ca_cert"])
            if tls["certfile"] and tls["keyfile"]:
                context.load_cert_chain(tls["certfile"], tls["keyfile"])
                self.parameters.credentials = pika.credentials.ExternalCredentials()
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"fedora-messaging's [tls] settings: {exc}") from None
        self.parameters.ssl_options = pika.SSLOptions(context, server_hostname=self.parameters.host)


def load_messaging_config(path: str) -> None:
    """Load fedora-messaging's configuration from ``path`` ('' is its own lookup); ConfigError if bad."""
    if path and not os.path.exists(path):
        raise ConfigError(f"{path}: fedora-messaging configuration file not found ([publish] messaging_config)")
    try:
        messaging_config.conf.load_config(path or None)
    except messaging_exceptions.ConfigurationException as exc:
        raise ConfigError(f"fedora-messaging configuration: {exc.message}") from None


class Publisher(Service):
    """Sends the outbox, oldest first, deleting what the broker confirmed (the module says how)."""

    name = "publisher"

    def __init__(self, settings: Config, send: Optional[Callable[[messaging.Message], None]] = None):
        """``send``: publishes one message and returns once confirmed (BrokerUnavailable if not);
        the default is an ``AmqpSender`` on fedora-messaging's broker, made in ``setup``."""
        super().__init__()
        if not settings.publish.enabled:
            raise ConfigError(f"publishing is off: set 'enabled = true' in the [publish] section of the "
                              f"configuration ({settings.source}); the monitor writes the outbox only then")
        self.settings: Config = settings
        self.options: PublishConfig = settings.publish
        self._send = send
        self.sender: Optional[AmqpSender] = None
        self.db = None
        self.published = self.set_aside = 0
        self.confirmed: List[int] = []          # confirmed by the broker, not yet deleted
        self._deleted_pending: Set[int] = set()  # confirmed, their delete failed: never sent again by this process
        self._resume_at = 0.0                   # after an outage, when to try the broker again
        self._outage = False
        self._reported: Optional[Tuple[int, int]] = None
        self._last_report = float("-inf")

    def setup(self) -> None:
        if self._send is None:
            load_messaging_config(self.options.messaging_config)
            self.sender = AmqpSender(self.options.confirm_timeout)
            self._send = self.sender.send
        self.db = open_database(self.settings.database.location, schema="current",
                                busy_timeout_ms=self.settings.database.busy_timeout_ms)
        waiting, aside = outbox.waiting()
        log.info("publisher: %d messages wait in the outbox (%d set aside as undeliverable)", waiting, aside)

    def step(self, now: Instant) -> None:
        """Send up to BATCH waiting messages, or wait a little when none waits or the broker is away."""
        if now.monotonic < self._resume_at:
            self._wait(min(IDLE_SECONDS, self._resume_at - now.monotonic))
            return
        try:
            handled = self._send_batch()
        except BrokerUnavailable as exc:
            self._broker_away(exc, now)
            handled = 0
        self._report(now)
        if not handled and not self._outage:
            self._wait(IDLE_SECONDS)

    def drain(self) -> int:
        """Send what waits, once, stopping at the first outage (``kiskadee publish --once``); how many wait still."""
        self.setup()
        try:
            while not self.should_stop() and self._send_batch():
                pass
            return outbox.waiting()[0]
        except BrokerUnavailable as exc:
            log.warning("publisher: %s; the outbox keeps the messages", exc)
            return outbox.waiting()[0]
        finally:
            self.teardown()

    def teardown(self) -> None:
        try:
            if self.db is not None:
                self._delete_confirmed()
                waiting, aside = outbox.waiting()
                log.info("publisher stopped: %d published, %d set aside, %d waiting", self.published,
                         self.set_aside, waiting)
                close_database(self.db)
        finally:
            if self.sender is not None:
                self.sender.close()

    def _send_batch(self) -> int:
        """Send up to BATCH waiting messages, oldest first, deleting the confirmed ones; how many were handled
        (sent or set aside). BrokerUnavailable at the first the broker did not confirm."""
        rows = [row for row in outbox.pending(BATCH) if row.id not in self._deleted_pending]
        handled = 0
        try:
            for row in rows:
                if self.stop_requests:
                    break
                self._send_row(row)
                handled += 1
        finally:
            self._delete_confirmed()
        if handled and self._outage:
            log.info("publisher: the broker takes messages again")
            self._outage = False
        return handled

    def _send_row(self, row: OutboxMessage) -> None:
        try:
            message = to_message(row, self.options.topic_prefix)
        except Undeliverable as exc:
            self._set_aside(row, str(exc))
            return
        self._send(message)
        self.published += 1
        self.confirmed.append(row.id)
        if len(self.confirmed) >= DELETE_EVERY:
            self._delete_confirmed()

    def _delete_confirmed(self) -> None:
        """Delete what the broker confirmed; if the database stays busy, skip those rows until it is not."""
        ids = self.confirmed + sorted(self._deleted_pending)
        if not ids:
            return
        try:
            with write_transaction(self.db):
                outbox.delete(ids)
        except DatabaseBusy as exc:
            log.warning("publisher: %s; deleting %d sent messages later", exc, len(ids))
            self._deleted_pending.update(ids)
        else:
            self._deleted_pending.clear()
        self.confirmed = []

    def _set_aside(self, row: OutboxMessage, reason: str) -> None:
        log.error("publisher: message %s (%s) can never be sent and is set aside in the outbox: %s",
                  row.message_id, row.topic, reason)
        with write_transaction(self.db):
            outbox.set_aside(row.id, reason)
        self.set_aside += 1

    def _broker_away(self, exc: BrokerUnavailable, now: Instant) -> None:
        """Try again after retry_seconds; say so once per outage, and again when it ends (``_send_batch``)."""
        self._resume_at = now.monotonic + self.options.retry_seconds
        if not self._outage:
            log.warning("publisher: %s; the outbox keeps the messages, trying again every %.0f s", exc,
                        self.options.retry_seconds)
        self._outage = True

    def _wait(self, seconds: float) -> None:
        if self.sender is not None:
            self.sender.wait(seconds)
        else:
            time.sleep(seconds)

    def _report(self, now: Instant) -> None:
        """Log the counts and tell systemd, when they changed and REPORT_SECONDS passed."""
        counts = (self.published, self.set_aside)
        if counts == self._reported or now.monotonic - self._last_report < REPORT_SECONDS:
            return
        self._reported, self._last_report = counts, now.monotonic
        waiting = outbox.waiting()[0]
        text = f"{self.published} published, {self.set_aside} set aside, {waiting} waiting"
        self.notifier.status(text)
        log.info("publisher: %s", text)
