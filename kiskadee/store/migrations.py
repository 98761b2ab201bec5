"""Numbered schema migrations, applied in order by ``kiskadee db upgrade``.

Each migration is plain SQL so that the schema reads the same here as in
``sqlite3 .schema``; on PostgreSQL the same statements run with the few words
the two spell differently translated (``kiskadee.store.postgresql.from_sqlite``).
A migration never changes once released: a schema change is a new migration
at the end of ``MIGRATIONS``.
"""

import logging
from typing import List, NamedTuple

import peewee

from kiskadee.errors import DatabaseError
from kiskadee.store import postgresql
from kiskadee.store.models import utcnow

log = logging.getLogger(__name__)


class Migration(NamedTuple):
    number: int
    title: str
    statements: List[str]


INITIAL_SCHEMA = [
    """CREATE TABLE fetcher (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at DATETIME NOT NULL)""",
    """CREATE TABLE package (
        id INTEGER PRIMARY KEY,
        fetcher_id INTEGER NOT NULL REFERENCES fetcher (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        homepage TEXT NOT NULL DEFAULT '',
        created_at DATETIME NOT NULL,
        UNIQUE (fetcher_id, name))""",
    """CREATE TABLE version (
        id INTEGER PRIMARY KEY,
        package_id INTEGER NOT NULL REFERENCES package (id) ON DELETE CASCADE,
        number TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'seen',
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before DATETIME,
        leased_by TEXT NOT NULL DEFAULT '',
        lease_expires DATETIME,
        source_url TEXT NOT NULL DEFAULT '',
        sha256 TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '',
        event TEXT NOT NULL DEFAULT '',
        created_at DATETIME NOT NULL,
        queued_at DATETIME,
        started_at DATETIME,
        finished_at DATETIME,
        UNIQUE (package_id, number))""",
    "CREATE INDEX version_state ON version (state, not_before)",
    """CREATE TABLE analyzer (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        UNIQUE (name, version))""",
    """CREATE TABLE analysis (
        id INTEGER PRIMARY KEY,
        version_id INTEGER NOT NULL REFERENCES version (id) ON DELETE CASCADE,
        analyzer_id INTEGER NOT NULL REFERENCES analyzer (id),
        status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'timeout', 'skipped')),
        started_at DATETIME NOT NULL,
        duration REAL NOT NULL DEFAULT 0,
        finding_count INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        UNIQUE (version_id, analyzer_id))""",
    """CREATE TABLE finding (
        id INTEGER PRIMARY KEY,
        analysis_id INTEGER NOT NULL REFERENCES analysis (id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        line INTEGER NOT NULL DEFAULT 0,
        "column" INTEGER NOT NULL DEFAULT 0,
        function TEXT NOT NULL DEFAULT '',
        check_id TEXT NOT NULL,
        cwe INTEGER,
        severity TEXT NOT NULL CHECK (severity IN ('high', 'medium', 'low', 'info')),
        message TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        rank REAL NOT NULL DEFAULT 0)""",
    "CREATE INDEX finding_analysis ON finding (analysis_id)",
    "CREATE INDEX finding_fingerprint ON finding (fingerprint)",
    # Views for people reading the database with sqlite3.
    """CREATE VIEW finding_detail AS
        SELECT f.id, fe.name AS fetcher, p.name AS package, v.number AS version,
               az.name AS analyzer, f.path, f.line, f."column", f.function,
               f.check_id, f.cwe, f.severity, f.message, f.fingerprint, f.rank
        FROM finding f
        JOIN analysis a ON a.id = f.analysis_id
        JOIN analyzer az ON az.id = a.analyzer_id
        JOIN version v ON v.id = a.version_id
        JOIN package p ON p.id = v.package_id
        JOIN fetcher fe ON fe.id = p.fetcher_id""",
    """CREATE VIEW analysis_detail AS
        SELECT a.id, fe.name AS fetcher, p.name AS package, v.number AS version,
               az.name AS analyzer, az.version AS analyzer_version, a.status,
               a.started_at, a.duration, a.finding_count, a.error,
               a.version_id, v.package_id
        FROM analysis a
        JOIN analyzer az ON az.id = a.analyzer_id
        JOIN version v ON v.id = a.version_id
        JOIN package p ON p.id = v.package_id
        JOIN fetcher fe ON fe.id = p.fetcher_id""",
    # The analyses of the most recently analyzed version of each package.
    """CREATE VIEW latest_analysis AS
        SELECT d.* FROM analysis_detail d
        WHERE d.version_id = (
            SELECT a.version_id FROM analysis a JOIN version v ON v.id = a.version_id
            WHERE v.package_id = d.package_id
            ORDER BY a.started_at DESC, a.id DESC LIMIT 1)""",
]

