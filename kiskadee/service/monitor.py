"""``kiskadee monitor``: the only writer of the database.

It takes source events from the intake socket (a ROUTER: see
kiskadee.service.intake), records every package and version and queues the new
ones, acknowledging each batch to its senders once committed; on the work
socket (ROUTER) it hands jobs
to runners that asked for one, extends their leases on heartbeats, re-queues
the jobs of silent runners and stores each result in one transaction before
acknowledging it.

Nothing one message holds can stop it. A message that is malformed or over
a limit (kiskadee.service.wire), an event whose version its origin's rules
refuse, a heartbeat or result from a runner that does not hold the job's
lease: each is rejected with the reason (``rejected`` to an intake sender,
``reject`` to a runner, so neither sends it again), counted and logged at
warning. An exception while handling one event, heartbeat or result is
caught at that item, logged with its traceback, and costs only that item:
the event is rejected (the rest of its batch is kept, each event in a
savepoint), the result's job fails with the error text.
"""

import collections
import json
import logging
from typing import Dict, Optional

import peewee
import zmq

from kiskadee.config import Config
from kiskadee.core import ranking
from kiskadee.core.runs import AnalyzerRun
from kiskadee.core.states import IN_QUEUE
from kiskadee.service import wire
from kiskadee.service.access import INTAKE_SOCKET_MODE, WORK_SOCKET_MODE
from kiskadee.service.curve import MonitorGuard
from kiskadee.service.intake import IntakeReceiver
from kiskadee.service.loop import Instant, Service
from kiskadee.service.systemd import bind, listen_fds
from kiskadee.store import queue
from kiskadee.store.catalog import Catalog
from kiskadee.store.db import close_database, open_database, unreachable
from kiskadee.store.models import Runner, Version

log = logging.getLogger(__name__)

POLL_MS = 500
HOUSEKEEPING_SECONDS = 1.0
IDLE_RUNNER_TTL = 30.0          # an idle runner re-announces itself every few seconds
LOGGED_PER_MINUTE = 50          # rejections and contained errors logged one by one; beyond, counted


