"""``kiskadee run`` (kiskadee.service.supervisor) with its real children: monitor, runners, fetchers."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest
from harness import HELLO_TARBALL, wait_until, write_config


def processes_mentioning(text: str) -> Dict[int, List[str]]:
    """pid -> command line of every live process whose command line contains ``text``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
        except OSError:
            continue
        if any(text in arg for arg in argv):
            found[int(entry.name)] = argv
    return found


def runner_pid(config: Path, name: str):
    """The pid of the child running ``runner --name NAME`` under this configuration, or None."""
    for pid, argv in processes_mentioning(str(config)).items():
        if "runner" in argv and argv[argv.index("runner"):][1:3] == ["--name", name]:
            return pid
    return None


def kill_leftovers(config: Path, supervisor: subprocess.Popen) -> None:
    if supervisor.poll() is None:
        supervisor.kill()
        supervisor.wait()
    for pid in processes_mentioning(str(config)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def supervisor_config(base: Path, **extra: str) -> Path:
    """A kiskadee.toml under ``base`` for two runners and the directory fetcher; ``extra`` replaces sections."""
    sections = {
        "service": f'runtime_dir = "{base / "run"}"\nstate_dir = "{base / "state"}"',
        "database": f'path = "{base / "kiskadee.db"}"',
        "runner": "count = 2",
        "fetchers.debian": "enabled = false",
        "fetchers.directory": f'path = "{base / "incoming"}"\ninterval = 1',
    }
    sections.update(extra)
    (base / "incoming").mkdir(exist_ok=True)
    return write_config(base / "kiskadee.toml", sections)


def hello_state(database: Path):
    """(state, analyses) of hello 2.10, or None while the database or the row is missing."""
    if not database.exists():
        return None
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(
                "SELECT v.state, COUNT(a.id) FROM version v JOIN package p ON p.id = v.package_id"
                " LEFT JOIN analysis a ON a.version_id = v.id"
                " WHERE p.name = 'hello' AND v.number = '2.10' GROUP BY v.id").fetchone()
    except sqlite3.Error:
        return None


@pytest.mark.slow
def test_kiskadee_run_end_to_end(short_tmp):
    config = supervisor_config(short_tmp)
    stderr = open(short_tmp / "stderr.txt", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "kiskadee", "-c", str(config), "run"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)

    def output() -> str:
        stderr.seek(0)
        return stderr.read()

    try:
        tarball = short_tmp / "incoming" / "hello-2.10.tar.gz"
        shutil.copyfile(HELLO_TARBALL, tarball)
        os.utime(tarball, (time.time() - 60, time.time() - 60))     # settled, not still being written
        database = short_tmp / "kiskadee.db"
        state = wait_until(lambda: (hello_state(database) or ("", 0))[0] in ("done", "failed")
                           and hello_state(database), 120, "hello 2.10 to be analyzed", interval=0.5)
        assert state[0] == "done" and state[1] > 0, (state, output())

        victim = wait_until(lambda: runner_pid(config, "runner-1"), 10, "runner-1")
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: runner_pid(config, "runner-1") not in (None, victim), 10, "runner-1 to be restarted")

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, output()
        assert processes_mentioning(str(config)) == {}, output()
    finally:
        kill_leftovers(config, proc)
        stderr.close()


def test_second_interrupt_aborts_the_running_analysis(short_tmp):
    config = supervisor_config(short_tmp, runner="count = 1")
    stderr = open(short_tmp / "stderr.txt", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "kiskadee", "-c", str(config), "run"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_until(lambda: (short_tmp / "run").exists(), 10, "the runtime directory")
        assert oct((short_tmp / "run").stat().st_mode & 0o777) == "0o700"
        tarball = short_tmp / "incoming" / "hello-2.10.tar.gz"
        shutil.copyfile(HELLO_TARBALL, tarball)
        os.utime(tarball, (time.time() - 60, time.time() - 60))
        database = short_tmp / "kiskadee.db"
        wait_until(lambda: hello_state(database) and hello_state(database)[0] == "leased",
                   60, "hello 2.10 to be leased", interval=0.2)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None, "the first interrupt lets the runner finish"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, stderr.read()
        assert time.monotonic() - started < 20
        # Aborted and handed back before the monitor stopped: queued again, the attempt not counted.
        assert hello_state(database) == ("queued", 0)
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            assert db.execute("SELECT attempts, leased_by FROM version").fetchall() == [(0, "")]
        assert processes_mentioning(str(config)) == {}
    finally:
        kill_leftovers(config, proc)
        stderr.close()
