"""``AnityaCallback``: the ``fedora-messaging consume`` callback that feeds Anitya's updates to the monitor.

Run it with the shipped configuration (extra ``amqp``)::

    fedora-messaging --conf /etc/fedora-messaging/kiskadee.toml consume

which binds a queue to Anitya's version-update topics and names this class
as its ``callback``. kiskadee's own configuration (the intake socket, the
``[anitya]`` section) is read from ``consumer_config.kiskadee_config`` in
that file, or by kiskadee's usual lookup when it is empty.

Each message is normalized like the fedmsg bridge does
(:func:`kiskadee.anitya.messages.normalize`) and acknowledged to the broker
only once the monitor has recorded its event, so the broker keeps it
through any outage of the monitor:

- a malformed message, or one that is no version update, is dropped
  (``Drop``: the broker discards it), logged and counted;
- when the monitor cannot be reached, or does not record the event within
  ``ACK_SECONDS``, the message goes back to the queue (``Nack``) after a
  pause of ``[anitya] retry_seconds``, and is delivered again.
"""

import logging
import threading
import time
from typing import Any, Optional

from fedora_messaging import config as messaging_config
from fedora_messaging.exceptions import Drop, Nack

from kiskadee import config
from kiskadee.anitya.messages import MessageError, normalize, prepare
from kiskadee.anitya.outbox import Tally
from kiskadee.core.events import SourceEvent
from kiskadee.errors import KiskadeeError
from kiskadee.service.intake import IntakeSender

log = logging.getLogger(__name__)

ACK_SECONDS = 10.0          # how long a message waits for the monitor to record its event


class MonitorUnreachable(KiskadeeError):
    """The monitor did not take an event; the message is returned to the broker."""


class AnityaCallback:
    """Called by fedora-messaging with each message, one at a time, on a thread of its pool."""

    def __init__(self):
        options = messaging_config.conf["consumer_config"] or {}
        self.settings = config.load(options.get("kiskadee_config") or None)
        self.tally = Tally("anitya consumer", self.settings.anitya.report_seconds)
        self._sender: Optional[IntakeSender] = None
        self._lock = threading.Lock()       # fedora-messaging may call from different pool threads
        prepare()
        log.info("anitya consumer: forwarding to %s (configuration: %s)",
                 self.settings.service.intake_endpoint, self.settings.source)

    def __call__(self, message: Any) -> None:
        """Hand one message's event to the monitor; raises Drop or Nack as described in the module."""
        self.tally.count("received")
        try:
            event = normalize(message.topic, message.body)
        except MessageError as exc:
            self.tally.drop("malformed", f"{message.topic} (message id {message.id}): {exc}")
            raise Drop() from None
        try:
            self._deliver(event)
            self.tally.count("forwarded")
        except MonitorUnreachable as exc:
            log.warning("anitya consumer: returning message %s to the queue, retrying in %.0f s: %s",
                        message.id, self.settings.anitya.retry_seconds, exc)
            time.sleep(self.settings.anitya.retry_seconds)
            raise Nack() from None
        finally:
            self.tally.report(time.monotonic())

    def _deliver(self, event: SourceEvent) -> None:
        """Send the event and wait until the monitor recorded it; MonitorUnreachable otherwise."""
        with self._lock:
            if self._sender is None:
                try:
                    self._sender = IntakeSender(self.settings.service.intake_endpoint, service=self.settings.service)
                except KiskadeeError as exc:    # no monitor listens on the ipc path
                    raise MonitorUnreachable(str(exc)) from None
            self._sender.send(event)
            if not self._sender.flush(ACK_SECONDS):
                self._discard_sender()      # the broker keeps the message; do not pile up resends
                raise MonitorUnreachable(f"the monitor at {self.settings.service.intake_endpoint} did not "
                                         f"record the event within {ACK_SECONDS:.0f} s")

    def _discard_sender(self) -> None:
        sender, self._sender = self._sender, None
        try:
            sender.close(timeout=0)
        except KiskadeeError:
            pass                            # its events are the messages we are returning to the broker
