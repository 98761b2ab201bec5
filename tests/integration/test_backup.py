"""``kiskadee db backup``: the real command, copying a real SQLite file while another process writes it."""

import sqlite3
import subprocess
import sys

from harness import run_kiskadee

from kiskadee.store.db import open_database
from kiskadee.store.migrations import LATEST

WRITER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
db.execute("PRAGMA journal_mode=wal")
print("ready", flush=True)
n = 0
while True:
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO fetcher (name, created_at) VALUES (?, '2026-01-01')",
                   [(f"writer-{n}-{i}",) for i in range(50)])
    db.execute("COMMIT")
    n += 1
"""


def test_backup_while_another_process_writes(tmp_path):
    path, copy = tmp_path / "kiskadee.db", tmp_path / "copy.db"
    open_database(str(path)).close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        result = run_kiskadee("db", "backup", copy, "--db", path, timeout=120)
    finally:
        writer.kill()
        writer.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    assert f"schema {LATEST}" in result.stdout
    status = run_kiskadee("db", "status", "--db", copy)
    assert f"schema {LATEST}, up to date" in status.stdout
    with sqlite3.connect(copy) as backup:
        assert backup.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = backup.execute("SELECT name FROM fetcher WHERE name LIKE 'writer-%'").fetchall()
    assert len(rows) % 50 == 0      # whole transactions only


def test_backup_refuses_to_overwrite_or_invent(tmp_path):
    path, copy = tmp_path / "kiskadee.db", tmp_path / "copy.db"
    open_database(str(path)).close()
    copy.write_text("keep me")
    assert run_kiskadee("db", "backup", copy, "--db", path).returncode == 2
    assert copy.read_text() == "keep me"
    missing = run_kiskadee("db", "backup", tmp_path / "other.db", "--db", tmp_path / "none.db")
    assert missing.returncode == 5 and not (tmp_path / "none.db").exists()