RUNNERS = [
    # What each runner is doing, as the monitor last heard it; for 'kiskadee status'.
    """CREATE TABLE runner (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL DEFAULT 'idle',
        version_id INTEGER REFERENCES version (id) ON DELETE SET NULL,
        activity TEXT NOT NULL DEFAULT '',
        last_seen DATETIME NOT NULL)""",
    # Jobs waiting, running or failed, for people reading the queue.
    """CREATE VIEW job_queue AS
        SELECT v.id AS job, fe.name AS fetcher, p.name AS package, v.number AS version,
               v.state, v.attempts, v.queued_at, v.not_before, v.leased_by, v.lease_expires,
               v.error
        FROM version v JOIN package p ON p.id = v.package_id JOIN fetcher fe ON fe.id = p.fetcher_id
        WHERE v.state IN ('queued', 'leased', 'failed')""",
]

COVERAGE = [
    # What an analyzer that compiles the code analyzed: NULL counts for the others.
    "ALTER TABLE analysis ADD COLUMN mode TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE analysis ADD COLUMN files_analyzed INTEGER",
    "ALTER TABLE analysis ADD COLUMN files_failed INTEGER",
    "ALTER TABLE analysis ADD COLUMN fallback TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE analysis ADD COLUMN failed_files TEXT NOT NULL DEFAULT ''",
    "DROP VIEW latest_analysis",
    "DROP VIEW analysis_detail",
    """CREATE VIEW analysis_detail AS
        SELECT a.id, fe.name AS fetcher, p.name AS package, v.number AS version,
               az.name AS analyzer, az.version AS analyzer_version, a.status,
               a.started_at, a.duration, a.finding_count, a.error,
               a.version_id, v.package_id,
               a.mode, a.files_analyzed, a.files_failed, a.fallback, a.failed_files
        FROM analysis a
        JOIN analyzer az ON az.id = a.analyzer_id
        JOIN version v ON v.id = a.version_id
        JOIN package p ON p.id = v.package_id
        JOIN fetcher fe ON fe.id = p.fetcher_id""",
    """CREATE VIEW latest_analysis AS
        SELECT d.* FROM analysis_detail d
        WHERE d.version_id = (
            SELECT a.version_id FROM analysis a JOIN version v ON v.id = a.version_id
            WHERE v.package_id = d.package_id
            ORDER BY a.started_at DESC, a.id DESC LIMIT 1)""",
]

