"""`kiskadee show PKG VERSION --explain FINGERPRINT`: the terms of a stored finding's rank, from the real CLI;
and `kiskadee ranking refit`, the priors fitted on the site's waivers.

Two releases of a one-file package with a string copied into a too small
buffer are analyzed by real cppcheck and flawfinder into a real SQLite file:
both flag the copy (independent agreement), and in 1.1 it survived 1.0.
"""

import json
import shutil
import sqlite3

import pytest
from harness import run_kiskadee, write_config

from kiskadee.core import ranking

pytestmark = pytest.mark.slow

SOURCE = """#include <string.h>

void greet(void)
{
    char buffer[4];
    strcpy(buffer, "far too long for it");
}
"""


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    (root / "demo").mkdir()
    (root / "demo" / "copy.c").write_text(SOURCE)
    db = root / "k.db"
    for version in ("1.0", "1.1"):
        result = run_kiskadee("analyze", root / "demo", "--name", "demo", "--version", version, "--db", db)
        assert result.returncode == 0, result.stderr
    return db


def stored(db, check_id):
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT fingerprint, rank FROM finding_detail WHERE version = '1.1'"
                                  " AND check_id = ?", (check_id,)).fetchone()


def test_explain_names_the_terms_that_make_the_stored_rank(database):
    fingerprint, rank = stored(database, "bufferAccessOutOfBounds")
    result = run_kiskadee("show", "demo", "1.1", "--db", database, "--explain", fingerprint[:12], "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["analyzer"], data["path"], data["line"]) == ("cppcheck", "copy.c", 6)
    terms = data["terms"]
    assert terms["severity"] == ranking.SEVERITY_WEIGHT["high"]
    assert terms["independent agreement"] == ranking.AGREEMENT_BONUS      # flawfinder's strcpy, same line
    assert terms["survival"] == -0.5                                       # it was in 1.0 already
    assert terms["check precision"] == pytest.approx(
        ranking.SCALE * ranking.check_precision("cppcheck", "bufferAccessOutOfBounds"), abs=1e-3)
    assert data["rank"] == pytest.approx(sum(terms.values()), abs=1e-3) == pytest.approx(rank, abs=1e-3)


def test_explain_prints_each_term_on_its_own_line(database):
    fingerprint, rank = stored(database, "buffer.char")
    result = run_kiskadee("show", "demo", "1.1", "--db", database, "--explain", fingerprint)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "flawfinder buffer.char at copy.c:5 (low, CWE-119)"
    assert [line.split()[0] for line in lines[2:]] == ["severity", "check", "independent", "survival", "rank"]
    agreement = next(line for line in lines if line.split()[0] == "independent")
    assert agreement.split()[:3] == ["independent", "agreement", "1.000"]   # cppcheck on line 6, memory safety
    assert f"stored {rank:.3f}" in lines[-1]


def test_an_unknown_fingerprint_is_not_found(database):
    result = run_kiskadee("show", "demo", "1.1", "--db", database, "--explain", "ffffffffffff")
    assert result.returncode == 6
    assert "no finding of this version has the fingerprint ffffffffffff" in result.stderr


def test_refit_counts_waived_bugs_as_real_and_other_waivers_as_not(database, tmp_path):
    db = tmp_path / "waived.db"
    shutil.copy(database, db)
    overrun, _ = stored(db, "bufferAccessOutOfBounds")
    array, _ = stored(db, "buffer.char")
    for fingerprint, kind in ((overrun, "bug"), (array, "false-positive")):
        result = run_kiskadee("waive", fingerprint, "--as", kind, "--db", db)
        assert result.returncode == 0, result.stderr
    result = run_kiskadee("ranking", "refit", "--db", db, "--site-only", "--output", tmp_path / "site.json")
    assert result.returncode == 0, result.stderr
    site = json.loads((tmp_path / "site.json").read_text())
    assert (site["waivers"], site["real"]) == (2, 1)
    assert site["priors"]["cppcheck"] == {"real": 1, "total": 1, "checks": {"bufferAccessOutOfBounds": [1, 1]}}
    assert site["priors"]["flawfinder"] == {"real": 0, "total": 1, "checks": {"buffer.char": [0, 1]}}
    merged = json.loads(run_kiskadee("ranking", "refit", "--db", db).stdout)["priors"]
    shipped = ranking.shipped.PRIORS["cppcheck"]
    assert merged["cppcheck"]["real"] == shipped["real"] + 1 and merged["cppcheck"]["total"] == shipped["total"] + 1
    # the refitted table ranks as the shipped one does: a waived bug's check gains
    assert ranking.check_precision("cppcheck", "bufferAccessOutOfBounds", merged) > \
        ranking.check_precision("cppcheck", "bufferAccessOutOfBounds")


def test_a_configured_refit_table_reranks_the_stored_findings_and_explain_agrees(database, tmp_path):
    db = tmp_path / "site.db"
    shutil.copy(database, db)
    overrun, before = stored(db, "bufferAccessOutOfBounds")
    assert run_kiskadee("waive", overrun, "--as", "false-positive", "--db", db).returncode == 0
    assert run_kiskadee("ranking", "refit", "--db", db, "--site-only", "--output", tmp_path / "site.json").returncode == 0
    config = write_config(tmp_path / "kiskadee.toml", {"ranking": f'priors = "{tmp_path / "site.json"}"'})
    result = run_kiskadee("-c", config, "db", "rerank", "--db", db)
    assert result.returncode == 0, result.stderr
    assert "ranked 2 versions again with" in result.stdout
    _, after = stored(db, "bufferAccessOutOfBounds")
    assert after < before                       # the site said this check was wrong here
    explained = json.loads(run_kiskadee("-c", config, "show", "demo", "1.1", "--db", db, "--explain", overrun,
                                        "--format", "json").stdout)
    assert explained["rank"] == pytest.approx(explained["stored_rank"], abs=1e-3) == pytest.approx(after, abs=1e-3)
    broken = write_config(tmp_path / "broken.toml", {"ranking": f'priors = "{tmp_path / "missing.json"}"'})
    result = run_kiskadee("-c", broken, "db", "rerank", "--db", db)
    assert result.returncode == 3 and "ranking.priors" in result.stderr
