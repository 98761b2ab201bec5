"""Numbered schema migrations, applied in order by ``kiskadee db upgrade``.

Each migration is plain SQL so that the schema reads the same here as in
``sqlite3 .schema``. A migration never changes once released: a schema change
is a new migration at the end of ``MIGRATIONS``.
"""

import logging
from typing import List, NamedTuple

import peewee

from kiskadee.errors import DatabaseError
from kiskadee.models import utcnow

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

MIGRATIONS = [
    Migration(1, "initial schema", INITIAL_SCHEMA),
    Migration(2, "runners and the job queue view", RUNNERS),
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
    db.execute_sql(
        "CREATE TABLE IF NOT EXISTS schema_migration ("
        "number INTEGER PRIMARY KEY, title TEXT NOT NULL, applied_at DATETIME NOT NULL)"
    )
    current = current_version(db)
    if current > LATEST:
        raise DatabaseError(
            f"the database is at schema {current}, newer than this kiskadee knows ({LATEST});"
            " upgrade kiskadee"
        )
    applied = []
    for migration in MIGRATIONS[current:]:
        with db.atomic():
            for statement in migration.statements:
                db.execute_sql(statement)
            db.execute_sql(
                "INSERT INTO schema_migration (number, title, applied_at) VALUES (?, ?, ?)",
                (migration.number, migration.title, utcnow()),
            )
        log.info("applied migration %d: %s", migration.number, migration.title)
        applied.append(migration)
    return applied