class LogLimit:
    """How many lines a flood may log: ``per_minute`` a minute, then one line saying how many were left out."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._window: Optional[Instant] = None
        self._logged = self._left_out = 0

    def allow(self, now: Instant) -> bool:
        """Whether to log one more line at ``now``."""
        if self._window is None or now.since(self._window) >= 60.0:
            if self._left_out:
                log.warning("%d more rejections and errors in the last minute were counted, not logged",
                            self._left_out)
            self._window, self._logged, self._left_out = now, 0, 0
        if self._logged < self.per_minute:
            self._logged += 1
            return True
        self._left_out += 1
        return False


class Monitor(Service):
    name = "monitor"

    def __init__(self, settings: Config, context: Optional[zmq.Context] = None):
        super().__init__()
        self.settings = settings
        self.policy = queue.QueuePolicy(publish=settings.publish.enabled,
                                        **{k: getattr(settings.monitor, k) for k in
                                           ("analyze", "lease_seconds", "max_attempts", "backoff_seconds")})
        self.context = context or zmq.Context.instance()
        self.limits = settings.limits
        self.catalog = Catalog(self.policy, self.limits.version_chars)
        self.log_limit = LogLimit(LOGGED_PER_MINUTE)
        self.idle: "collections.OrderedDict[bytes, Instant]" = collections.OrderedDict()  # when each said ready
        self.counters: Dict[str, int] = collections.Counter()
        self.poll_ms = POLL_MS          # how long a step waits for a message; tests drive steps faster
        self._housekept: Optional[Instant] = None
        self._unavailable: Optional[Instant] = None     # when the database last could not be reached
        self._outage: Optional[Instant] = None          # since when it cannot, while it cannot

    def setup(self) -> None:
        self.ranking_priors = ranking.load_priors(self.settings.ranking.priors)    # before anything starts
        self.db = open_database(self.settings.database.location,
                                busy_timeout_ms=self.settings.database.busy_timeout_ms)
        inherited = listen_fds(unset=True)
        self.intake = self.context.socket(zmq.ROUTER)
        self.intake.setsockopt(zmq.RCVHWM, 0)      # back-pressure reaches the senders' windows instead
        self.work = self.context.socket(zmq.ROUTER)
        self.work.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # ZeroMQ drops a peer that sends more than this, before the monitor reads any of it.
        self.intake.setsockopt(zmq.MAXMSGSIZE, self.settings.limits.intake_message_bytes)
        self.work.setsockopt(zmq.MAXMSGSIZE, self.settings.limits.work_message_bytes)
        for sock in (self.intake, self.work):
            sock.setsockopt(zmq.LINGER, 0)
        # Who may speak: the group announces, only the service's user works; tcp:// needs keys.
        self.guard = MonitorGuard(self.settings.service, self.context)
        intake = bind(self.intake, self.settings.service.intake_endpoint, inherited.get("intake", []),
                      mode=INTAKE_SOCKET_MODE, prepare=self.guard.for_domain("intake"))
        work = bind(self.work, self.settings.service.work_endpoint, inherited.get("work", []),
                    mode=WORK_SOCKET_MODE, prepare=self.guard.for_domain("work"))
        self.receiver = IntakeReceiver(self.intake)
        self.poller = zmq.Poller()
        self.poller.register(self.intake, zmq.POLLIN)
        self.poller.register(self.work, zmq.POLLIN)
        log.info("monitor listening: intake %s, work %s%s", ", ".join(intake), ", ".join(work),
                 " (sockets from systemd)" if inherited else "")

    def step(self, now: Instant) -> None:
        """Record waiting events and runner messages, expire what ran out by ``now``, hand out jobs.

        While the database is unreachable (a server restarting, a disk full) the step ends
        where it failed and nothing is answered: senders send their events again, runners
        their results, and they are taken once the database is back.
        """
        ready = dict(self.poller.poll(self.poll_ms))
        try:
            if self._outage is not None:
                self.db.execute_sql("SELECT 1")     # back yet? (a step may touch nothing else)
                log.warning("the database is back after %.0f s", now.since(self._outage))
                self._outage = None
            if self.intake in ready:
                self.take_events(now)
            if self.work in ready:
                self.take_runner_messages(now)
            if self._housekept is None or now.since(self._housekept) >= HOUSEKEEPING_SECONDS:
                self._housekept = now
                self.housekeeping(now)
            self.dispatch(now)
        except peewee.DatabaseError as exc:
            if not unreachable(self.db, exc):
                raise
            self._unavailable = now
            self.counters["database-unavailable"] += 1
            if self._outage is None:
                self._outage = now
                log.warning("the database is unavailable (%s); answering nothing until it is back: senders "
                            "and runners send again", " ".join(str(exc).split()))

    def teardown(self) -> None:
        for sock in (getattr(self, "intake", None), getattr(self, "work", None)):
            if sock is not None:
                sock.close(linger=0)
        if getattr(self, "db", None) is not None:
            close_database(self.db)
        if getattr(self, "guard", None) is not None:
            self.guard.stop()       # the ZAP thread, after the sockets it served

    # intake -----------------------------------------------------------------

    def take_events(self, now: Instant) -> None:
        """Record the events waiting on the intake socket, a batch per transaction; then answer each sender.

        A batch that fails as a whole is recorded again one event at a time, each
        in a savepoint, so the one event that broke it is rejected and the rest kept.
        """
        deliveries = self.receiver.receive(self.settings.monitor.batch)
        stamp = str(now.utc)    # formatted once per batch: the hot path records thousands
        queued_before = self.counters["queued"]
        try:
            with self.db.atomic():
                reasons = [self._record(delivery.frame, stamp) for delivery in deliveries]
                self.catalog.flush()
        except Exception as exc:   # noqa: BLE001 (contained: the events are recorded one by one below)
            if unreachable(self.db, exc):
                self.catalog.reset()
                raise
            self._contained(f"recording a batch of {len(deliveries)} events; recording them one by one", now)
            self.catalog.reset()
            with self.db.atomic():
                reasons = [self._record_alone(delivery.frame, stamp, now) for delivery in deliveries]
        self._answer_senders(deliveries, reasons, now)     # after the commit: senders re-send what is not answered
        if self.counters["queued"] > queued_before:
            log.info("recorded %d events, %d new versions queued", len(deliveries),
                     self.counters["queued"] - queued_before)

    def _record(self, frame: bytes, now: str) -> Optional[str]:
        """Record one event; None, or why it is refused (malformed, over a limit, not a version)."""
        try:
            message = wire.decode(frame, self.limits.intake_message_bytes, self.limits)
            if message.type != "source":
                raise wire.WireError(f"intake takes source messages, not {message.type}")
            outcome = self.catalog.record(message.fields, now)
        except ValueError as exc:       # WireError, or a version its origin's rules do not allow
            return str(exc)
        self.counters[outcome] += 1
        if outcome == "queued":     # debug: a Debian pass queues thousands at once
            log.debug("queued %s %s from %s", message.fields["package"], message.fields["version"],
                      message.fields["fetcher"])
        return None

    def _record_alone(self, frame: bytes, now: str, instant: Instant) -> Optional[str]:
        """Record one event in its own savepoint; an error rolls back this event only, and rejects it."""
        try:
            with self.db.atomic():
                reason = self._record(frame, now)
                self.catalog.flush()
            return reason
        except Exception as exc:    # noqa: BLE001 (contained to this event, logged with its traceback)
            if unreachable(self.db, exc):
                self.catalog.reset()
                raise
            self._contained("recording an event", instant)
            self.catalog.reset()    # its cache may hold what the savepoint rolled back
            return f"the monitor could not record this event: {type(exc).__name__}: {exc}"

    def _answer_senders(self, deliveries, reasons, now: Instant) -> None:
        """Acknowledge each sender's recorded events and reject its refused ones, with the reason."""
        recorded, rejected = collections.defaultdict(list), collections.defaultdict(list)
        for delivery, reason in zip(deliveries, reasons):
            if reason is not None:
                self._rejected("an intake event", reason, now)
            if delivery.seq is None:
                continue
            if reason is None:
                recorded[delivery.peer].append(delivery.seq)
            else:
                rejected[(delivery.peer, reason)].append(delivery.seq)
        self.receiver.acknowledge(recorded)
        self.receiver.reject(rejected)

    # runners ----------------------------------------------------------------

    def take_runner_messages(self, now: Instant) -> None:
        """Handle every message waiting on the work socket."""
        while True:
            try:
                identity, frame = self.work.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:
                self._rejected("a work message", "not one frame", now)
                continue
            self._handle_runner(identity, frame, now)

    def _handle_runner(self, identity: bytes, frame: bytes, now: Instant) -> None:
        """Decode one runner message and handle it; a failure is contained to this message."""
        handlers = {"ready": self._on_ready, "heartbeat": self._on_heartbeat, "result": self._on_result,
                    "release": self._on_release}
        try:
            message = wire.decode(frame, self.limits.work_message_bytes, self.limits)
            if message.type not in handlers:
                raise wire.WireError(f"runners do not send {message.type} messages")
            if message.fields["runner"] != _name_of(identity):
                raise wire.WireError(f"runner name {message.fields['runner']!r} is not the one its connection "
                                     f"gave ({_name_of(identity)!r})", dict(message.fields, type=message.type))
        except wire.WireError as exc:
            self._refuse(identity, exc, now)
            return
        try:
            handlers[message.type](identity, message.fields, now)
        except Exception as exc:    # noqa: BLE001 (contained to this message, logged with its traceback)
            if unreachable(self.db, exc):
                raise               # not this message's fault: unanswered, it comes again
            self._contained(f"handling a {message.type} message from runner {message.fields['runner']!r}", now)
            if message.type == "result":
                reason = f"the monitor could not store this result: {type(exc).__name__}: {exc}"
                self._fail_result(identity, message.fields, reason, now)
                self._reject_work(identity, message.fields["job"], reason, now)

    def _refuse(self, identity: bytes, exc: wire.WireError, now: Instant) -> None:
        """Count and log a malformed runner message; tell its sender if it names a job, and fail
        the job if it is the result of the runner that holds it: no re-sending, no re-running."""
        document = exc.document or {}
        job = document.get("job")
        if document.get("type") not in ("heartbeat", "result") or not _is_id(job):
            self._rejected(f"a message from runner {_name_of(identity)!r}", str(exc), now)
            return
        if document["type"] == "result":
            self._fail_result(identity, document, f"result refused: {exc}", now)
        self._reject_work(identity, job, f"{document['type']} refused: {exc}", now)

    def _reject_work(self, identity: bytes, job: int, reason: str, now: Instant) -> None:
        self._rejected(f"a message from runner {_name_of(identity)!r}", reason, now)
        self._send(identity, wire.encode("reject", job=job, reason=wire.reason_text(reason)))

    def _fail_result(self, identity: bytes, fields: dict, reason: str, now: Instant) -> None:
        """Fail the job of a result that cannot be taken, if its sender holds the lease."""
        lease = fields.get("lease")
        lease = lease if isinstance(lease, str) and lease.isprintable() else ""     # a refused message's may be anything
        try:
            with self.db.atomic():
                job = queue.holder(fields["job"], _name_of(identity), lease)
                queue.fail(job, wire.reason_text(reason), now.utc, publish=self.policy.publish)
        except queue.LeaseRefused:
            pass        # not the holder's result: the job stays as it is
        except Exception:   # noqa: BLE001 (contained; the lease runs out and the job is re-queued)
            self._contained(f"failing job {fields['job']}", now)

    def _on_ready(self, identity: bytes, fields: dict, now: Instant) -> None:
        self.idle[identity] = now
        self._runner_seen(fields["runner"], now, state="idle", version=None, activity="")

    def _on_heartbeat(self, identity: bytes, fields: dict, now: Instant) -> None:
        try:
            with self.db.atomic():
                queue.heartbeat(fields["job"], fields["runner"], fields["lease"], self.policy, now.utc)
        except queue.LeaseRefused as exc:
            self._reject_work(identity, fields["job"], f"heartbeat refused: {exc}", now)
            return
        self._runner_seen(fields["runner"], now, state="busy", version=fields["job"], activity=fields["activity"])

    def _on_release(self, identity: bytes, fields: dict, now: Instant) -> None:
        """A stopping runner hands its job back: queued again at once, the attempt not counted."""
        try:
            with self.db.atomic():
                queue.hand_back(fields["job"], fields["runner"], fields["lease"])
        except queue.LeaseRefused as exc:
            log.warning("release of job %s by %s refused: %s", fields["job"], fields["runner"], exc)
            return
        log.info("job %s handed back by %s, queued again", fields["job"], fields["runner"])
        self._runner_seen(fields["runner"], now, state="gone", version=None, activity="")

    def _on_result(self, identity: bytes, fields: dict, now: Instant) -> None:
        runs = [AnalyzerRun.from_wire(run) for run in fields["runs"]]  # wire checked every field already
        try:
            with self.db.atomic():
                outcome = queue.complete(fields["job"], fields, runs, self.policy, now.utc,
                                         self.ranking_priors)
        except queue.LeaseRefused as exc:
            self._reject_work(identity, fields["job"], f"result refused: {exc}", now)
            return
        self.counters[f"result-{outcome}"] += 1
        log.info("job %s from %s: %s", fields["job"], fields["runner"], outcome)
        self._send(identity, wire.encode("ack", job=fields["job"]))

    def _runner_seen(self, name: str, now: Instant, **state) -> None:
        Runner.insert(name=name, last_seen=now.utc, **state).on_conflict(
            conflict_target=[Runner.name], preserve=[Runner.last_seen],
            update={Runner.state: state["state"], Runner.version: state["version"],
                    Runner.activity: state["activity"]},
        ).execute()

    def _send(self, identity: bytes, frame: bytes) -> bool:
        try:
            self.work.send_multipart([identity, frame], zmq.NOBLOCK)
            return True
        except zmq.ZMQError as exc:     # EHOSTUNREACH: the runner is gone; EAGAIN: it is not reading
            log.warning("cannot reach runner %r: %s", identity, exc)
            self.idle.pop(identity, None)
            return False

    # failures ---------------------------------------------------------------

    def _rejected(self, what: str, reason: str, now: Instant) -> None:
        """Count a refused message; log it at warning, at most LOGGED_PER_MINUTE a minute."""
        self.counters["rejected"] += 1
        if self.log_limit.allow(now):
            log.warning("rejected %s (%d so far): %s", what, self.counters["rejected"], wire.reason_text(reason))

    def _contained(self, doing: str, now: Instant) -> None:
        """Log the exception being handled, with its traceback, at error; the monitor goes on serving."""
        self.counters["errors"] += 1
        if self.log_limit.allow(now):
            log.error("error while %s (contained; %d so far)", doing, self.counters["errors"], exc_info=True)

    # jobs -------------------------------------------------------------------

    def dispatch(self, now: Instant) -> None:
        """Hand the jobs due at ``now`` to idle runners, oldest waiting runner first."""
        if not self.idle or not queue.any_due(now.utc):     # the usual idle step: no write lock taken
            return
        while self.idle:
            identity = next(iter(self.idle))
            with self.db.atomic():
                job = queue.lease(_name_of(identity), self.policy, now.utc)
            if job is None:
                return
            self.idle.pop(identity)
            try:
                frame = _job_message(job)
            except Exception as exc:    # noqa: BLE001 (contained to this job, which fails with the reason)
                self._contained(f"sending job {job.id}", now)
                with self.db.atomic():
                    queue.fail(job, f"the monitor could not send this job: {type(exc).__name__}: {exc}", now.utc,
                               publish=self.policy.publish)
                continue
            if not self._send(identity, frame):
                queue.release(job)
                continue
            log.info("job %s (%s %s) to %s", job.id, job.package.name, job.number, _name_of(identity))

    def housekeeping(self, now: Instant) -> None:
        """Re-queue the jobs whose lease ran out by ``now``, forget runners long silent, report status.

        Leases do not run out until a lease period after the database was last unreachable:
        the heartbeats the monitor could not record meanwhile were sent, and come again.
        """
        if self._unavailable is None or now.since(self._unavailable) > self.policy.lease_seconds:
            with self.db.atomic():
                queue.expire_leases(self.policy, now.utc)
        stale = [i for i, seen in self.idle.items() if now.since(seen) > IDLE_RUNNER_TTL]
        for identity in stale:
            self.idle.pop(identity)
        self.notifier.status(self.status_line())

    def status_line(self) -> str:
        """The STATUS= line: jobs queued and running, idle runners, rejected messages."""
        counts = dict(Version.select(Version.state, peewee.fn.COUNT(Version.id))
                      .where(Version.state.in_(IN_QUEUE))
                      .group_by(Version.state).tuples())
        return (f"{counts.get('queued', 0)} queued, {counts.get('leased', 0)} running, "
                f"{len(self.idle)} runners idle, {self.counters['rejected']} rejected")


def _name_of(identity: bytes) -> str:
    """The runner name a work connection gave (its ZeroMQ identity); a runner's messages must carry it."""
    return identity.decode("utf-8", errors="replace")


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= wire.MAX_ID


def _job_message(job: Version) -> bytes:
    return wire.encode("job", job=job.id, lease=job.lease_token, fetcher=job.package.fetcher.name,
                       package=job.package.name, version=job.number, source_url=job.source_url, sha256=job.sha256,
                       meta=json.loads(job.event)["meta"] if job.event else {})
