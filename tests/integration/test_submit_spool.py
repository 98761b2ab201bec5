"""``kiskadee submit`` and the spool: the real command, a real monitor and runner, real files.

A person submits a file they can read; the runner reads only the copy in
the spool, never a path an event names elsewhere.
"""

import hashlib
import os
import pwd
import stat
import subprocess
import sys

import pytest
import zmq
from harness import HELLO_TARBALL, Suite, run_kiskadee, wait_until, write_config

from kiskadee.service import wire

NOBODY = pwd.getpwnam("nobody")
HELLO_SHA256 = hashlib.sha256(HELLO_TARBALL.read_bytes()).hexdigest()


@pytest.fixture
def config(short_tmp):
    """A configuration whose spool is short_tmp/state/spool; no monitor runs."""
    return write_config(short_tmp / "k.toml", {
        "service": f'runtime_dir = "{short_tmp / "run"}"\nstate_dir = "{short_tmp / "state"}"'})


@pytest.mark.parametrize("source,reason", [
    ("/etc", "/etc is a directory: submit a tarball or zip of it"),
    ("/dev/zero", "/dev/zero is not a regular file"),
    ("/nonexistent/x.tar.gz", "cannot read /nonexistent/x.tar.gz: No such file or directory"),
    ("ftp://127.0.0.1/x.tar.gz", "not a local path, a file:// URL or an http(s) URL"),
    ("http:///x.tar.gz", "the URL names no host"),
])
def test_submit_refuses_what_is_not_a_readable_file_with_exit_4(config, short_tmp, source, reason):
    result = run_kiskadee("submit", "evil", "1.0", source, config=config, timeout=30)
    assert result.returncode == 4, result.stderr
    assert reason in result.stderr and "Traceback" not in result.stderr
    assert not list((short_tmp / "state").glob("spool/[0-9a-f]*"))       # nothing was spooled


def test_submit_refuses_a_fifo_without_blocking(config, short_tmp):
    fifo = short_tmp / "pipe.tar.gz"
    os.mkfifo(fifo)
    result = run_kiskadee("submit", "evil", "1.0", fifo, config=config, timeout=30)
    assert result.returncode == 4 and f"{fifo} is not a regular file" in result.stderr


def test_a_file_the_submitter_cannot_read_is_an_error_at_submit_time(config, short_tmp):
    """Run as nobody: root's 0600 file is refused by submit itself, not left for a runner to trip on."""
    secret = short_tmp / "secret.tar.gz"
    secret.write_bytes(HELLO_TARBALL.read_bytes())
    secret.chmod(0o600)
    short_tmp.chmod(0o755)
    config.chmod(0o644)
    (short_tmp / "run").mkdir()
    os.chown(short_tmp / "run", NOBODY.pw_uid, NOBODY.pw_gid)      # nobody's own runtime directory
    result = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-m", "kiskadee",
         "-c", str(config), "submit", "hello", "2.10", str(secret)],
        capture_output=True, text=True, timeout=30, env=dict(os.environ, HOME="/"))
    assert result.returncode == 4, result.stderr
    assert f"cannot read {secret}: Permission denied" in result.stderr


def test_a_file_over_the_size_limit_is_refused_at_submit_time(short_tmp):
    config = write_config(short_tmp / "k.toml", {
        "service": f'runtime_dir = "{short_tmp / "run"}"\nstate_dir = "{short_tmp / "state"}"',
        "analysis": "max_download_bytes = 1000"})
    result = run_kiskadee("submit", "hello", "2.10", HELLO_TARBALL, config=config, timeout=30)
    assert result.returncode == 4 and "is larger than the 1000-byte limit" in result.stderr
    assert not list((short_tmp / "state" / "spool").iterdir())           # the partial copy is gone


def push_source(suite, package, source_url):
    """A source event straight onto the intake, as any member of the group could send it."""
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 10_000)
    sock.connect(f"ipc://{suite.root / 'run' / 'intake.sock'}")
    sock.send(wire.encode("source", fetcher="local", package=package, version="1.0", source_url=str(source_url)))
    sock.close()
    context.term()


@pytest.mark.slow
def test_the_runner_reads_submitted_files_from_the_spool_only(short_tmp):
    suite = Suite(short_tmp)
    try:
        suite.start_monitor()
        suite.start_runner("r1")
        result = run_kiskadee("submit", "hello", "2.10", HELLO_TARBALL, config=suite.config, timeout=60)
        assert result.returncode == 0, result.stderr

        entry = short_tmp / "state" / "spool" / HELLO_SHA256
        assert stat.S_IMODE(entry.stat().st_mode) == 0o640 and entry.read_bytes() == HELLO_TARBALL.read_bytes()
        assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700          # made by submit, outside systemd
        push_source(suite, "passwd", "/etc/passwd")                        # a path outside the spool
        push_source(suite, "etc", "/etc")
        forged = entry.with_name("0" * 64)                                 # in the spool, wrong content
        forged.write_bytes(HELLO_TARBALL.read_bytes())
        push_source(suite, "forged", forged)
        wait_until(lambda: suite.states() == {"hello 2.10": "done", "passwd 1.0": "failed", "etc 1.0": "failed",
                                              "forged 1.0": "failed"}, 90, "all four handled")
        assert suite.rows("SELECT source_url, sha256 FROM version WHERE state = 'done'") == [
            (entry.as_uri(), HELLO_SHA256)]
        assert suite.rows("SELECT COUNT(*) FROM finding") == [(334,)]
        errors = dict(suite.rows("SELECT p.name, v.error FROM version v JOIN package p ON p.id = v.package_id "
                                 "WHERE v.state = 'failed'"))
        assert "/etc/passwd: no such file in the spool" in errors["passwd"]
        assert "/etc: no such file in the spool" in errors["etc"]
        assert "its content changed after it was submitted" in errors["forged"]
        assert "Traceback" not in suite.log("r1")
    finally:
        suite.stop()
