"""`kiskadee diff` on two pairs of real consecutive releases, analyzed by the real tools.

- cJSON 1.7.14 -> 1.7.15 (cppcheck and flawfinder): the top directory changes
  name (cJSON-1.7.14/ -> cJSON-1.7.15/), four lines added near the top of
  cJSON.c move some fifty findings, and 1.7.15 removes the redundant
  ``if (newbuffer)`` of ``ensure()`` that cppcheck flagged twice.
- lz4 1.9.4 -> 1.10.0 (flawfinder): 1.10.0 reads the LZ4_NBWORKERS and
  LZ4_CLEVEL environment variables in programs/lz4cli.c, which 1.9.4 did not.

The expectations are checked against the source trees themselves: a finding
called new (or fixed) must sit on a line whose text the other release does not
have flagged by the same check in the same file.

Each pair is analyzed into SQLite and into PostgreSQL (``new_database``), the
second time from the analysis cache the two share (``analysis_cache``).
"""

import json
import re
from pathlib import Path

import pytest
from harness import FIXTURES, other_connection, run_kiskadee, write_config

from kiskadee.sources.unpack import unpack as unpack_archive

RELEASES = FIXTURES / "releases"


def analyze(db: str, tarball: str, *options, config):
    result = run_kiskadee("analyze", RELEASES / tarball, "--db", db, "--top", "0", *options, config=config)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def cjson(tmp_path_factory, new_database, analysis_cache):
    """cJSON 1.7.14 then 1.7.15 analyzed into one database; where it is and the unpacked trees."""
    work = tmp_path_factory.mktemp("cjson")
    # cppcheck spends minutes on cJSON's bundled test harness (unity) and on every
    # preprocessor configuration; the library itself, in one configuration, takes
    # seconds. flawfinder still reads the whole tree.
    config = write_config(work / "kiskadee.toml", {
        "analyzers.cppcheck": 'extra_args = ["--max-configs=1", "-itests", "-ifuzzing"]',
        "analysis.cache": f'path = "{analysis_cache}"'})
    db = new_database(work)
    for tarball in ("cjson_1.7.14.orig.tar.gz", "cjson_1.7.15.orig.tar.gz"):
        analyze(db, tarball, config=config)
    return db, unpack(work, "cjson_1.7.14.orig.tar.gz"), unpack(work, "cjson_1.7.15.orig.tar.gz")


@pytest.fixture(scope="module")
def lz4(tmp_path_factory, new_database, analysis_cache):
    work = tmp_path_factory.mktemp("lz4")
    config = write_config(work / "kiskadee.toml", {"analysis.cache": f'path = "{analysis_cache}"'})
    db = new_database(work)
    for tarball in ("lz4_1.9.4.orig.tar.gz", "lz4_1.10.0.orig.tar.gz"):
        analyze(db, tarball, "--analyzers", "flawfinder", config=config)
    return db, unpack(work, "lz4_1.9.4.orig.tar.gz"), unpack(work, "lz4_1.10.0.orig.tar.gz")


def unpack(work: Path, tarball: str) -> Path:
    """The release's source tree, unpacked as kiskadee unpacks it (tarfile's filters need Python >= 3.11.4)."""
    dest = work / "trees" / tarball
    dest.mkdir(parents=True)
    return unpack_archive(RELEASES / tarball, dest)


def diff_json(db, *args):
    result = run_kiskadee("diff", *args, "--format", "json", "--all", "--db", db)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def line_text(tree: Path, path: str, line: int) -> str:
    lines = (tree / path).read_text(errors="replace").splitlines()
    return re.sub(r"\s+", "", lines[line - 1])


def flagged_lines(db, version, tree):
    """(analyzer, check, path, source text) of every finding of a version, from its tree."""
    with other_connection(db) as connection:
        rows = connection.rows("SELECT analyzer, check_id, path, line FROM finding_detail"
                               " WHERE version = ? AND path != '' AND line > 0", version)
    return {(a, c, p, line_text(tree, p, n)) for a, c, p, n in rows}


def assert_really_changed(findings, here: Path, other: Path, flagged_there):
    """Each finding is on a line the other release does not have flagged by the same check."""
    for f in findings:
        if (other / f["path"]).exists():
            key = (f["analyzer"], f["check_id"], f["path"], line_text(here, f["path"], f["line"]))
            assert key not in flagged_there, f


