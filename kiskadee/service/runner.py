"""``kiskadee runner``: asks the monitor for a job, analyzes it, sends the result back.

A runner is stateless. While idle it re-announces itself every few seconds
(so a restarted monitor learns of it); while analyzing it sends heartbeats;
it sends its result until the monitor acknowledges it. The first SIGTERM
lets the current job finish, the second aborts it (the monitor re-queues it
when the lease runs out).
"""

import logging
import os
import socket
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Optional

import zmq

from kiskadee.analysis.analyzers import make_analyzers
from kiskadee.analysis.pipeline import analyze_tree
from kiskadee.analysis.sandbox import make_sandbox
from kiskadee.analysis.sandbox.base import Limits
from kiskadee.config import Config
from kiskadee.core.events import SourceEvent
from kiskadee.errors import ConfigError, SourceError, TransientError, TransientSourceError, UnresolvedSource
from kiskadee.service import wire
from kiskadee.service.loop import Service
from kiskadee.sources import make_fetcher
from kiskadee.sources.prepare import unpack_source

log = logging.getLogger(__name__)

POLL_MS = 500
READY_SECONDS = 5.0         # an idle runner re-announces itself this often
ACK_SECONDS = 5.0           # a result is sent again if not acknowledged within this


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
        self._announced = 0.0
        self._sandbox_down = False

    def setup(self) -> None:
        analysis = self.settings.analysis
        self.analyzers = make_analyzers(analysis.analyzers, self.settings.analyzers)
        self.sandbox = make_sandbox(self.settings.sandbox.backend, self.settings.sandbox)
        self.limits = Limits(analysis.timeout, analysis.memory_limit_mb, analysis.max_output_bytes)
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, self.runner_name.encode())
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(self.settings.service.work_endpoint)
        log.info("runner %s connected to %s", self.runner_name, self.settings.service.work_endpoint)

    def teardown(self) -> None:
        if getattr(self, "sock", None) is not None:
            self.sock.close(linger=0)

    def step(self) -> None:
        if time.monotonic() - self._announced >= READY_SECONDS:
            self._announced = time.monotonic()
            if self._sandbox_ready():
                self.sock.send(wire.encode("ready", runner=self.runner_name))
                self.notifier.status("idle, waiting for a job")
        if not self.sock.poll(POLL_MS):
            return
        message = self._receive()
        if message is not None and message.type == "job":
            self.work_on(message.fields)
            self._announced = 0.0           # ask for the next job at once

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
            return wire.decode(self.sock.recv())
        except wire.WireError as exc:
            log.warning("ignoring a malformed message from the monitor: %s", exc)
            return None

    # one job ----------------------------------------------------------------

    def work_on(self, job: dict) -> None:
        """Analyze one job in a worker thread, with heartbeats; then deliver the result."""
        log.info("job %s: %s %s from %s", job["job"], job["package"], job["version"], job["fetcher"])
        outcome: dict = {}
        worker = threading.Thread(target=self._analyze, args=(job, outcome), daemon=True)
        worker.start()
        if not self._wait_for(worker, job):
            log.warning("job %s aborted; the monitor will hand it out again", job["job"])
            return
        self._deliver(wire.encode("result", runner=self.runner_name, job=job["job"], **outcome["result"]))
        if "crash" in outcome:
            raise outcome["crash"]

    def _wait_for(self, worker: threading.Thread, job: dict) -> bool:
        """Heartbeat while the worker runs; False if a second stop request aborted it."""
        last_beat = time.monotonic()
        while worker.is_alive():
            worker.join(POLL_MS / 1000)
            self.notifier.watchdog()
            if self.stop_requests >= 2:
                self.sandbox.abort()
                return False
            if time.monotonic() - last_beat >= self.settings.runner.heartbeat_seconds:
                last_beat = time.monotonic()
                self.sock.send(wire.encode("heartbeat", runner=self.runner_name, job=job["job"],
                                           activity=self.activity))
        return True

    def _deliver(self, result: bytes) -> None:
        """Send the result until the monitor acknowledges it (or a second stop request)."""
        while self.stop_requests < 2:
            self.sock.send(result)
            deadline = time.monotonic() + ACK_SECONDS
            while time.monotonic() < deadline:
                self.notifier.watchdog()
                if self.sock.poll(POLL_MS):
                    message = self._receive()
                    if message is not None and message.type == "ack":
                        return
            log.warning("no acknowledgement from the monitor yet; sending the result again")

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
        analysis = self.settings.analysis
        work_root = analysis.work_dir or None
        with tempfile.TemporaryDirectory(prefix="kiskadee-", dir=work_root) as work:
            self._set_activity(f"fetching {event.package} {event.version}")
            download_dir = Path(work) / "download"
            download_dir.mkdir()
            source = make_fetcher(event.fetcher, self.settings).download(event, download_dir)
            root = source.path if source.path.is_dir() else unpack_source(source.path, Path(work), analysis)
            progress = lambda name: self._set_activity(f"analyzing {event.package} {event.version} with {name}")
            runs = analyze_tree(root, self.analyzers, self.sandbox, self.limits, progress, work)
        return {"runs": [run.to_wire() for run in runs], "source_url": source.url, "sha256": source.sha256}

    def _set_activity(self, text: str) -> None:
        self.activity = text
        self.notifier.status(text)