RESULTS = [
    # The analyzed version before this one by the package's version rules (kiskadee.store.lineage).
    "ALTER TABLE version ADD COLUMN previous_id INTEGER REFERENCES version (id) ON DELETE SET NULL",
    # How many earlier analyzed versions of the package had the same fingerprint.
    "ALTER TABLE finding ADD COLUMN survived INTEGER NOT NULL DEFAULT 0",
    # A person's verdict on a finding, for every version of the package that has it.
    """CREATE TABLE waiver (
        id INTEGER PRIMARY KEY,
        package_id INTEGER NOT NULL REFERENCES package (id) ON DELETE CASCADE,
        fingerprint TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('false-positive', 'intentional', 'bug')),
        comment TEXT NOT NULL DEFAULT '',
        author TEXT NOT NULL DEFAULT '',
        created_at DATETIME NOT NULL,
        UNIQUE (package_id, fingerprint))""",
    # An analysis's findings by severity, best ranked first: 'show --top N' reads the
    # best of each severity without sorting them all, and counts them by severity
    # from this index alone.
    "CREATE INDEX finding_rank ON finding (analysis_id, severity, rank)",
    # An analysis's fingerprints (release diffs, survival) from this index alone.
    "CREATE INDEX finding_analysis_fingerprint ON finding (analysis_id, fingerprint, survived)",
    # Findings of each version that its previous analyzed version did not have; only
    # where the same analyzer completed on both, so a failed run never makes findings new.
    """CREATE VIEW new_finding AS
        SELECT f.id, fe.name AS fetcher, p.name AS package, v.number AS version,
               pv.number AS previous_version, az.name AS analyzer, f.path, f.line,
               f."column", f.function, f.check_id, f.cwe, f.severity, f.message,
               f.fingerprint, f.rank, f.survived, w.kind AS waiver, w.comment AS waiver_comment
        FROM finding f
        JOIN analysis a ON a.id = f.analysis_id
        JOIN analyzer az ON az.id = a.analyzer_id
        JOIN version v ON v.id = a.version_id
        JOIN version pv ON pv.id = v.previous_id
        JOIN package p ON p.id = v.package_id
        JOIN fetcher fe ON fe.id = p.fetcher_id
        LEFT JOIN waiver w ON w.package_id = p.id AND w.fingerprint = f.fingerprint
        WHERE EXISTS (SELECT 1 FROM analysis pa JOIN analyzer paz ON paz.id = pa.analyzer_id
                      WHERE pa.version_id = pv.id AND paz.name = az.name AND pa.status = 'ok')
          AND NOT EXISTS (SELECT 1 FROM finding pf JOIN analysis pa ON pa.id = pf.analysis_id
                          WHERE pf.fingerprint = f.fingerprint AND pa.version_id = pv.id)""",
    # Findings of the previous analyzed version that a version no longer has, where the
    # same analyzer completed on both.
    """CREATE VIEW fixed_finding AS
        SELECT pf.id, fe.name AS fetcher, p.name AS package, v.number AS version,
               pv.number AS previous_version, az.name AS analyzer, pf.path, pf.line,
               pf."column", pf.function, pf.check_id, pf.cwe, pf.severity, pf.message,
               pf.fingerprint, pf.rank, pf.survived, w.kind AS waiver, w.comment AS waiver_comment
        FROM version v
        JOIN version pv ON pv.id = v.previous_id
        JOIN analysis pa ON pa.version_id = pv.id
        JOIN analyzer az ON az.id = pa.analyzer_id
        JOIN finding pf ON pf.analysis_id = pa.id
        JOIN package p ON p.id = v.package_id
        JOIN fetcher fe ON fe.id = p.fetcher_id
        LEFT JOIN waiver w ON w.package_id = p.id AND w.fingerprint = pf.fingerprint
        WHERE EXISTS (SELECT 1 FROM analysis a JOIN analyzer naz ON naz.id = a.analyzer_id
                      WHERE a.version_id = v.id AND naz.name = az.name AND a.status = 'ok')
          AND NOT EXISTS (SELECT 1 FROM finding f JOIN analysis a ON a.id = f.analysis_id
                          WHERE f.fingerprint = pf.fingerprint AND a.version_id = v.id)""",
]

