"""Shared test fixtures: real files, real processes, short socket-friendly paths."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
HELLO_TARBALL = FIXTURES / "hello_2.10.orig.tar.gz"


@pytest.fixture
def short_tmp():
    """A temporary directory with a short path (ZeroMQ ipc paths must stay under 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="kk"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def hello_tarball() -> Path:
    return HELLO_TARBALL


def run_kiskadee(*args, config=None, timeout=600, env=None):
    """Run the real ``kiskadee`` command as a person would; returns the CompletedProcess."""
    environment = dict(os.environ, **(env or {}))
    environment.pop("KISKADEE_CONFIG", None)
    if config is not None:
        environment["KISKADEE_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "kiskadee", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=environment,
    )
