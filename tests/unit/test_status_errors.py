"""`kiskadee status` shows each failure's error whole: wrapped under its row in the table, verbatim in JSON."""

import datetime
import json
from argparse import Namespace

from kiskadee.cli.services import cmd_status
from kiskadee.config import from_mapping
from kiskadee.results import render
from kiskadee.store import status
from kiskadee.store.models import Fetcher, Package, Version

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0)
# A real kind of error: long, several lines, with a path longer than the wrap width.
ERROR = ("cppcheck: failed: exit status 1: cppcheck could not parse the configuration of "
         "src/lib/compress/zstd_compress_superblock.c because the macro ZSTD_STATIC_LINKING_ONLY "
         "is defined twice with different values\n"
         "flawfinder: timed out after 600 s; kept 12 findings of "
         "/var/lib/kiskadee/work/zstd-1.5.6/very/deep/tree/that/goes/on/and/on/and/on/beyond/a/hundred/columns.c\n"
         "the end of the error")


def add_failure(package: str, number: str, error: str, seconds_ago: int) -> None:
    source, _ = Fetcher.get_or_create(name="debian")
    pkg, _ = Package.get_or_create(fetcher=source, name=package)
    Version.create(package=pkg, number=number, state="failed", error=error,
                   finished_at=NOW - datetime.timedelta(seconds=seconds_ago))


def test_table_shows_every_word_of_every_error_under_its_row(db):
    add_failure("zstd", "1.5.6", ERROR, 60)
    add_failure("jq", "1.6", "cppcheck: timed out", 30)
    text = render.status_text(status.collect(NOW), NOW)
    lines = text.split("recent failures:\n", 1)[1].splitlines()
    assert lines[0].split() == ["PACKAGE", "VERSION", "STATE", "FINISHED"]
    row = {line.split()[0]: number for number, line in enumerate(lines) if not line.startswith(" ")}
    jq_row, zstd_row = row["jq"], row["zstd"]
    assert zstd_row > jq_row                                  # most recent first, as before
    assert lines[jq_row + 1] == "  cppcheck: timed out"
    zstd_error = lines[zstd_row + 1:]
    assert " ".join(zstd_error).split() == ERROR.split()      # nothing cut, nothing added
    assert all(line.startswith("  ") for line in zstd_error)
    assert all(len(line) <= render.ERROR_WIDTH or " " not in line.strip() for line in zstd_error)
    assert len(zstd_error) > 3                                # the long first line was wrapped
    assert "..." not in text


def test_json_has_the_error_verbatim(db, tmp_path, capsys):
    add_failure("zstd", "1.5.6", ERROR, 60)
    settings = from_mapping({"database": {"path": str(tmp_path / "kiskadee.db")}})
    assert cmd_status(Namespace(db=None, format="json"), settings) == 0
    assert json.loads(capsys.readouterr().out)["failures"][0]["error"] == ERROR