FASTER_VIEWS = [
    # new_finding and fixed_finding of migration 4 read the whole finding table
    # before filtering by version (2.5 s for one version in a million findings);
    # these start from the version (0.3 s).
    "DROP VIEW new_finding",
    "DROP VIEW fixed_finding",
    # Findings of each version that its previous analyzed version did not have; only
    # where the same analyzer completed on both, so a failed run never makes findings new.
    # CROSS JOIN fixes SQLite's join order: from the version down to its findings, each
    # probed in the previous version's analyses through (analysis_id, fingerprint).
    """CREATE VIEW new_finding AS
        SELECT f.id, fe.name AS fetcher, p.name AS package, v.number AS version,
               pv.number AS previous_version, az.name AS analyzer, f.path, f.line,
               f."column", f.function, f.check_id, f.cwe, f.severity, f.message,
               f.fingerprint, f.rank, f.survived, w.kind AS waiver, w.comment AS waiver_comment
        FROM version v
        JOIN version pv ON pv.id = v.previous_id
        JOIN package p ON p.id = v.package_id
        JOIN fetcher fe ON fe.id = p.fetcher_id
        CROSS JOIN analysis a ON a.version_id = v.id
        JOIN analyzer az ON az.id = a.analyzer_id
        CROSS JOIN finding f ON f.analysis_id = a.id
        LEFT JOIN waiver w ON w.package_id = p.id AND w.fingerprint = f.fingerprint
        WHERE EXISTS (SELECT 1 FROM analysis pa JOIN analyzer paz ON paz.id = pa.analyzer_id
                      WHERE pa.version_id = pv.id AND paz.name = az.name AND pa.status = 'ok')
          AND NOT EXISTS (SELECT 1 FROM analysis pa
                          CROSS JOIN finding pf ON pf.analysis_id = pa.id AND pf.fingerprint = f.fingerprint
                          WHERE pa.version_id = pv.id)""",
    # Findings of the previous analyzed version that a version no longer has, where the
    # same analyzer completed on both.
    """CREATE VIEW fixed_finding AS
        SELECT pf.id, fe.name AS fetcher, p.name AS package, v.number AS version,
               pv.number AS previous_version, az.name AS analyzer, pf.path, pf.line,
               pf."column", pf.function, pf.check_id, pf.cwe, pf.severity, pf.message,
               pf.fingerprint, pf.rank, pf.survived, w.kind AS waiver, w.comment AS waiver_comment
        FROM version v
        JOIN version pv ON pv.id = v.previous_id
        JOIN package p ON p.id = v.package_id
        JOIN fetcher fe ON fe.id = p.fetcher_id
        CROSS JOIN analysis pa ON pa.version_id = pv.id
        JOIN analyzer az ON az.id = pa.analyzer_id
        CROSS JOIN finding pf ON pf.analysis_id = pa.id
        LEFT JOIN waiver w ON w.package_id = p.id AND w.fingerprint = pf.fingerprint
        WHERE EXISTS (SELECT 1 FROM analysis a JOIN analyzer naz ON naz.id = a.analyzer_id
                      WHERE a.version_id = v.id AND naz.name = az.name AND a.status = 'ok')
          AND NOT EXISTS (SELECT 1 FROM analysis a
                          CROSS JOIN finding f ON f.analysis_id = a.id AND f.fingerprint = pf.fingerprint
                          WHERE a.version_id = v.id)""",
]

def _replaced(statement: str, old: str, new: str) -> str:
    if old not in statement:
        raise AssertionError(f"{old!r} is not in the statement")
    return statement.replace(old, new)


# A finding is not new where the previous version's analysis could not analyze its file,
# nor fixed where the version's analysis could not: failed_files has a 'path: reason'
# line for each file an analyzer that compiles the code did not analyze.
NOT_UNANALYZED = "instr(char(10) || {analysis}.failed_files, char(10) || {finding}.path || ': ') = 0"
PER_FILE_VIEWS = [
    "DROP VIEW new_finding",
    "DROP VIEW fixed_finding",
    _replaced(FASTER_VIEWS[2], "AND pa.status = 'ok')",
              "AND pa.status = 'ok'\n                            AND "
              + NOT_UNANALYZED.format(analysis="pa", finding="f") + ")"),
    _replaced(FASTER_VIEWS[3], "AND a.status = 'ok')",
              "AND a.status = 'ok'\n                            AND "
              + NOT_UNANALYZED.format(analysis="a", finding="pf") + ")"),
]

FEWER_FINDING_INDEXES = [
    # Every query by analysis uses finding_rank or finding_analysis_fingerprint, which
    # begin with analysis_id (the foreign key's cascade too): this one only slowed inserts.
    "DROP INDEX finding_analysis",
]

LEASE_TOKENS = [
    # The token the monitor issued with a job: a heartbeat or result counts only with it
    # (kiskadee.store.queue); kept once the job is done, so a replayed result is a duplicate.
    "ALTER TABLE version ADD COLUMN lease_token TEXT NOT NULL DEFAULT ''",
]

FINDING_CWES = [
    # Every CWE a tool gives (flawfinder's 'CWE-119!/CWE-120'), comma-separated, the main
    # one (finding.cwe) first.
    "ALTER TABLE finding ADD COLUMN cwes TEXT NOT NULL DEFAULT ''",
    "UPDATE finding SET cwes = CAST(cwe AS TEXT) WHERE cwe IS NOT NULL",
]

WAIVED_FINDING_DETAIL = [
    # finding_detail as in migration 1, plus the finding's waiver, so the sqlite3 recipes can
    # leave out false positives (README, "Reading the results with sqlite3"). Only names no
    # finding column has: a query joining the view with finding stays unambiguous.
    "DROP VIEW finding_detail",
    """CREATE VIEW finding_detail AS
        SELECT f.id, fe.name AS fetcher, p.name AS package, v.number AS version,
               az.name AS analyzer, f.path, f.line, f."column", f.function,
               f.check_id, f.cwe, f.severity, f.message, f.fingerprint, f.rank,
               w.kind AS waiver, w.comment AS waiver_comment
        FROM finding f
        JOIN analysis a ON a.id = f.analysis_id
        JOIN analyzer az ON az.id = a.analyzer_id
        JOIN version v ON v.id = a.version_id
        JOIN package p ON p.id = v.package_id
        JOIN fetcher fe ON fe.id = p.fetcher_id
        LEFT JOIN waiver w ON w.package_id = p.id AND w.fingerprint = f.fingerprint""",
]

