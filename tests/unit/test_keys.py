"""'kiskadee keys': key pairs written private, listed where the monitor looks, never overwritten by accident."""

import os
import stat

import pytest
import zmq.auth

from kiskadee.config import CurveConfig, ServiceConfig
from kiskadee.errors import ConfigError, UsageError
from kiskadee.service.curve import KeyPaths, create_keys, load_secret


def settings(tmp_path, **curve) -> ServiceConfig:
    return ServiceConfig(runtime_dir=str(tmp_path / "run"), state_dir=str(tmp_path / "state"),
                         curve=CurveConfig(**curve))


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_monitor_keys_land_under_the_state_directory_with_a_private_secret(tmp_path):
    public, secret = create_keys(settings(tmp_path), "monitor")
    keys = tmp_path / "state" / "keys"
    assert (public, secret) == (keys / "monitor.key", keys / "monitor.key_secret")
    assert mode(secret) == 0o600 and mode(public) == 0o644 and mode(keys) == 0o700
    assert zmq.auth.load_certificate(str(secret))[0] == zmq.auth.load_certificate(str(public))[0]
    assert (keys / "runners").is_dir() and (keys / "submitters").is_dir()   # the monitor can start listing none


def test_a_runner_key_is_listed_where_the_monitor_lets_runners_in(tmp_path):
    service = settings(tmp_path)
    public, secret = create_keys(service, "runner", "build-host-1")
    assert public.parent == KeyPaths.of(service).allowed["runner"] and mode(secret) == 0o600
    assert not list(KeyPaths.of(service).allowed["submitter"].glob("*"))   # a runner key cannot submit


def test_an_existing_key_is_kept_unless_forced(tmp_path):
    service = settings(tmp_path)
    public, _ = create_keys(service, "runner", "r1")
    before = public.read_bytes()
    with pytest.raises(UsageError, match="already exist; --force"):
        create_keys(service, "runner", "r1")
    assert public.read_bytes() == before
    create_keys(service, "runner", "r1", force=True)
    assert public.read_bytes() != before


@pytest.mark.parametrize("name", ["", "../escape", ".hidden"])
def test_a_peer_key_needs_a_plain_name(tmp_path, name):
    with pytest.raises(UsageError, match="NAME"):
        create_keys(settings(tmp_path), "runner", name)


def test_a_secret_key_others_can_read_is_refused(tmp_path):
    _, secret = create_keys(settings(tmp_path), "monitor")
    os.chmod(secret, 0o644)
    with pytest.raises(ConfigError, match="readable by others .*chmod 600"):
        load_secret(secret, "service.curve.monitor_secret_key")


def test_configured_paths_override_the_defaults(tmp_path):
    service = settings(tmp_path, keys_dir=str(tmp_path / "k"), runners_dir=str(tmp_path / "allowed"))
    paths = KeyPaths.of(service)
    assert paths.monitor_secret == tmp_path / "k" / "monitor.key_secret"
    assert paths.allowed["runner"] == tmp_path / "allowed"
    assert paths.secret["runner"] == tmp_path / "k" / "runner.key_secret"
