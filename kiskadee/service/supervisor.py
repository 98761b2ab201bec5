"""``kiskadee run``: the whole service under one process, for machines without systemd.

The supervisor starts the monitor, then (once the monitor's intake socket
exists) the runners and the polling fetchers, each as a ``python -m kiskadee``
child in its own session, so a Ctrl-C on the terminal reaches the supervisor
alone and it decides the order of the stop:

- a monitor or runner that exits unexpectedly is restarted after a backoff
  (1 s, doubling up to 60 s, back to 1 s once a child stayed up 60 s);
- a fetcher runs one polling pass at start and then every ``interval``
  seconds, never two passes of one fetcher at once; a failed pass is logged
  and the next one comes at the next interval;
- the first SIGINT, SIGTERM or SIGHUP sends SIGTERM to the runners and
  fetchers and waits for them (a runner finishes its current analysis), then
  stops the monitor; a second signal forwards a second SIGTERM (abort) and
  kills what is still alive ``ABORT_GRACE`` seconds later; a third kills now.

Progress, read from the database, is one status line redrawn every second on
a terminal, else a plain line each time the counts change. The children's
stderr comes through the supervisor, line by line, so that their log lines
and the status line never overwrite each other.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, List, Optional, Sequence, Tuple

from kiskadee.config import Config
from kiskadee.errors import EXIT_OK
from kiskadee.service.loop import Instant, read_clock
from kiskadee.service.progress import Progress

log = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0         # seconds before the first restart of a child that exited
BACKOFF_MAX = 60.0
STABLE_AFTER = 60.0         # a child up this long is restarted with the first backoff again
READY_TIMEOUT = 30.0        # how long the runners and fetchers wait for the intake socket
MONITOR_GRACE = 30.0        # the monitor's time to stop once the runners are gone
ABORT_GRACE = 30.0          # after the second signal, children still alive this long are killed
TICK = 0.2                  # seconds between two looks at the children
RELAY_DRAIN = 1.0           # how long a reaped child's last lines of output are waited for
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def kiskadee_command() -> List[str]:
    """How a child runs kiskadee: the same interpreter, the same package."""
    return [sys.executable, "-m", "kiskadee"]


def common_args(config_path: Optional[str], verbosity: int) -> List[str]:
    """The options every child gets: the configuration file and the verbosity."""
    args = ["-c", str(config_path)] if config_path else []
    return args + (["-q"] if verbosity < 0 else ["-v"] * verbosity)


def describe_exit(code: int) -> str:
    """A child's return code for people: 'exit status 1' or 'killed by SIGKILL'."""
    if code >= 0:
        return f"exit status {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


class Child:
    """A child process: kept running (monitor, runner) or started on a schedule (fetch)."""

    def __init__(self, name: str, argv: Sequence[str], interval: Optional[float] = None,
                 relay: Optional[Callable[[str], None]] = None):
        """``relay`` is given each line the child writes to stderr; without it stderr is inherited."""
        self.name, self.argv, self.interval, self.relay = name, list(argv), interval, relay
        self.proc: Optional[subprocess.Popen] = None
        self.relaying: Optional[threading.Thread] = None
        self.started = 0.0
        self.due = 0.0                  # monotonic time of the next start
        self.backoff = BACKOFF_FIRST

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, now: float) -> None:
        # A fetch pass's summary on stdout would repeat every interval; the monitor logs what it queues.
        stdout = subprocess.DEVNULL if self.interval else None
        stderr = subprocess.PIPE if self.relay else None
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                     start_new_session=True)
        if self.relay:
            self.relaying = threading.Thread(target=_relay_lines, args=(self.proc.stderr, self.relay),
                                             name=f"relay {self.name}", daemon=True)
            self.relaying.start()
        self.started = now
        log.log(logging.DEBUG if self.interval else logging.INFO, "started %s (pid %d)", self.name, self.proc.pid)

    def reap(self) -> Optional[Tuple[int, int]]:
        """(pid, return code) once the process has ended, else None."""
        if self.proc is None or self.proc.poll() is None:
            return None
        pid, code = self.proc.pid, self.proc.returncode
        self.proc = None
        if self.relaying is not None:       # its last lines first; a grandchild may hold the pipe longer
            self.relaying.join(RELAY_DRAIN)
            self.relaying = None
        return pid, code

    def signal(self, signum: int) -> None:
        if self.alive:
            log.debug("sending %s to %s (pid %d)", signal.Signals(signum).name, self.name, self.proc.pid)
            self.proc.send_signal(signum)


