"""Reading stored findings back: by analysis, by version, by id, and matched by
fingerprint between two analyses (for ``kiskadee diff`` and the exports).

The statements that return a finding per row are plain SQL through
``kiskadee.store.sql``: a diff reads every finding id of two versions (100,000
of them in ``bench/diff.py``), and peewee's per-row work would cost more than
SQLite takes to answer from its indexes. The rest goes through the models.
"""

from typing import Dict, Iterable, List, Tuple

from kiskadee.store import sql
from kiskadee.store.models import Analysis, Analyzer, Finding

CHUNK = 900             # ids per statement, under SQLite's limit of host parameters

DETAIL_FIELDS = ("id", "analyzer", "version", "path", "line", "column", "function", "check_id", "cwe",
                 "cwes", "severity", "message", "fingerprint", "rank", "survived", "context", "context_line",
                 "line_hash")
DETAIL_QUERY = (
    "SELECT f.id, az.name, v.number, f.path, f.line, f.\"column\", f.function, f.check_id, f.cwe,"
    " f.cwes, f.severity, f.message, f.fingerprint, f.rank, f.survived, f.context, f.context_line, f.line_hash"
    " FROM finding f JOIN analysis a ON a.id = f.analysis_id JOIN analyzer az ON az.id = a.analyzer_id"
    " JOIN version v ON v.id = a.version_id WHERE f.id IN ({marks})"
)


def analyses(version_id: int) -> List[Tuple[str, int, str, str, str, str]]:
    """Each analysis of a version: analyzer name, analysis id, status, tool version, error, failed files."""
    return list(Analysis.select(Analyzer.name, Analysis.id, Analysis.status, Analyzer.version,
                                Analysis.error, Analysis.failed_files)
                .join(Analyzer).where(Analysis.version == version_id).tuples())


def count(analysis_id: int) -> int:
    """How many findings an analysis has."""
    return Finding.select().where(Finding.analysis == analysis_id).count()


def of_analysis(analysis_id: int) -> List[int]:
    """The ids of an analysis's findings."""
    return [row[0] for row in sql.execute("SELECT id FROM finding WHERE analysis_id = ?", analysis_id)]


def of_version(version_id: int) -> List[int]:
    """The ids of the findings of every analysis of a version."""
    return [row[0] for row in sql.execute(
        "SELECT f.id FROM finding f JOIN analysis a ON a.id = f.analysis_id WHERE a.version_id = ?", version_id)]


def matching(analysis_id: int, other_id: int, present: bool) -> List[int]:
    """Ids of one analysis's findings whose fingerprint the other analysis has (``present``) or lacks.

    SQLite answers from the (analysis_id, fingerprint) index alone, probing the
    other analysis for each fingerprint: faster than reading both into Python.
    """
    exists = "EXISTS" if present else "NOT EXISTS"
    return [row[0] for row in sql.execute(
        f"SELECT f.id FROM finding f WHERE f.analysis_id = ? AND {exists} (SELECT 1 FROM finding g"
        " WHERE g.analysis_id = ? AND g.fingerprint = f.fingerprint)", analysis_id, other_id)]


def paths(ids: Iterable[int]) -> Dict[int, str]:
    """The path of each of these findings, by id."""
    found: Dict[int, str] = {}
    for chunk in _chunks(list(ids)):
        found.update(sql.execute(f"SELECT id, path FROM finding WHERE id IN ({_marks(chunk)})", *chunk))
    return found


def details(ids: Iterable[int]) -> List[Dict]:
    """The findings with these ids as plain data (``DETAIL_FIELDS``), in no particular order."""
    rows: List[tuple] = []
    for chunk in _chunks(list(ids)):
        rows += sql.execute(DETAIL_QUERY.format(marks=_marks(chunk)), *chunk).fetchall()
    return [dict(zip(DETAIL_FIELDS, row)) for row in rows]


def _chunks(ids: List[int]) -> Iterable[List[int]]:
    return (ids[start:start + CHUNK] for start in range(0, len(ids), CHUNK))


def _marks(chunk: List[int]) -> str:
    return ", ".join("?" * len(chunk))
