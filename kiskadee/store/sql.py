"""Plain SQL for the hot paths, written with ``?`` marks whatever the database driver wants.

Building a peewee query costs far more than SQLite takes to run a simple
statement, so the paths that record thousands of rows (the catalog, storing
findings, lineage) use these instead; everything else goes through the models.
"""

from typing import Iterable, Sequence

import peewee

from kiskadee.store import postgresql
from kiskadee.store.models import database


def _marked(statement: str) -> str:
    """``statement`` with the database driver's parameter mark for each ``?``."""
    return statement.replace("?", database.param)


def execute(statement: str, *params):
    """Run one statement; the cursor, to iterate over its rows."""
    return database.execute_sql(_marked(statement), params)


def execute_many(statement: str, rows: Iterable[Sequence]) -> int:
    """Run one statement for each of ``rows``; how many rows it changed (an ignored INSERT changes none)."""
    with peewee.__exception_wrapper__:              # the driver's errors as peewee's, as execute_sql raises them
        if isinstance(database.obj, postgresql.WriterLockedPostgresql):
            return postgresql.execute_many(database.obj, _marked(statement), rows)
        cursor = database.cursor()
        cursor.executemany(_marked(statement), rows)
        return cursor.rowcount