def _relay_lines(pipe, relay: Callable[[str], None]) -> None:
    """Hand each line of a child's stderr to ``relay`` until the child (and what it started) closed it."""
    with pipe:
        for line in iter(pipe.readline, b""):
            relay(line.decode(errors="replace"))


def polling_fetchers(settings: Config, command: List[str],
                     relay: Optional[Callable[[str], None]] = None) -> List[Child]:
    """A scheduled ``fetch`` child for each polling fetcher the configuration turns on."""
    fetchers = settings.fetchers
    children = []
    if fetchers.debian.enabled:
        children.append(Child("fetch debian", command + ["fetch", "debian"], fetchers.debian.interval, relay))
    if fetchers.directory.path:
        children.append(Child("fetch directory", command + ["fetch", "directory"], fetchers.directory.interval,
                              relay))
    if fetchers.anitya.api_url:
        children.append(Child("fetch anitya", command + ["fetch", "anitya"], fetchers.anitya.interval, relay))
    return children


class Supervisor:
    """The children of ``kiskadee run`` and the loop that keeps them going."""

    def __init__(self, settings: Config, config_path: Optional[str], verbosity: int,
                 program: Optional[Sequence[str]] = None):
        """``program`` is what every child runs, before its subcommand: ``python -m kiskadee`` unless given."""
        command = list(program or kiskadee_command()) + common_args(config_path, verbosity)
        self.progress = Progress(settings, verbosity)
        relay = self.progress.relay
        self.monitor = Child("monitor", command + ["monitor"], relay=relay)
        count = settings.runner.runners()
        self.runners = [Child(f"runner-{i}", command + ["runner", "--name", f"runner-{i}"], relay=relay)
                        for i in range(count)]
        self.fetchers = polling_fetchers(settings, command, relay)
        endpoint = settings.service.intake_endpoint
        self.intake = endpoint[len("ipc://"):] if endpoint.startswith("ipc://") else None
        self.intake_before = _stat(self.intake)     # a stale socket file does not count
        self.ready_by: Optional[float] = None     # set at the first step
        self.signals = 0                # incremented by the signal handler, nothing else
        self.handled = 0
        self.ready = False

    def on_signal(self, signum, frame) -> None:
        self.signals += 1

    def serve(self) -> int:
        """Run until a stop signal, then stop everything in order; returns the exit code."""
        while self.signals == 0:
            self.step(read_clock())
            time.sleep(TICK)
        self._next_signal()
        self.progress.say("stopping: the runners finish their current analysis; interrupt again to abort")
        workers = self.runners + self.fetchers
        for child in workers:
            child.signal(signal.SIGTERM)
        self._wait_for(workers, deadline=None, keep_monitor=True)
        log.info("runners and fetchers stopped; stopping the monitor")
        self.monitor.signal(signal.SIGTERM)
        self._wait_for([self.monitor], deadline=read_clock().monotonic + MONITOR_GRACE, keep_monitor=False)
        self.progress.finish()
        self.progress.say("stopped")
        return EXIT_OK

    def step(self, now: Instant) -> None:
        """One look at the children at ``now``: restart, start or schedule what is due."""
        seconds = now.monotonic     # children's start times and backoffs are durations, nothing stored
        if self.ready_by is None:
            self.ready_by = seconds + READY_TIMEOUT
        self._keep_up(self.monitor, seconds)
        if self.ready or self._check_ready(seconds):
            for runner in self.runners:
                self._keep_up(runner, seconds)
            for fetcher in self.fetchers:
                self._schedule(fetcher, seconds)
        self.progress.update(seconds)

    def _check_ready(self, now: float) -> bool:
        """True once the monitor's intake socket appeared (or after READY_TIMEOUT regardless)."""
        stamp = _stat(self.intake)
        if self.intake is None or (stamp is not None and stamp != self.intake_before):
            self.ready = True
        elif now >= self.ready_by:
            log.warning("the monitor's intake socket %s did not appear within %.0f s;"
                        " starting the runners and fetchers anyway", self.intake, READY_TIMEOUT)
            self.ready = True
        return self.ready

    def _keep_up(self, child: Child, now: float) -> None:
        """Restart ``child`` after its backoff when it exited."""
        ended = child.reap()
        if ended is not None:
            uptime = now - child.started
            if uptime >= STABLE_AFTER:
                child.backoff = BACKOFF_FIRST
            child.due = now + child.backoff
            log.warning("%s (pid %d) exited unexpectedly (%s) after %.0f s; restarting in %.0f s",
                        child.name, ended[0], describe_exit(ended[1]), uptime, child.backoff)
            child.backoff = min(child.backoff * 2, BACKOFF_MAX)
        if child.proc is None and now >= child.due:
            child.start(now)

    def _schedule(self, fetcher: Child, now: float) -> None:
        """Start the fetcher's next polling pass when it is due and the previous one is over."""
        ended = fetcher.reap()
        if ended is not None and ended[1] != 0:
            log.warning("%s (pid %d) failed (%s); next pass in %.0f s", fetcher.name, ended[0],
                        describe_exit(ended[1]), max(0.0, fetcher.due - now))
        elif ended is not None:
            log.debug("%s (pid %d) finished", fetcher.name, ended[0])
        if fetcher.proc is None and now >= fetcher.due:
            fetcher.start(now)
            fetcher.due = now + fetcher.interval

    def _wait_for(self, children: List[Child], deadline: Optional[float], keep_monitor: bool) -> None:
        """Wait until ``children`` have exited; later signals escalate, the deadline kills."""
        while any(child.alive for child in children):
            now = read_clock().monotonic
            if self.signals > self.handled:
                deadline = self._escalate(children, now, deadline)
            if deadline is not None and now >= deadline:
                self._kill(children)
                deadline = None         # SIGKILL once; the next turns reap them
            if keep_monitor and self.handled < 2:
                self._keep_up(self.monitor, now)
            for child in children:
                ended = child.reap()
                if ended is not None:
                    log.info("%s (pid %d) stopped (%s)", child.name, ended[0], describe_exit(ended[1]))
            self.progress.update(now)
            time.sleep(TICK)

    def _escalate(self, children: List[Child], now: float, deadline: Optional[float]) -> Optional[float]:
        """A further stop signal: forward SIGTERM again (abort), or kill at the third."""
        if self._next_signal() >= 3:
            return now                  # kill at once
        self.progress.say(f"aborting: children still running in {ABORT_GRACE:.0f} s are killed")
        for child in children:
            child.signal(signal.SIGTERM)
        return min(deadline, now + ABORT_GRACE) if deadline is not None else now + ABORT_GRACE

    def _next_signal(self) -> int:
        """Count one more stop signal as handled; returns how many have been so far."""
        self.handled += 1
        return self.handled

    def _kill(self, children: List[Child]) -> None:
        for child in children:
            if child.alive:
                log.warning("%s (pid %d) is still running; killing it", child.name, child.proc.pid)
                child.signal(signal.SIGKILL)

    def kill_all(self) -> None:
        """Kill and reap every child still running: the last resort when the loop itself failed."""
        for child in [self.monitor] + self.runners + self.fetchers:
            if child.alive:
                child.signal(signal.SIGKILL)
                child.proc.wait()


def _stat(path: Optional[str]) -> Optional[Tuple[int, int, int]]:
    """What identifies the file at ``path`` (inode and times), or None when it is missing."""
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_ctime_ns


def run(settings: Config, config_path: Optional[str], verbosity: int) -> int:
    """``kiskadee run``: supervise the monitor, the runners and the fetchers until stopped."""
    supervisor = Supervisor(settings, config_path, verbosity)
    previous = {signum: signal.signal(signum, supervisor.on_signal) for signum in STOP_SIGNALS}
    handlers = logging.getLogger().handlers
    for handler in handlers:        # the supervisor's own log lines clear the status line too
        handler.addFilter(supervisor.progress)
    try:
        return supervisor.serve()
    finally:
        for handler in handlers:
            handler.removeFilter(supervisor.progress)
        supervisor.kill_all()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
