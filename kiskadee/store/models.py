"""The database models, bound to a database at run time by ``kiskadee.db.open_database``.

The tables are created by the numbered migrations in ``kiskadee.store.migrations``;
these models describe them for queries and must stay in step with them.
"""

import datetime

import peewee

from kiskadee.core.states import VersionState

database = peewee.DatabaseProxy()

def utcnow() -> datetime.datetime:
    """Now, in UTC without tzinfo: how every timestamp is stored."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Fetcher(BaseModel):
    name = peewee.TextField(unique=True)
    created_at = peewee.DateTimeField(default=utcnow)


class Package(BaseModel):
    fetcher = peewee.ForeignKeyField(Fetcher, backref="packages", on_delete="CASCADE")
    name = peewee.TextField()
    homepage = peewee.TextField(default="")
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("fetcher", "name"), True),)


class Version(BaseModel):
    """One version of a package, and the state of its analysis job."""

    package = peewee.ForeignKeyField(Package, backref="versions", on_delete="CASCADE")
    number = peewee.TextField()
    # A VersionState's value; only kiskadee.store.queue changes it, along core.states.TRANSITIONS.
    state = peewee.TextField(default=VersionState.SEEN.value)
    attempts = peewee.IntegerField(default=0)
    not_before = peewee.DateTimeField(null=True)    # backoff: do not lease before this
    leased_by = peewee.TextField(default="")
    lease_expires = peewee.DateTimeField(null=True)
    lease_token = peewee.TextField(default="")      # issued with the job; results must carry it (migration 8)
    source_url = peewee.TextField(default="")
    sha256 = peewee.TextField(default="")
    error = peewee.TextField(default="")
    event = peewee.TextField(default="")            # the source event as JSON, for the runner
    created_at = peewee.DateTimeField(default=utcnow)
    queued_at = peewee.DateTimeField(null=True)
    started_at = peewee.DateTimeField(null=True)
    finished_at = peewee.DateTimeField(null=True)
    # The analyzed version before this one by the package's version rules (migration 4).
    previous = peewee.ForeignKeyField("self", null=True, on_delete="SET NULL", backref="next_versions")

    class Meta:
        indexes = ((("package", "number"), True),)


class Analyzer(BaseModel):
    name = peewee.TextField()
    version = peewee.TextField()

    class Meta:
        indexes = ((("name", "version"), True),)


class Analysis(BaseModel):
    """One analyzer's run over one version."""

    version = peewee.ForeignKeyField(Version, backref="analyses", on_delete="CASCADE")
    analyzer = peewee.ForeignKeyField(Analyzer, backref="analyses")
    status = peewee.TextField()     # an AnalysisStatus's value: ok, failed, timeout, skipped
    started_at = peewee.DateTimeField(default=utcnow)
    duration = peewee.FloatField(default=0.0)
    finding_count = peewee.IntegerField(default=0)
    error = peewee.TextField(default="")
    # Coverage of analyzers that compile the code (migration 3); NULL counts for the others.
    mode = peewee.TextField(default="")                 # per-file, autotools, cmake, meson
    files_analyzed = peewee.IntegerField(null=True)
    files_failed = peewee.IntegerField(null=True)
    fallback = peewee.TextField(default="")             # why build mode was not used
    failed_files = peewee.TextField(default="")         # 'path: reason' lines

    class Meta:
        indexes = ((("version", "analyzer"), True),)


class Finding(BaseModel):
    analysis = peewee.ForeignKeyField(Analysis, backref="findings", on_delete="CASCADE")
    path = peewee.TextField()
    line = peewee.IntegerField(default=0)
    column = peewee.IntegerField(default=0)
    function = peewee.TextField(default="")
    check_id = peewee.TextField()
    cwe = peewee.IntegerField(null=True)
    cwes = peewee.TextField(default="")         # every CWE, the main one first: '119,120' (migration 9)
    severity = peewee.TextField()
    message = peewee.TextField()
    fingerprint = peewee.TextField()
    rank = peewee.FloatField(default=0.0)
    survived = peewee.IntegerField(default=0)    # earlier analyzed versions with this fingerprint (migration 4)
    # The source around the finding as the runner read it (migration 12): lines joined with '\n',
    # the number of the first (0: none), GitHub's primaryLocationLineHash of its line.
    context = peewee.TextField(default="")
    context_line = peewee.IntegerField(default=0)
    line_hash = peewee.TextField(default="")


class Runner(BaseModel):
    """A runner as the monitor last heard from it."""

    name = peewee.TextField(unique=True)
    state = peewee.TextField(default="idle")        # idle, busy, gone
    version = peewee.ForeignKeyField(Version, null=True, on_delete="SET NULL")
    activity = peewee.TextField(default="")
    last_seen = peewee.DateTimeField(default=utcnow)


class Waiver(BaseModel):
    """A person's verdict on a finding; it holds for every version of the package with that fingerprint."""

    package = peewee.ForeignKeyField(Package, backref="waivers", on_delete="CASCADE")
    fingerprint = peewee.TextField()
    kind = peewee.TextField()                   # false-positive, intentional, bug
    comment = peewee.TextField(default="")
    author = peewee.TextField(default="")
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("package", "fingerprint"), True),)


class OutboxMessage(BaseModel):
    """A message for the message bus, waiting for 'kiskadee publish' (kiskadee.store.outbox; migration 11)."""

    message_id = peewee.TextField(unique=True)      # a uuid, the message's id on the bus, kept when sent again
    topic = peewee.TextField()                      # without the configured prefix: kiskadee.analysis.complete
    body = peewee.TextField()                       # JSON, as the message schema (kiskadee.anitya.schema) says
    created_at = peewee.DateTimeField(default=utcnow)
    error = peewee.TextField(default="")            # why the bus can never take it; such a message is skipped

    class Meta:
        table_name = "outbox"


MODELS = (Fetcher, Package, Version, Analyzer, Analysis, Finding, Runner, Waiver, OutboxMessage)
