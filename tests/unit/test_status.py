"""kiskadee.store.status on a real SQLite database: counts, runners, failures, the queue; its text and progress line."""

import datetime
import io
import json
from argparse import Namespace

import pytest
from harness import database_settings

from kiskadee.cli.services import cmd_status
from kiskadee.config import from_mapping
from kiskadee.errors import DatabaseError
from kiskadee.results import render
from kiskadee.service.progress import Progress, progress_line
from kiskadee.store import status
from kiskadee.store.db import open_database
from kiskadee.store.models import Fetcher, Package, Runner, Version

pytestmark = pytest.mark.both_databases

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0)


def ago(seconds: float) -> datetime.datetime:
    return NOW - datetime.timedelta(seconds=seconds)


def add_version(package: str, number: str, state: str, fetcher: str = "directory", **fields) -> Version:
    source, _ = Fetcher.get_or_create(name=fetcher)
    pkg, _ = Package.get_or_create(fetcher=source, name=package)
    return Version.create(package=pkg, number=number, state=state, **fields)


def test_counts_every_state_even_when_empty(db):
    assert status.version_counts() == {s: 0 for s in status.STATES}


def test_counts_per_state(db):
    for number, state in [("1", "seen"), ("2", "queued"), ("3", "queued"), ("4", "leased"),
                          ("5", "done"), ("6", "done"), ("7", "done"), ("8", "failed")]:
        add_version("hello", number, state)
    add_version("jq", "1.6", "unresolved")
    assert status.version_counts() == {
        "seen": 1, "queued": 2, "leased": 1, "done": 3, "failed": 1, "unresolved": 1}


def test_runners_silent_for_a_minute_are_gone(db):
    hello = add_version("hello", "2.10", "leased", leased_by="runner-0")
    Runner.create(name="runner-0", state="busy", version=hello, activity="cppcheck", last_seen=ago(5))
    Runner.create(name="runner-1", state="busy", activity="flawfinder", last_seen=ago(61))
    Runner.create(name="runner-2", state="idle", last_seen=ago(59))
    Runner.create(name="runner-3", state="gone", last_seen=ago(1))
    rows = status.runners(now=NOW)
    assert [(r["name"], r["state"]) for r in rows] == [
        ("runner-0", "busy"), ("runner-1", "gone"), ("runner-2", "idle"), ("runner-3", "gone")]
    assert (rows[0]["package"], rows[0]["version"], rows[0]["activity"]) == ("hello", "2.10", "cppcheck")
    assert rows[0]["seconds_ago"] == 5
    assert (rows[2]["package"], rows[2]["version"]) == ("", "")


def test_gone_threshold_is_a_parameter(db):
    Runner.create(name="runner-0", state="idle", last_seen=ago(20))
    assert status.runners(now=NOW, gone_after=10)[0]["state"] == "gone"
    assert status.runners(now=NOW)[0]["state"] == "idle"


def test_running_jobs_carry_their_runner_activity(db):
    add_version("jq", "1.6", "leased", leased_by="runner-1", started_at=ago(30))
    add_version("hello", "2.10", "leased", leased_by="runner-0", started_at=ago(60))
    add_version("zlib", "1.3", "queued")
    Runner.create(name="runner-0", state="busy", activity="cppcheck", last_seen=ago(1))
    assert status.running_jobs() == [
        {"package": "hello", "version": "2.10", "runner": "runner-0", "activity": "cppcheck"},
        {"package": "jq", "version": "1.6", "runner": "runner-1", "activity": ""},
    ]


def test_recent_failures_latest_first_and_at_most_ten(db):
    for i in range(12):
        add_version("pkg", f"1.{i}", "failed", error=f"error {i}", finished_at=ago(1000 - i))
    add_version("jq", "1.6", "unresolved", error="no such package", finished_at=ago(1))
    add_version("hello", "2.10", "done", finished_at=ago(0))
    failures = status.recent_failures()
    assert len(failures) == 10
    assert [(f["package"], f["version"], f["state"]) for f in failures[:3]] == [
        ("jq", "1.6", "unresolved"), ("pkg", "1.11", "failed"), ("pkg", "1.10", "failed")]
    assert failures[1]["error"] == "error 11"
    assert failures[1]["finished_at"] == ago(989)
    assert [f["version"] for f in status.recent_failures(limit=2)] == ["1.6", "1.11"]