def test_cjson_moved_code_is_unchanged_and_the_removed_check_is_fixed(cjson):
    db, old_tree, new_tree = cjson
    data = diff_json(db, "cjson", "1.7.15")        # OLD defaults to the analyzed version before
    assert (data["old"], data["new"]) == ("1.7.14", "1.7.15")
    assert [a["compared"] for a in data["analyzers"]] == [True, True]
    assert data["counts"]["new"] == 0 and data["counts"]["not_analyzed"] == 0
    fixed = {(f["analyzer"], f["path"], f["line"], f["check_id"]) for f in data["fixed_findings"]}
    assert fixed == {("cppcheck", "cJSON.c", 510, "knownConditionTrueFalse"),
                     ("cppcheck", "cJSON.c", 519, "nullPointerArithmeticRedundantCheck")}
    assert line_text(old_tree, "cJSON.c", 510) == "if(newbuffer)"
    assert "if (newbuffer)" not in (new_tree / "cJSON.c").read_text()
    unchanged = data["unchanged_findings"]
    assert len(unchanged) == data["counts"]["unchanged"] > 100
    assert not any(f["path"].startswith("cJSON-") for f in unchanged)


def test_cjson_a_line_number_comparison_would_have_called_moved_code_new(cjson):
    """What fingerprints buy: some fifty unchanged findings sit on other lines in 1.7.15."""
    db, _, _ = cjson
    with other_connection(db) as connection:
        moved = connection.execute(
            "SELECT COUNT(*) FROM finding_detail n JOIN finding_detail o ON o.fingerprint = n.fingerprint"
            " WHERE n.version = '1.7.15' AND o.version = '1.7.14' AND n.line != o.line").fetchone()[0]
        by_line = connection.execute(
            "SELECT COUNT(*) FROM finding_detail n WHERE n.version = '1.7.15' AND NOT EXISTS ("
            " SELECT 1 FROM finding_detail o WHERE o.version = '1.7.14' AND o.analyzer = n.analyzer"
            " AND o.path = n.path AND o.line = n.line AND o.check_id = n.check_id)").fetchone()[0]
    assert moved >= 50 and by_line >= 50


def test_cjson_survival_is_counted_and_lowers_the_rank(cjson):
    db, _, _ = cjson
    with other_connection(db) as connection:
        rows = connection.rows(
            "SELECT fn.survived, fo.survived, fn.rank < fo.rank - 0.45 FROM finding_detail n"
            " JOIN finding fn ON fn.id = n.id JOIN finding_detail o ON o.fingerprint = n.fingerprint"
            " JOIN finding fo ON fo.id = o.id WHERE n.version = '1.7.15' AND o.version = '1.7.14'")
    assert len(rows) > 100 and set(rows) == {(1, 0, 1)}


def test_cjson_new_finding_view_agrees(cjson):
    db, _, _ = cjson
    with other_connection(db) as connection:
        assert connection.rows("SELECT COUNT(*) FROM new_finding WHERE package = 'cjson'") == [(0,)]
        fixed = connection.rows("SELECT version, previous_version, check_id FROM fixed_finding ORDER BY check_id")
    assert fixed == [("1.7.15", "1.7.14", "knownConditionTrueFalse"),
                     ("1.7.15", "1.7.14", "nullPointerArithmeticRedundantCheck")]


def test_lz4_new_environment_variables_show_up_as_new(lz4):
    db, old_tree, new_tree = lz4
    data = diff_json(db, "lz4", "1.9.4", "1.10.0")
    getenv = [(f["path"], f["check_id"]) for f in data["new_findings"] if f["check_id"] == "buffer.getenv"]
    assert getenv == [("programs/lz4cli.c", "buffer.getenv")] * 2
    assert "getenv" not in (old_tree / "programs" / "lz4cli.c").read_text()
    assert_really_changed(data["new_findings"], new_tree, old_tree, flagged_lines(db, "1.9.4", old_tree))
    assert_really_changed(data["fixed_findings"], old_tree, new_tree, flagged_lines(db, "1.10.0", new_tree))
    assert data["counts"]["unchanged"] > 200 and data["counts"]["not_analyzed"] == 0
