"""The runtime directory outside systemd: created private, refused when someone else could write it."""

import os
import pwd
import stat

import pytest

from kiskadee.config import ServiceConfig
from kiskadee.errors import EXIT_CONFIG
from kiskadee.service.access import UnsafeRuntimeDirectory, ensure_runtime_dirs

NOT_SYSTEMD = {}        # an environment without RUNTIME_DIRECTORY or LISTEN_FDS


def service(directory, **values) -> ServiceConfig:
    return ServiceConfig(runtime_dir=str(directory), state_dir=str(directory.parent / "state"), **values)


def test_a_missing_directory_is_created_private(tmp_path):
    run = tmp_path / "a" / "run"
    ensure_runtime_dirs(service(run), NOT_SYSTEMD)
    info = os.lstat(run)
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.geteuid()


def test_an_existing_private_directory_is_used_as_it_is(tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o750)
    os.chmod(run, 0o750)        # the group may look in (and reach a 0660 intake), not write
    ensure_runtime_dirs(service(run), NOT_SYSTEMD)
    assert stat.S_IMODE(os.stat(run).st_mode) == 0o750


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_directory_of_another_user_is_refused_naming_it_its_owner_and_mode(tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    nobody = pwd.getpwnam("nobody")
    os.chown(run, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(UnsafeRuntimeDirectory) as refused:
        ensure_runtime_dirs(service(run), NOT_SYSTEMD)
    message = str(refused.value)
    assert str(run) in message and "owner nobody" in message and "mode 0700" in message
    assert "chown root" in message and refused.value.exit_code == EXIT_CONFIG


def test_a_directory_others_may_write_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.chmod(run, 0o777)
    with pytest.raises(UnsafeRuntimeDirectory, match=r"writable by group and others .*mode 0777"):
        ensure_runtime_dirs(service(run), NOT_SYSTEMD)


def test_a_symbolic_link_is_refused_even_to_a_private_directory(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "run").symlink_to(target)
    with pytest.raises(UnsafeRuntimeDirectory, match="is a symbolic link"):
        ensure_runtime_dirs(service(tmp_path / "run"), NOT_SYSTEMD)


def test_the_directory_of_an_ipc_endpoint_elsewhere_is_checked_too(tmp_path):
    (tmp_path / "shared").mkdir()
    os.chmod(tmp_path / "shared", 0o777)
    settings = service(tmp_path / "run", work=f"ipc://{tmp_path / 'shared' / 'work.sock'}")
    with pytest.raises(UnsafeRuntimeDirectory, match="shared"):
        ensure_runtime_dirs(settings, NOT_SYSTEMD)


def test_the_owner_named_in_the_configuration_is_accepted(tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o755)
    os.chmod(run, 0o755)
    me = pwd.getpwuid(os.geteuid()).pw_name
    ensure_runtime_dirs(service(run, runtime_dir_owner=me), NOT_SYSTEMD)
    with pytest.raises(Exception, match="names the user 'no-such-user-kk'"):
        ensure_runtime_dirs(service(run, runtime_dir_owner="no-such-user-kk"), NOT_SYSTEMD)


def test_under_systemd_the_directory_is_systemds_business(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.chmod(run, 0o777)
    ensure_runtime_dirs(service(run), {"RUNTIME_DIRECTORY": str(run)})
    ensure_runtime_dirs(service(run), {"LISTEN_FDS": "2"})
