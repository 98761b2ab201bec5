"""The default paths without $HOME (systemd units, cron, containers): the password database, else a clear error."""

import os
import pwd
import subprocess
import sys

import pytest

from kiskadee import config
from kiskadee.errors import ConfigError

HOME_FROM_PASSWD = pwd.getpwuid(os.getuid()).pw_dir


@pytest.fixture
def no_file(monkeypatch, tmp_path):
    """No configuration file anywhere, so every default applies."""
    monkeypatch.delenv("KISKADEE_CONFIG", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "absent.toml")


@pytest.mark.parametrize("home", [None, "", "relative/home"])
def test_without_a_usable_home_the_password_database_says_where(no_file, monkeypatch, home):
    if home is None:
        monkeypatch.delenv("HOME", raising=False)
    else:
        monkeypatch.setenv("HOME", home)
    settings = config.load()
    data_home = os.path.join(HOME_FROM_PASSWD, ".local", "share", "kiskadee")
    assert settings.database.path == os.path.join(data_home, "kiskadee.db")
    assert settings.service.state_dir == data_home


def test_a_user_without_any_home_gets_a_configuration_error(no_file, monkeypatch):
    monkeypatch.delenv("HOME", raising=False)

    def unknown_uid(uid):   # the password database, a third-party boundary: a uid it does not know
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", unknown_uid)
    with pytest.raises(ConfigError, match=r"\$HOME is not set.*set HOME or XDG_DATA_HOME.*database.path"):
        config.load()


def test_xdg_data_home_or_explicit_paths_need_no_home(no_file, monkeypatch, tmp_path):
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: (_ for _ in ()).throw(KeyError(uid)))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert config.load().database.path == str(tmp_path / "data" / "kiskadee" / "kiskadee.db")
    monkeypatch.delenv("XDG_DATA_HOME")
    path = tmp_path / "kiskadee.toml"
    path.write_text(f'[database]\npath = "{tmp_path}/k.db"\n[service]\nstate_dir = "{tmp_path}/state"\n')
    assert config.load(str(path)).database.path == f"{tmp_path}/k.db"


def test_the_command_runs_without_home(tmp_path):
    """The real command with HOME removed from its environment, as a bare systemd unit starts it."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("HOME", "XDG_DATA_HOME", "KISKADEE_CONFIG", "STATE_DIRECTORY")}
    done = subprocess.run([sys.executable, "-m", "kiskadee", "db", "upgrade", "--db", str(tmp_path / "k.db")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