def test_queue_splits_due_from_backoff(db):
    add_version("a", "1", "queued")
    add_version("b", "1", "queued", not_before=ago(10))
    add_version("c", "1", "queued", not_before=ago(-30))
    add_version("d", "1", "queued", not_before=ago(-90))
    add_version("e", "1", "leased", not_before=ago(-90))
    assert status.queue(now=NOW) == {"due": 2, "waiting": 2, "next_due": ago(-30)}


def test_empty_queue(db):
    assert status.queue(now=NOW) == {"due": 0, "waiting": 0, "next_due": None}


def test_text_report(db):
    hello = add_version("hello", "2.10", "leased", leased_by="runner-0")
    add_version("jq", "1.6", "failed", error="cppcheck: timed out", finished_at=ago(100))
    add_version("zlib", "1.3", "queued", not_before=ago(-120))
    Runner.create(name="runner-0", state="busy", version=hello, activity="cppcheck", last_seen=ago(3))
    text = render.status_text(status.collect(NOW), NOW)
    assert "versions: queued 1  leased 1  done 0  failed 1" in text
    assert "queue: 0 due now, 1 waiting on backoff (next in 2 min)" in text
    assert "runner-0  busy   hello    2.10     cppcheck  3 s ago" in text
    assert "recent failures:" in text and "cppcheck: timed out" in text


def test_show_prints_json(db, tmp_path, capsys):
    add_version("hello", "2.10", "failed", error="boom", finished_at=ago(1))
    Runner.create(name="runner-0", state="idle", last_seen=ago(1))
    settings = from_mapping({"database": database_settings(db.database)})
    assert cmd_status(Namespace(db=None, format="json"), settings) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["versions"]["failed"] == 1
    assert data["failures"][0]["finished_at"] == ago(1).isoformat() + "Z"
    assert data["runners"][0]["name"] == "runner-0"
    assert cmd_status(Namespace(db=None, format="table"), settings) == 0
    assert "runner-0" in capsys.readouterr().out


def test_show_without_a_database(tmp_path):
    settings = from_mapping({"database": {"path": str(tmp_path / "missing.db")}})
    with pytest.raises(DatabaseError, match="no such database"):
        cmd_status(Namespace(db=None, format="table"), settings)


def test_progress_line():
    counts = {"queued": 3, "done": 10, "failed": 1}
    jobs = [{"package": "hello", "version": "2.10", "activity": "analyzing hello 2.10 with cppcheck"},
            {"package": "jq", "version": "1.6", "activity": "fetching jq 1.6"},
            {"package": "zlib", "version": "1.3", "activity": ""}]
    assert progress_line(counts, jobs) == (
        "queued 3  running 3 (hello 2.10 cppcheck; jq 1.6 fetching; zlib 1.3)  done 10  failed 1")
    assert progress_line(counts, []) == "queued 3  running 0  done 10  failed 1"


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_prints_a_line_when_the_counts_change(db, tmp_path):
    settings = from_mapping({"database": database_settings(db.database)})
    out = io.StringIO()
    progress = Progress(settings, stream=out)
    progress.update(0.0)
    progress.update(0.5)        # too soon
    add_version("hello", "2.10", "queued")
    progress.update(1.0)
    progress.update(2.0)        # nothing changed
    assert out.getvalue().splitlines() == [
        "kiskadee: queued 0  running 0  done 0  failed 0",
        "kiskadee: queued 1  running 0  done 0  failed 0",
    ]


def test_progress_redraws_one_line_on_a_terminal(db, tmp_path):
    settings = from_mapping({"database": database_settings(db.database)})
    out = Terminal()
    progress = Progress(settings, stream=out)
    add_version("hello", "2.10", "leased", leased_by="runner-0")
    progress.update(0.0)
    progress.update(1.0)
    progress.finish()
    line = "queued 0  running 1 (hello 2.10)  done 0  failed 0"
    assert out.getvalue() == f"\r\x1b[K{line}\r" * 2 + f"\r\x1b[K{line}\n"


def test_progress_waits_for_the_database(tmp_path):
    settings = from_mapping({"database": {"path": str(tmp_path / "later.db")}})
    out = io.StringIO()
    progress = Progress(settings, stream=out)
    progress.update(0.0)
    assert out.getvalue() == ""
    open_database(str(tmp_path / "later.db")).close()
    progress.update(1.0)
    assert out.getvalue() == "kiskadee: queued 0  running 0  done 0  failed 0\n"


def test_quiet_progress_prints_nothing(db, tmp_path):
    settings = from_mapping({"database": database_settings(db.database)})
    out = io.StringIO()
    progress = Progress(settings, verbosity=-1, stream=out)
    progress.update(0.0)
    progress.say("stopping")
    assert out.getvalue() == ""
