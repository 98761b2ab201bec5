"""Who may reach the ipc sockets outside systemd: the runtime directory's owner and mode, the sockets' modes."""

import os
import pwd
import stat

import pytest
from harness import Suite, run_kiskadee


@pytest.fixture
def suite(short_tmp):
    running = Suite(short_tmp)
    yield running
    running.stop()


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_group_may_announce_but_only_the_owner_may_work(suite):
    suite.start_monitor()
    run = suite.root / "run"
    assert mode(run) == 0o700 and os.stat(run).st_uid == os.geteuid()    # created private
    assert mode(run / "intake.sock") == 0o660
    assert mode(run / "work.sock") == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="pre-creating a directory as another user needs root")
def test_a_runtime_directory_of_another_user_stops_every_service_at_start(suite):
    run = suite.root / "run"
    run.mkdir(mode=0o755)
    nobody = pwd.getpwnam("nobody")
    os.chown(run, nobody.pw_uid, nobody.pw_gid)        # as an attacker pre-creating it would
    for command in (["monitor"], ["runner", "--name", "r"], ["submit", "hello", "2.10", "/nonexistent"],
                    ["fetch", "directory"], ["run"]):
        refused = run_kiskadee(*command, config=suite.config, timeout=60)
        assert refused.returncode == 3, (command, refused.stderr)
        assert f"the runtime directory {run} belongs to nobody" in refused.stderr, refused.stderr
        assert "owner nobody, mode 0755" in refused.stderr
    assert list(run.iterdir()) == []        # no socket was bound or reached in it


def test_a_runtime_directory_anyone_may_write_stops_the_monitor(suite):
    run = suite.root / "run"
    run.mkdir()
    os.chmod(run, 0o777)
    refused = run_kiskadee("monitor", config=suite.config, timeout=60)
    assert refused.returncode == 3
    assert f"the runtime directory {run} is writable by group and others" in refused.stderr, refused.stderr
    assert not (run / "work.sock").exists()
