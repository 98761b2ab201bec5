"""Anitya's release announcements from the message buses, turned into kiskadee source events.

Anitya (release-monitoring) announces every new upstream version it finds.
kiskadee receives those announcements two ways, both sharing the
normalization in :mod:`kiskadee.anitya.messages`:

- :mod:`kiskadee.anitya.bridge`: ``AnityaConsumer``, a fedmsg consumer that
  runs inside ``fedmsg-hub`` (the ZeroMQ bus; extra ``fedmsg``);
- :mod:`kiskadee.anitya.amqp`: a callback for ``fedora-messaging consume``
  (the AMQP bus; extra ``amqp``).

Both hand the events to the monitor's intake socket. Importing this package
needs neither fedmsg nor fedora-messaging.
"""
