"""`kiskadee retry`, `waive` and `analyze` write the database safely while a busy monitor writes it too.

A real monitor and runner work through a steady stream of events (tiny
tarballs served over HTTP, half of them missing so they fail fast and give
`retry` something to re-queue) while the three commands loop against the same
SQLite file. A command that read before it wrote, in a deferred transaction,
ended in a "database is locked" traceback; every run must now exit 0 (or 5
with a message, never a traceback), every analysis `analyze` made must be
stored, and the monitor must keep serving.
"""

import io
import itertools
import tarfile
import threading

import pytest
from harness import Suite, run_kiskadee, wait_until

from kiskadee import config
from kiskadee.core.events import SourceEvent
from kiskadee.service.intake import IntakeSender

TINY_C = b"#include <string.h>\nvoid copy(char *d, const char *s) { strcpy(d, s); }\n"
RUNS = 10       # of each command


def tiny_tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        member = tarfile.TarInfo("tiny-1.0/tiny.c")
        member.size = len(TINY_C)
        archive.addfile(member, io.BytesIO(TINY_C))
    return buffer.getvalue()


@pytest.fixture
def busy(short_tmp, backends):
    """A monitor and a runner, a tiny package analyzed, and a thread sending events until the test ends."""
    backends.add("/tiny-1.0.tar.gz", tiny_tarball())
    suite = Suite(short_tmp)
    suite.start_monitor()
    suite.start_runner("r1")
    settings = config.load(str(suite.config))
    good, missing = backends.url + "/tiny-1.0.tar.gz", backends.url + "/gone.tar.gz"
    with IntakeSender(settings.service.intake_endpoint, service=settings.service) as intake:
        intake.send(SourceEvent("local", "tiny", "1.0", source_url=good))
    wait_until(lambda: suite.rows("SELECT fingerprint FROM finding"), 60, "tiny 1.0 analyzed")
    stop = threading.Event()

    def stream():
        with IntakeSender(settings.service.intake_endpoint, service=settings.service) as intake:
            for n in itertools.count(1):
                if stop.is_set():
                    return
                for package in range(40):
                    url = good if (n + package) % 4 == 0 else missing
                    intake.send(SourceEvent("local", f"load{package}", f"{n}.0", source_url=url))
                intake.flush(10)
                stop.wait(0.05)

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    yield suite
    stop.set()
    sender.join(20)
    suite.stop()


def loop(suite, results, command_of):
    """A thread running ``command_of(i)`` RUNS times, keeping each CompletedProcess in ``results``."""
    def work():
        for i in range(RUNS):
            results.append(run_kiskadee(*command_of(i), config=suite.config, timeout=120))
    return threading.Thread(target=work)


def refused_busy(run) -> bool:
    """Exit 5 saying the database stayed busy: the documented answer when the lock never came."""
    return run.returncode == 5 and "busy" in run.stderr


@pytest.mark.slow
def test_retry_waive_and_analyze_loop_safely_against_a_busy_monitor(busy, tmp_path):
    (fingerprint,) = busy.rows("SELECT fingerprint FROM finding LIMIT 1")[0]
    tree = tmp_path / "tiny-1.0"
    tree.mkdir()
    (tree / "tiny.c").write_bytes(TINY_C)
    wait_until(lambda: busy.rows("SELECT 1 FROM version WHERE state = 'failed' LIMIT 1"), 30,
               "a failed version for retry to re-queue")
    results = {"retry": [], "waive": [], "analyze": []}
    commands = {
        "retry": lambda i: ("retry", "--fetcher", "local"),
        "waive": lambda i: ("waive", fingerprint, "--as", ("false-positive", "bug")[i % 2], "--package", "tiny"),
        "analyze": lambda i: ("-q", "analyze", "--name", f"mine{i}", "--version", "1.0", tree),
    }
    threads = [loop(busy, results[name], command) for name, command in commands.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert {name: len(runs) for name, runs in results.items()} == dict.fromkeys(commands, RUNS)
    failed = [f"{name} exited {run.returncode}: {run.stderr.strip().splitlines()[-1:]}"
              for name, runs in results.items() for run in runs
              if "Traceback" in run.stderr or not (run.returncode == 0 or refused_busy(run))]
    assert not failed, "\n".join(failed)
    stored = busy.rows("SELECT p.name, v.state, COUNT(a.id) FROM package p JOIN version v ON v.package_id = p.id"
                       " JOIN analysis a ON a.version_id = v.id WHERE p.name LIKE 'mine%' GROUP BY v.id")
    assert sorted(stored) == sorted((f"mine{i}", "done", 1) for i in range(RUNS))
    load = "package_id IN (SELECT id FROM package WHERE name LIKE 'load%')"
    assert busy.rows(f"SELECT COUNT(*) FROM version WHERE {load}")[0][0] >= 400, "the monitor was under load"
    assert busy.rows("SELECT COUNT(*) FROM version WHERE state = 'done' AND package_id IN"
                     " (SELECT id FROM package WHERE name LIKE 'load%')")[0][0] > 0, "the runner kept working"
    assert busy.processes["monitor"].poll() is None, busy.log("monitor")
    assert "database is locked" not in busy.log("monitor")
