"""Enumerated configuration values are checked when the file is loaded, by every command and service.

An unknown analyzer, sandbox backend, monitor policy or compile mode used to
pass the loader and fail later: ``analyze`` exited 2, a runner died with a
traceback (and systemd restarted it for ever), ``monitor.analyze`` was never
checked at all. Now each is a configuration error (exit 3) naming the file,
the key, the bad value and the valid values before anything starts.
"""

import subprocess
import sys

import pytest
from harness import HELLO_TARBALL

from kiskadee import config
from kiskadee.analysis.analyzers import registry
from kiskadee.errors import EXIT_CONFIG, ConfigError

ANALYZERS = "cppcheck, flawfinder, clang, gcc, framac"

BAD_VALUES = [
    # (TOML text, key, bad value, valid values as the message lists them)
    ('[analysis]\nanalyzers = ["nope"]\n', "analysis.analyzers", "'nope'", ANALYZERS),
    ('[analysis]\nanalyzers = ["cppcheck", "Flawfinder"]\n', "analysis.analyzers", "'Flawfinder'", ANALYZERS),
    ('[sandbox]\nbackend = "podman"\n', "sandbox.backend", "'podman'", "local, docker"),
    ('[monitor]\nanalyze = "sometimes"\n', "monitor.analyze", "'sometimes'", "newest, every"),
    ('[analyzers.clang]\nmode = "fast"\n', "analyzers.clang.mode", "'fast'", "auto, per-file"),
    ('[analyzers.gcc]\nmode = "build"\n', "analyzers.gcc.mode", "'build'", "auto, per-file"),
    ('[analyzers.framac]\nmode = ""\n', "analyzers.framac.mode", "''", "auto, per-file"),
]


def write(directory, text):
    path = directory / "kiskadee.toml"
    path.write_text(f'[database]\npath = "{directory / "k.db"}"\n'
                    f'[service]\nruntime_dir = "{directory / "run"}"\nstate_dir = "{directory / "state"}"\n'
                    + text)
    return path


@pytest.mark.parametrize("text, key, value, valid", BAD_VALUES)
def test_bad_value_is_refused_at_load_naming_file_key_value_and_valid_values(tmp_path, text, key, value, valid):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        config.load(str(path))
    message = str(error.value)
    assert str(path) in message and f"'{key}'" in message
    assert value in message and valid in message


@pytest.mark.parametrize("text, check", [
    (f'[analysis]\nanalyzers = ["{name}"]\n', lambda s, name=name: s.analysis.analyzers == (name,))
    for name in ("cppcheck", "flawfinder", "clang", "gcc", "framac")
] + [
    ('[analysis]\nanalyzers = []\n', lambda s: s.analysis.analyzers == ()),
    ('[sandbox]\nbackend = "docker"\n', lambda s: s.sandbox.backend == "docker"),
    ('[monitor]\nanalyze = "every"\n', lambda s: s.monitor.analyze == "every"),
    ('[analyzers.gcc]\nmode = "per-file"\n', lambda s: s.analyzers.gcc.mode == "per-file"),
])
def test_every_valid_value_is_accepted(tmp_path, text, check):
    assert check(config.load(str(write(tmp_path, text))))


def test_the_valid_analyzers_are_the_analyzers_kiskadee_has():
    """One list: an analyzer with a configuration section is one kiskadee can run, and back."""
    assert sorted(config.ANALYZERS) == sorted(registry())


def test_the_defaults_are_valid_values():
    defaults = config.Config()
    assert set(defaults.analysis.analyzers) <= set(config.ANALYZERS)
    assert defaults.sandbox.backend in config.SANDBOX_BACKENDS
    assert defaults.monitor.analyze in config.ANALYZE_POLICIES
    assert {defaults.analyzers.clang.mode, defaults.analyzers.gcc.mode,
            defaults.analyzers.framac.mode} <= set(config.COMPILED_MODES)


def kiskadee(config_path, *args):
    """The real command, as a person runs it; a service that does not exit at once fails the test."""
    return subprocess.run([sys.executable, "-m", "kiskadee", "--config", str(config_path), *map(str, args)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", [
    ("analyze", HELLO_TARBALL),
    ("runner", "--name", "r1"),
    ("monitor",),
])
@pytest.mark.parametrize("text, key, value, valid", [BAD_VALUES[0], BAD_VALUES[2], BAD_VALUES[3]])
def test_commands_and_services_exit_3_on_a_bad_value(short_tmp, command, text, key, value, valid):
    path = write(short_tmp, text)
    result = kiskadee(path, *command)
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert f"'{key}'" in result.stderr and value in result.stderr and valid in result.stderr
    assert "Traceback" not in result.stderr
    assert not (short_tmp / "k.db").exists()        # refused before anything was opened