OUTBOX = [
    # Messages for the message bus, written in the transaction that stores or fails a version
    # (kiskadee.store.outbox), sent and deleted in id order by 'kiskadee publish'. message_id
    # is the message's id on the bus: a message sent again after a crash keeps it. A message
    # the bus can never take keeps its row, with the reason in error, and is skipped.
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at DATETIME NOT NULL,
        error TEXT NOT NULL DEFAULT '')""",
]

FINDING_CONTEXT = [
    # The source around each finding as the runner read it (kiskadee.analysis.context), so the
    # report and the exports show code without the tree: the lines joined with '\n', the number
    # of the first (0: none), and GitHub's primaryLocationLineHash of the finding's line.
    "ALTER TABLE finding ADD COLUMN context TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE finding ADD COLUMN context_line INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE finding ADD COLUMN line_hash TEXT NOT NULL DEFAULT ''",
]

# The release views (new_finding, fixed_finding) compare an analyzer only where its status
# is 'ok' on both versions: kiskadee.core.states.COMPLETED, which lineage and the diff use
# too (tests/unit/test_states.py checks they agree). Changing that definition takes a new
# migration that creates the views anew.
MIGRATIONS = [
    Migration(1, "initial schema", INITIAL_SCHEMA),
    Migration(2, "runners and the job queue view", RUNNERS),
    Migration(3, "coverage of analyzers that compile the code", COVERAGE),
    Migration(4, "release diffs: previous version, survival, waivers, new_finding view", RESULTS),
    Migration(5, "new_finding and fixed_finding from the version down", FASTER_VIEWS),
    Migration(6, "new_finding and fixed_finding leave out files an analyzer could not analyze", PER_FILE_VIEWS),
    Migration(7, "no separate finding index on analysis_id", FEWER_FINDING_INDEXES),
    Migration(8, "lease tokens: results and heartbeats only from the lease holder", LEASE_TOKENS),
    Migration(9, "every CWE of a finding", FINDING_CWES),
    Migration(10, "finding_detail shows the finding's waiver", WAIVED_FINDING_DETAIL),
    Migration(11, "an outbox of messages for the message bus", OUTBOX),
    Migration(12, "the source lines and line hash of each finding", FINDING_CONTEXT),
]

LATEST = MIGRATIONS[-1].number


def current_version(db: peewee.Database) -> int:
    """The schema version of an open database, 0 for an empty one."""
    if "schema_migration" not in db.get_tables():
        return 0
    row = db.execute_sql("SELECT MAX(number) FROM schema_migration").fetchone()
    return row[0] or 0


def upgrade(db: peewee.Database) -> List[Migration]:
    """Apply every pending migration, each in its own transaction; return those applied."""
    dialect = postgresql.from_sqlite if isinstance(db, peewee.PostgresqlDatabase) else str
    db.execute_sql(dialect(
        "CREATE TABLE IF NOT EXISTS schema_migration ("
        "number INTEGER PRIMARY KEY, title TEXT NOT NULL, applied_at DATETIME NOT NULL)"
    ))
    current = current_version(db)
    if current > LATEST:
        raise DatabaseError(
            f"the database is at schema {current}, newer than this kiskadee knows ({LATEST});"
            " upgrade kiskadee"
        )
    applied = []
    for migration in MIGRATIONS[current:]:
        with db.atomic():                   # holds the write lock: another upgrade waits, then finds it done
            if current_version(db) >= migration.number:
                continue
            for statement in migration.statements:
                db.execute_sql(dialect(statement))
            db.execute_sql(f"INSERT INTO schema_migration (number, title, applied_at) VALUES ({db.param},"
                           f" {db.param}, {db.param})", (migration.number, migration.title, utcnow()))
        log.info("applied migration %d: %s", migration.number, migration.title)
        applied.append(migration)
    return applied
