"""``kiskadee runner``: asks the monitor for a job, analyzes it, sends the result back.

A runner is stateless. While idle it re-announces itself every few seconds
(so a restarted monitor learns of it); while analyzing it sends heartbeats;
it sends its result until the monitor acknowledges it, or rejects it for good
(``reject``: the result is malformed, or this runner no longer holds the job's
lease; a job whose lease is gone is abandoned at once). The first SIGTERM
lets the current job finish, the second aborts it (the monitor re-queues it
when the lease runs out).
"""

import logging
import os
import socket
import threading
import traceback
from typing import Optional

import zmq

from kiskadee.analysis.analyzers import make_analyzers
from kiskadee.analysis.pipeline import analyze_source
from kiskadee.analysis.sandbox import make_sandbox
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.config import Config
from kiskadee.core.events import SourceEvent
from kiskadee.errors import ConfigError, SourceError, TransientError, TransientSourceError, UnresolvedSource
from kiskadee.service import curve, wire
from kiskadee.service.loop import Instant, Service
from kiskadee.sources import make_fetcher

log = logging.getLogger(__name__)

POLL_MS = 500
READY_SECONDS = 5.0         # an idle runner re-announces itself this often
ACK_SECONDS = 5.0           # a result is sent again if not acknowledged within this
RELEASE_LINGER_MS = 1000    # at exit, how long a handed-back job's 'release' may take to leave


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class RunnerService(Service):
    name = "runner"

    def __init__(self, settings: Config, runner_name: str = "", context: Optional[zmq.Context] = None):
        super().__init__()
        self.settings = settings
        self.runner_name = runner_name or default_name()
        self.context = context or zmq.Context.instance()
        self.activity = ""
        self.poll_ms = POLL_MS          # how long a step waits; tests drive steps faster
        self.job: Optional[dict] = None     # the job in hand, from its arrival until its result is acknowledged
        self._worker: Optional[threading.Thread] = None
        self._outcome: dict = {}
        self._result: Optional[bytes] = None    # the result message, once the worker is done
        self._announced: Optional[Instant] = None   # None: announce at the next step
        self._beat: Optional[Instant] = None
        self._sent: Optional[Instant] = None
        self._sandbox_down = False
        self._abandoned = False     # the monitor said this runner no longer holds the job's lease
        self.handshake: Optional[curve.HandshakeWatch] = None   # on a keyed tcp:// endpoint

    def setup(self) -> None:
        analysis = self.settings.analysis
        self.analyzers = make_analyzers(analysis.analyzers, self.settings.analyzers)
        self.sandbox = make_sandbox(self.settings.sandbox.backend, self.settings.sandbox)
        self.limits = Limits(analysis.timeout, analysis.memory_limit_mb, analysis.max_output_bytes)
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, self.runner_name.encode())
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, self.settings.limits.work_message_bytes)
        curve.secure_client(self.sock, self.settings.service.work_endpoint, self.settings.service, "runner")
        self.handshake = curve.watch_handshake(self.sock, self.settings.service.work_endpoint,
                                               self.settings.service, "runner")
        self.sock.connect(self.settings.service.work_endpoint)
        log.info("runner %s connected to %s", self.runner_name, self.settings.service.work_endpoint)

    def teardown(self) -> None:
        if self.handshake is not None:
            self.handshake.close()
        if getattr(self, "sock", None) is not None:
            self.sock.close(linger=RELEASE_LINGER_MS)     # time for a 'release' to leave

    def should_stop(self) -> bool:
        # The first stop request lets the job in hand finish and its result reach the monitor.
        return self.stop_requests > 0 and self.job is None

    def step(self, now: Instant) -> None:
        """Wait for a job, watch the one being analyzed, or deliver its result, as of ``now``."""
        if self.handshake is not None:
            self.handshake.check()      # a refused key stops the runner: no job would ever come
        if self.job is None:
            self._wait_for_job(now)
        elif self._result is None:
            self._watch_worker(now)
        else:
            self._await_acknowledgement(now)

    def _wait_for_job(self, now: Instant) -> None:
        """Announce this runner every READY_SECONDS; start on the job the monitor sends."""
        if self._announced is None or now.since(self._announced) >= READY_SECONDS:
            self._announced = now
            if self._sandbox_ready():
                self.sock.send(wire.encode("ready", runner=self.runner_name))
                self.notifier.status("idle, waiting for a job")
        if not self.sock.poll(self.poll_ms):
            return
        message = self._receive()
        if message is not None and message.type == "job":
            self.work_on(message.fields, now)

    def _sandbox_ready(self) -> bool:
        """False while the sandbox cannot run analyzers (container engine down): no job is taken then."""
        try:
            self.sandbox.check()
        except TransientError as exc:
            if not self._sandbox_down:
                log.warning("taking no jobs until the sandbox is back: %s", exc)
            self._sandbox_down = True
            self.notifier.status(f"waiting for the sandbox: {exc}")
            return False
        if self._sandbox_down:
            log.info("the sandbox is back; taking jobs again")
        self._sandbox_down = False
        return True

    def _receive(self) -> Optional[wire.Message]:
        try:
            limits = self.settings.limits
            return wire.decode(self.sock.recv(), limits.work_message_bytes, limits)
        except wire.WireError as exc:
            log.warning("ignoring a malformed message from the monitor: %s", exc)
            return None

    # one job ----------------------------------------------------------------

    def work_on(self, job: dict, now: Instant) -> None:
        """Start analyzing one job in a worker thread; the next steps watch it and deliver its result."""
        log.info("job %s: %s %s from %s", job["job"], job["package"], job["version"], job["fetcher"])
        self.job, self._outcome, self._beat = job, {}, now
        self._worker = threading.Thread(target=self._analyze, args=(job, self._outcome), daemon=True)
        self._worker.start()

    def _watch_worker(self, now: Instant) -> None:
        """Heartbeat while the worker runs; a second stop request aborts it, and so does a job
        whose lease the monitor says this runner no longer holds (its result would be refused)."""
        self._worker.join(self.poll_ms / 1000)
        if self.stop_requests >= 2:
            self.sandbox.abort()
            # Handed back, the job is queued again at once and the attempt is not counted.
            self.sock.send(wire.encode("release", runner=self.runner_name, job=self.job["job"],
                                       lease=self.job["lease"]))
            log.warning("job %s aborted and handed back to the monitor", self.job["job"])
            self._drop_job()
            return
        if not self._abandoned and self._rejection() is not None:
            self._abandoned = True
        if self._worker.is_alive():
            if self._abandoned:
                self.sandbox.abort()    # each analyzer the worker starts still: it ends sooner
            elif now.since(self._beat) >= self.settings.runner.heartbeat_seconds:
                self._beat = now
                self.sock.send(wire.encode("heartbeat", runner=self.runner_name, job=self.job["job"],
                                           lease=self.job["lease"], activity=self.activity))
            return
        if self._abandoned:
            self._drop_job()            # the worker is done: the next job may use the sandbox
            return
        self._result = self._result_message()
        self._send_result(now)

    def _result_message(self) -> bytes:
        """The result to send; an error result if the analysis's outcome does not fit the wire."""
        try:
            return wire.encode("result", runner=self.runner_name, job=self.job["job"], lease=self.job["lease"],
                               **self._outcome["result"])
        except wire.WireError as exc:   # a bug in an analyzer's report reading: fail this job, not the runner
            log.error("job %s: the result cannot be sent: %s", self.job["job"], exc)
            return wire.encode("result", runner=self.runner_name, job=self.job["job"], lease=self.job["lease"],
                               runs=[], error=f"the runner could not send its result: {exc}", transient=False)

    def _rejection(self) -> Optional[str]:
        """Why the monitor rejected this job's heartbeat or result, if it did; other messages are dropped."""
        while self.sock.poll(0):
            message = self._receive()
            if message is not None and message.type == "reject" and message.fields["job"] == self.job["job"]:
                log.warning("job %s: the monitor rejected it and will not take its result: %s",
                            self.job["job"], message.fields["reason"])
                return message.fields["reason"]
        return None

    def _await_acknowledgement(self, now: Instant) -> None:
        """Send the result again every ACK_SECONDS until the monitor acknowledges it (or a second stop)."""
        if self.stop_requests >= 2:
            log.warning("job %s: stopping before the monitor acknowledged its result", self.job["job"])
            self._finish_job()
            return
        if self.sock.poll(self.poll_ms):
            message = self._receive()
            # An answer about an earlier job's re-sent result is not this one's.
            if message is not None and message.type in ("ack", "reject") and message.fields["job"] == self.job["job"]:
                if message.type == "reject":
                    log.warning("job %s: the monitor rejected its result for good: %s", self.job["job"],
                                message.fields["reason"])
                self._finish_job()
                return
        if now.since(self._sent) >= ACK_SECONDS:
            log.warning("no acknowledgement from the monitor yet; sending the result again")
            self._send_result(now)

    def _send_result(self, now: Instant) -> None:
        self.sock.send(self._result)
        self._sent = now

    def _finish_job(self) -> None:
        """The result is delivered: ask for the next job at once; re-raise the worker's crash, if any."""
        crash = self._outcome.get("crash")
        self._drop_job()
        if crash is not None:
            raise crash

    def _drop_job(self) -> None:
        self.job, self._worker, self._outcome, self._result = None, None, {}, None
        self._announced, self._abandoned = None, False

    def _analyze(self, job: dict, outcome: dict) -> None:
        """The worker thread: fetch, unpack, analyze; never raises."""
        event = SourceEvent(job["fetcher"], job["package"], job["version"], job["source_url"],
                            job["sha256"], job["meta"])
        try:
            outcome["result"] = self._analyze_event(event)
        except (TransientSourceError, TransientError) as exc:     # the sandbox's engine gone, among others
            log.warning("job %s goes back to the queue: %s", job["job"], exc)
            outcome["result"] = {"runs": [], "error": str(exc), "transient": True}
        except UnresolvedSource as exc:     # recorded as 'unresolved' with the reason
            outcome["result"] = {"runs": [], "error": str(exc), "transient": False, "unresolved": True}
        except (SourceError, ConfigError) as exc:
            outcome["result"] = {"runs": [], "error": str(exc), "transient": False}
        except Exception as exc:  # a bug in kiskadee: report it, then crash so systemd restarts us
            log.error("job %s crashed:\n%s", job["job"], traceback.format_exc())
            outcome["result"] = {"runs": [], "error": f"runner crashed: {exc!r}", "transient": True}
            outcome["crash"] = exc

    def _analyze_event(self, event: SourceEvent) -> dict:
        fetcher = make_fetcher(event.fetcher, self.settings)
        analyzed = analyze_source(event, fetcher, self.analyzers, self.sandbox, self.limits,
                                  self.settings.analysis, self._set_activity)
        return {"runs": [run.to_wire() for run in analyzed.runs], "source_url": analyzed.url,
                "sha256": analyzed.sha256}

    def _set_activity(self, text: str) -> None:
        self.activity = text
        self.notifier.status(text)
