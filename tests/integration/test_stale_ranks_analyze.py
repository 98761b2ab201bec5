"""`kiskadee analyze --analyzers cppcheck`, then `--analyzers flawfinder`, ranks hello 2.10 as one
`kiskadee analyze --analyzers cppcheck,flawfinder` does: the real command, real analyzers, real files."""

import contextlib
import sqlite3

import pytest
from harness import HELLO_TARBALL, run_kiskadee


def ranks(db):
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return dict(((analyzer, fingerprint), (rank, survived)) for analyzer, fingerprint, rank, survived in
                    connection.execute("SELECT d.analyzer, d.fingerprint, d.rank, f.survived FROM finding_detail d"
                                       " JOIN finding f ON f.id = d.id"))


def analyze(db, analyzers):
    result = run_kiskadee("analyze", HELLO_TARBALL, "--analyzers", analyzers, "--db", db)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_analyzers_stored_by_separate_runs_rank_as_one_run(tmp_path):
    analyze(tmp_path / "together.db", "cppcheck,flawfinder")
    for analyzer in ("cppcheck", "flawfinder"):
        analyze(tmp_path / "separately.db", analyzer)
    together = ranks(tmp_path / "together.db")
    assert {analyzer for analyzer, _ in together} == {"cppcheck", "flawfinder"}
    assert ranks(tmp_path / "separately.db") == together
