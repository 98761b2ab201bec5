"""``kiskadee monitor``: the only writer of the database.

It takes source events from the intake socket (a ROUTER: see
kiskadee.service.intake), records every package and version and queues the new
ones, acknowledging each batch to its senders once committed; on the work
socket (ROUTER) it hands jobs
to runners that asked for one, extends their leases on heartbeats, re-queues
the jobs of silent runners and stores each result in one transaction before
acknowledging it.
"""

import collections
import json
import logging
from typing import Dict, Optional

import peewee
import zmq

from kiskadee.config import Config
from kiskadee.core.runs import AnalyzerRun
from kiskadee.core.states import IN_QUEUE
from kiskadee.service import wire
from kiskadee.service.intake import IntakeReceiver
from kiskadee.service.loop import Instant, Service
from kiskadee.service.systemd import bind, listen_fds
from kiskadee.store import queue
from kiskadee.store.catalog import Catalog
from kiskadee.store.db import open_database
from kiskadee.store.models import Runner, Version

log = logging.getLogger(__name__)

POLL_MS = 500
HOUSEKEEPING_SECONDS = 1.0
IDLE_RUNNER_TTL = 30.0          # an idle runner re-announces itself every few seconds


class Monitor(Service):
    name = "monitor"

    def __init__(self, settings: Config, context: Optional[zmq.Context] = None):
        super().__init__()
        self.settings = settings
        self.policy = queue.QueuePolicy(**{k: getattr(settings.monitor, k) for k in
                                          ("analyze", "lease_seconds", "max_attempts", "backoff_seconds")})
        self.context = context or zmq.Context.instance()
        self.catalog = Catalog(self.policy)
        self.idle: "collections.OrderedDict[bytes, Instant]" = collections.OrderedDict()  # when each said ready
        self.counters: Dict[str, int] = collections.Counter()
        self.poll_ms = POLL_MS          # how long a step waits for a message; tests drive steps faster
        self._housekept: Optional[Instant] = None

    def setup(self) -> None:
        self.db = open_database(self.settings.database.path,
                                busy_timeout_ms=self.settings.database.busy_timeout_ms)
        inherited = listen_fds(unset=True)
        self.intake = self.context.socket(zmq.ROUTER)
        self.intake.setsockopt(zmq.RCVHWM, 0)      # back-pressure reaches the senders' windows instead
        self.work = self.context.socket(zmq.ROUTER)
        self.work.setsockopt(zmq.ROUTER_MANDATORY, 1)
        for sock in (self.intake, self.work):
            sock.setsockopt(zmq.LINGER, 0)
        intake = bind(self.intake, self.settings.service.intake_endpoint, inherited.get("intake", []))
        work = bind(self.work, self.settings.service.work_endpoint, inherited.get("work", []))
        self.receiver = IntakeReceiver(self.intake)
        self.poller = zmq.Poller()
        self.poller.register(self.intake, zmq.POLLIN)
        self.poller.register(self.work, zmq.POLLIN)
        log.info("monitor listening: intake %s, work %s%s", ", ".join(intake), ", ".join(work),
                 " (sockets from systemd)" if inherited else "")

    def step(self, now: Instant) -> None:
        """Record waiting events and runner messages, expire what ran out by ``now``, hand out jobs."""
        ready = dict(self.poller.poll(self.poll_ms))
        if self.intake in ready:
            self.take_events(now)
        if self.work in ready:
            self.take_runner_messages(now)
        if self._housekept is None or now.since(self._housekept) >= HOUSEKEEPING_SECONDS:
            self._housekept = now
            self.housekeeping(now)
        self.dispatch(now)

    def teardown(self) -> None:
        for sock in (getattr(self, "intake", None), getattr(self, "work", None)):
            if sock is not None:
                sock.close(linger=0)
        if getattr(self, "db", None) is not None:
            self.db.close()

    # intake -----------------------------------------------------------------

    def take_events(self, now: Instant) -> None:
        """Record the events waiting on the intake socket, a batch per transaction."""
        frames, seqs = self.receiver.receive(self.settings.monitor.batch)
        stamp = str(now.utc)    # formatted once per batch: the hot path records thousands
        queued_before = self.counters["queued"]
        with self.db.atomic():
            for frame in frames:
                self._record(frame, stamp)
            self.catalog.flush()
        self.receiver.acknowledge(seqs)     # after the commit: senders re-send what is not acknowledged
        if self.counters["queued"] > queued_before:
            log.info("recorded %d events, %d new versions queued", len(frames),
                     self.counters["queued"] - queued_before)

    def _record(self, frame: bytes, now: str) -> None:
        try:
            message = wire.decode(frame, max_bytes=wire.MAX_INTAKE_BYTES)
            if message.type != "source":
                raise wire.WireError(f"intake takes source messages, not {message.type}")
        except wire.WireError as exc:
            self.counters["rejected"] += 1
            log.warning("rejected intake message (%d so far): %s", self.counters["rejected"], exc)
            return
        outcome = self.catalog.record(message.fields, now)
        self.counters[outcome] += 1
        if outcome == "queued":     # debug: a Debian pass queues thousands at once
            log.debug("queued %s %s from %s", message.fields["package"], message.fields["version"],
                      message.fields["fetcher"])

    # runners ----------------------------------------------------------------

    def take_runner_messages(self, now: Instant) -> None:
        """Handle every message waiting on the work socket."""
        while True:
            try:
                identity, frame = self.work.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:
                self.counters["rejected"] += 1
                log.warning("rejected a work message that was not one frame")
                continue
            self._handle_runner(identity, frame, now)

    def _handle_runner(self, identity: bytes, frame: bytes, now: Instant) -> None:
        try:
            message = wire.decode(frame)
        except wire.WireError as exc:
            self.counters["rejected"] += 1
            log.warning("rejected message from runner %r: %s", identity, exc)
            return
        handler = {"ready": self._on_ready, "heartbeat": self._on_heartbeat,
                   "result": self._on_result}.get(message.type)
        if handler is None:
            log.warning("runner %r sent a %s message, which runners do not send", identity, message.type)
            return
        handler(identity, message.fields, now)

    def _on_ready(self, identity: bytes, fields: dict, now: Instant) -> None:
        self.idle[identity] = now
        self._runner_seen(fields["runner"], now, state="idle", version=None, activity="")

    def _on_heartbeat(self, identity: bytes, fields: dict, now: Instant) -> None:
        if not queue.heartbeat(fields["job"], fields["runner"], self.policy, now.utc):
            log.info("heartbeat from %s for job %s it no longer holds", fields["runner"], fields["job"])
        self._runner_seen(fields["runner"], now, state="busy", version=fields["job"], activity=fields["activity"])

    def _on_result(self, identity: bytes, fields: dict, now: Instant) -> None:
        try:
            runs = [AnalyzerRun.from_wire(run) for run in fields["runs"]]
        except (TypeError, ValueError) as exc:
            self.counters["rejected"] += 1
            log.error("result for job %s from %s has malformed findings: %s", fields["job"], fields["runner"], exc)
            fields = dict(fields, error=f"malformed result: {exc}", transient=False)
            runs = []
        with self.db.atomic():
            outcome = queue.complete(fields["job"], fields, runs, self.policy, now.utc)
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

    # jobs -------------------------------------------------------------------

    def dispatch(self, now: Instant) -> None:
        """Hand the jobs due at ``now`` to idle runners, oldest waiting runner first."""
        while self.idle:
            identity = next(iter(self.idle))
            with self.db.atomic():
                job = queue.lease(identity.decode(errors="replace"), self.policy, now.utc)
            if job is None:
                return
            self.idle.pop(identity)
            if not self._send(identity, _job_message(job)):
                queue.release(job)
                continue
            log.info("job %s (%s %s) to %s", job.id, job.package.name, job.number, identity.decode(errors="replace"))

    def housekeeping(self, now: Instant) -> None:
        """Re-queue the jobs whose lease ran out by ``now``, forget runners long silent, report status."""
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


def _job_message(job: Version) -> bytes:
    return wire.encode("job", job=job.id, fetcher=job.package.fetcher.name, package=job.package.name,
                       version=job.number, source_url=job.source_url, sha256=job.sha256,
                       meta=json.loads(job.event)["meta"] if job.event else {})
