"""The poison pill: a release whose file names are not UTF-8, analyzed by a real runner, must not
crash the monitor; its job ends stored or failed, and an innocent submit afterwards still succeeds.

Before the wire checked results, such a tarball crashed the monitor over and over while the runner
re-sent its result, and innocent submits failed with exit 7.
"""

import io
import json
import tarfile

import pytest
import zmq
from harness import Suite, run_kiskadee, short_tmp_dir, submit, wait_until

from kiskadee.service import wire

pytestmark = pytest.mark.slow

FINISHED = ("done", "failed")
CODE = b"#include <string.h>\nvoid copy(char *s) { char b[8]; strcpy(b, s); }\n"


def poison_tarball(path) -> None:
    """A tarball with C files whose names hold bytes that are not UTF-8, and a hostile one besides."""
    with tarfile.open(path, "w:gz", encoding="utf-8", errors="surrogateescape") as archive:
        for name in ("pill-1.0/bad\udcff\udcfe.c", "pill-1.0/\udce9t\udce9.c", "pill-1.0/ok.c"):
            member = tarfile.TarInfo(name)
            member.size = len(CODE)
            archive.addfile(member, io.BytesIO(CODE))


def innocent_tarball(path) -> None:
    with tarfile.open(path, "w:gz") as archive:
        member = tarfile.TarInfo("innocent-1.0/main.c")
        member.size = len(CODE)
        archive.addfile(member, io.BytesIO(CODE))


def test_a_release_with_non_utf8_names_does_not_crash_the_monitor_and_innocent_submits_succeed():
    with short_tmp_dir() as root:
        suite = Suite(root)
        try:
            monitor = suite.start_monitor()
            suite.start_runner("r1")
            poison_tarball(root / "pill-1.0.tar.gz")
            innocent_tarball(root / "innocent-1.0.tar.gz")
            submit(suite, "pill", "1.0", root / "pill-1.0.tar.gz")
            wait_until(lambda: suite.states().get("pill 1.0") in FINISHED, 120, "the poison pill's job to end")
            submit(suite, "innocent", "1.0", root / "innocent-1.0.tar.gz")
            wait_until(lambda: suite.states().get("innocent 1.0") == "done", 120, "the innocent job")
            assert monitor.poll() is None, suite.log("monitor")
            assert "Traceback" not in suite.log("monitor")
            (error,) = suite.rows("SELECT v.error FROM version v JOIN package p ON p.id = v.package_id"
                                  " WHERE p.name = 'pill'")
            states = suite.states()
            print("\npoison pill:", states["pill 1.0"], error[0][:200])
            # Stored, or failed with the reason: never a crash loop, never re-sent forever.
            assert states["pill 1.0"] == "done" or error[0], (states, suite.log("r1"))
            assert suite.log("r1").count("sending the result again") == 0
            status = run_kiskadee("status", config=suite.config)
            assert status.returncode == 0, status.stderr
        finally:
            suite.stop()


def test_a_runners_hostile_result_fails_its_job_and_the_monitor_process_serves_on():
    """The result a runner without the unpacking checks would send: lone surrogates from non-UTF-8 names in
    the paths, a message given as an object. Played over the real ipc work socket of a monitor process."""
    with short_tmp_dir() as root:
        suite = Suite(root)
        context = zmq.Context()
        try:
            monitor = suite.start_monitor()
            innocent_tarball(root / "innocent-1.0.tar.gz")
            submit(suite, "pill", "1.0", root / "innocent-1.0.tar.gz")
            runner = context.socket(zmq.DEALER)
            runner.setsockopt(zmq.IDENTITY, b"pill-runner")
            runner.setsockopt(zmq.LINGER, 0)
            runner.connect(f"ipc://{root}/run/work.sock")
            runner.send(wire.encode("ready", runner="pill-runner"))
            assert runner.poll(10_000), suite.log("monitor")
            job = wire.decode(runner.recv()).fields
            finding = {"path": "bad\udcff\udcfe.c", "line": 2, "check_id": "buffer", "severity": "high",
                       "message": {"text": "strcpy"}}
            run = {"analyzer": "flawfinder", "tool_version": "2.0.20", "status": "ok", "duration": 0.1,
                   "error": "", "findings": [finding]}
            runner.send(json.dumps({"type": "result", "schema": 1, "runner": "pill-runner", "job": job["job"],
                                    "lease": job["lease"], "runs": [run]}).encode())
            assert runner.poll(10_000), suite.log("monitor")
            answer = wire.decode(runner.recv())
            assert answer.type == "reject" and "lone surrogate" in answer.fields["reason"]
            assert suite.states()["pill 1.0"] == "failed" and monitor.poll() is None
            suite.start_runner("r1")
            submit(suite, "innocent", "1.0", root / "innocent-1.0.tar.gz")
            wait_until(lambda: suite.states().get("innocent 1.0") == "done", 120, "the innocent job")
            assert monitor.poll() is None and "Traceback" not in suite.log("monitor")
        finally:
            context.destroy(linger=0)
            suite.stop()
