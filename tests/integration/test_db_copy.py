"""``kiskadee db copy`` moves a site between SQLite and PostgreSQL with every row and id, both ways.

A real SQLite file filled by kiskadee's own store (analyses of three
versions with findings, a waiver, outbox messages, a runner), copied by the
real command into a database of a real PostgreSQL server (tests/postgresql_server.py)
and back into a new SQLite file; ``show`` and ``diff`` read the same from every copy.
"""

import datetime
import json

import pytest
from harness import database_settings, other_connection, run_kiskadee, write_config

from kiskadee.core.findings import Finding
from kiskadee.core.runs import AnalyzerRun
from kiskadee.store import waivers
from kiskadee.store.copy import TABLES
from kiskadee.store.db import close_database, open_database
from kiskadee.store.models import Runner, Version
from kiskadee.store.queue import record_analysis
from kiskadee.store.results import VersionKey

pytestmark = pytest.mark.slow


def finding(fingerprint: str, line: int, message: str = "null pointer") -> Finding:
    return Finding(path="src/a.c", line=line, check_id="nullPointer", severity="high", message=message,
                   fingerprint=fingerprint, cwes=(476,), cwe=476, context=("int *p = 0;", "*p = 1;"),
                   context_line=line)


def fill(location: str) -> None:
    """Three analyzed versions of one package with new and fixed findings, a waiver, a runner."""
    db = open_database(location)
    for number, fingerprints in (("1.0", "ab"), ("1.1", "bc"), ("1.2", "cd")):
        runs = [AnalyzerRun("cppcheck", "2.10", "ok", duration=1.5,
                            findings=[finding(f * 32, 10 * n + 1, f"ü {f}") for n, f in enumerate(fingerprints)]),
                AnalyzerRun("flawfinder", "2.0.20", "failed", error="boom")]
        record_analysis(VersionKey("local", "widget", number), runs, db=db, publish=True)
    waivers.waive("c" * 8, "false-positive", "checked by hand", author="ana")
    Runner.create(name="runner-0", state="idle", last_seen=datetime.datetime(2026, 12, 1, 12, 0, 0, 250000))
    close_database(db)


def table_rows(location: str) -> dict:
    """Every row of every copied table, datetimes as SQLite's text holds them."""
    def plain(value):
        return value.isoformat(" ") if isinstance(value, datetime.datetime) else value
    with other_connection(location) as connection:
        return {table: [tuple(map(plain, row)) for row in connection.rows(f"SELECT * FROM {table} ORDER BY id")]
                for table in TABLES}


def read_commands(location, tmp_path) -> list:
    config = write_config(tmp_path / f"read-{abs(hash(str(location)))}.toml",
                          {"database": "\n".join(f'{key} = "{value}"'
                                                 for key, value in database_settings(location).items())})
    outputs = []
    for args in (["show", "widget", "1.2", "--format", "json"], ["diff", "widget", "1.1", "1.2"],
                 ["status", "--format", "json"]):
        result = run_kiskadee(*args, config=config)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    status = json.loads(outputs.pop())
    for runner in status["runners"]:
        del runner["seconds_ago"]                       # the clock moved between the commands
    return outputs + [status]


@pytest.fixture
def site(tmp_path):
    location = str(tmp_path / "site.db")
    fill(location)
    return location


def test_a_site_moves_to_postgresql_and_back_with_every_row_and_id(site, postgresql, tmp_path):
    server = postgresql.fresh_database(schema=False)        # an empty database, as createdb leaves it
    moved = run_kiskadee("db", "copy", "--from", site, "--to", server)
    assert moved.returncode == 0, moved.stderr
    assert "copied" in moved.stdout and " 6 findings of 3 versions" in moved.stdout
    assert "finding: 6 rows" in moved.stderr            # progress, table by table
    original = table_rows(site)
    assert len(original["outbox"]) == 3 and len(original["waiver"]) == 1
    assert table_rows(server) == original
    back = tmp_path / "back.db"
    returned = run_kiskadee("db", "copy", "--from", server, "--to", f"sqlite://{back}")
    assert returned.returncode == 0, returned.stderr
    assert table_rows(str(back)) == original
    assert read_commands(server, tmp_path) == read_commands(site, tmp_path) == read_commands(str(back), tmp_path)


def test_the_copy_keeps_numbering_after_the_copied_ids(site, postgresql):
    server = postgresql.fresh_database()
    assert run_kiskadee("db", "copy", "--from", site, "--to", server).returncode == 0
    db = open_database(server)
    version = record_analysis(VersionKey("local", "widget", "1.3"), [AnalyzerRun("cppcheck", "2.10", "ok")], db=db)
    assert version.id == 4 and version.previous_id == Version.get(Version.number == "1.2").id
    close_database(db)


def test_a_copy_refuses_a_target_that_holds_rows(site, postgresql, tmp_path):
    server = postgresql.fresh_database()
    assert run_kiskadee("db", "copy", "--from", site, "--to", server).returncode == 0
    again = run_kiskadee("db", "copy", "--from", site, "--to", server)
    assert again.returncode == 2
    assert "not empty" in again.stderr and "Traceback" not in again.stderr
    same = run_kiskadee("db", "copy", "--from", site, "--to", site)
    assert same.returncode == 2 and "the same database" in same.stderr
    missing = run_kiskadee("db", "copy", "--from", str(tmp_path / "none.db"), "--to", str(tmp_path / "new.db"))
    assert missing.returncode != 0 and "no such database" in missing.stderr


def test_backup_of_a_postgresql_database_points_to_the_tools_that_do_it(postgresql, tmp_path):
    result = run_kiskadee("db", "backup", "--db", postgresql.fresh_database(), str(tmp_path / "b.db"))
    assert result.returncode == 2
    assert "pg_dump" in result.stderr and "kiskadee db copy" in result.stderr


def test_text_with_nul_characters_reaches_postgresql_with_them_replaced(postgresql, tmp_path):
    """SQLite keeps a NUL that a hostile source line put in a finding; PostgreSQL's text cannot hold it."""
    site = str(tmp_path / "nul.db")
    db = open_database(site)
    record_analysis(VersionKey("local", "widget", "1.0"),
                    [AnalyzerRun("cppcheck", "2.10", "ok", findings=[finding("e" * 32, 3, "bad \x00 byte")])], db=db)
    close_database(db)
    server = postgresql.fresh_database()
    assert run_kiskadee("db", "copy", "--from", site, "--to", server).returncode == 0
    assert [row[0] for row in table_rows(server)["finding"]] == [1]
    with other_connection(server) as connection:
        assert connection.rows("SELECT message FROM finding") == [("bad \ufffd byte",)]
