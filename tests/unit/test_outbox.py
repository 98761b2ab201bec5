"""The outbox: a message per stored or failed version, written in the transaction that stores it, and the
publisher's rules for sending it (order, deleting what the broker confirmed, keeping the rest), on a real
SQLite database. The broker is the third-party boundary: a fake ``send`` stands for it here; the real
RabbitMQ is in tests/integration/test_publish.py."""

import datetime
import json
import re
import uuid

import inproc
import peewee
import pytest
from builders import finding, ranked_runs
from inproc import exchange, inproc_settings, runner_socket, running_monitor

from kiskadee.anitya.publisher import BrokerUnavailable, Publisher
from kiskadee.config import from_mapping
from kiskadee.core.runs import AnalyzerRun
from kiskadee.results.html import site
from kiskadee.service import wire
from kiskadee.service.loop import Instant
from kiskadee.store import outbox, queue
from kiskadee.store.catalog import Catalog
from kiskadee.store.models import OutboxMessage, Version
from kiskadee.store.results import VersionKey

pytestmark = pytest.mark.both_databases

T0 = datetime.datetime(2026, 12, 1, 12, 0, 0)
NOW = Instant(1000.0, T0)
POLICY = queue.QueuePolicy(lease_seconds=60, max_attempts=2, backoff_seconds=10, publish=True)


def queued(version, package="hello", policy=POLICY):
    catalog = Catalog(policy)
    catalog.record({"fetcher": "debian", "package": package, "version": version, "source_url": "", "sha256": "",
                    "meta": {}}, T0)
    catalog.flush()


def run_job(db, fields, runs=(), policy=POLICY, now=T0):
    """Lease the next job and answer it as the runner holding the lease, in one transaction as the monitor does."""
    with db.atomic():
        job = queue.lease("r1", policy, now)
    with db.atomic():
        return queue.complete(job.id, dict(fields, runner="r1", lease=job.lease_token), runs, policy, now)


def messages():
    return [(row.topic, json.loads(row.body)) for row in OutboxMessage.select().order_by(OutboxMessage.id)]


def flawfinder_run(*checks):
    return ranked_runs({"flawfinder": [finding("flawfinder", "src/hello.c", 10 + n, check, "high" if n == 0 else "low")
                                       for n, check in enumerate(checks)]}, tool_version="2.0.19")


def test_a_stored_version_is_announced_with_its_counts_in_the_same_transaction(db):
    queued("2.9-1")
    assert run_job(db, {}, flawfinder_run("strcpy", "printf")) == "stored"
    queued("2.10-3")
    runs = flawfinder_run("strcpy", "sprintf", "memcpy") + [AnalyzerRun("cppcheck", "2.10", "failed", 2.5,
                                                                        error="cppcheck crashed")]
    assert run_job(db, {}, runs, now=T0 + datetime.timedelta(minutes=5)) == "stored"
    (topic1, first), (topic2, second) = messages()
    assert topic1 == topic2 == "kiskadee.analysis.complete"
    assert first["previous_version"] is None and first["new"] is None and first["findings"] == 2
    assert second["version"] == "2.10-3" and second["previous_version"] == "2.9-1"
    assert (second["findings"], second["new"], second["fixed"]) == (3, 2, 1)     # sprintf, memcpy new; printf fixed
    cppcheck, flawfinder = second["analyses"]
    assert flawfinder == {"analyzer": "flawfinder", "tool_version": "2.0.19", "status": "ok", "findings": 3,
                          "by_severity": {"high": 1, "low": 2}, "duration": 1.0, "error": "",
                          "new": 2, "fixed": 1}
    assert (cppcheck["status"], cppcheck["new"], cppcheck["error"]) == ("failed", None, "cppcheck crashed")
    assert second["report"] == "debian/hello/2.10-3/index.html" and second["state"] == "done"
    assert second["finished_at"] == "2026-12-01T12:05:00Z"
    ids = [row.message_id for row in OutboxMessage.select()]
    assert len(set(ids)) == 2 and all(uuid.UUID(i).version == 4 for i in ids)


def test_results_and_their_message_are_stored_together_or_not_at_all(db):
    queued("2.10-3")
    with db.atomic():
        job = queue.lease("r1", POLICY, T0)
    with pytest.raises(RuntimeError), db.atomic():
        queue.complete(job.id, {"runner": "r1", "lease": job.lease_token}, flawfinder_run("strcpy"), POLICY, T0)
        assert OutboxMessage.select().count() == 1
        raise RuntimeError("the monitor crashed before the commit")
    assert OutboxMessage.select().count() == 0 and Version.get().state == "leased"


def test_failures_are_announced_on_the_failed_topic(db):
    queued("1.0", package="broken")
    assert run_job(db, {"error": "tarball refused: a link escapes the tree"}) == "failed"
    queued("1.0", package="nowhere")
    assert run_job(db, {"error": "no source for this project", "unresolved": True}) == "unresolved"
    queued("1.0", package="silent")
    for attempt in range(POLICY.max_attempts):       # the runner goes silent every time
        with db.atomic():
            queue.lease("r1", POLICY, T0 + datetime.timedelta(minutes=10 * attempt))
        with db.atomic():
            queue.expire_leases(POLICY, T0 + datetime.timedelta(minutes=10 * attempt + 5))
    found = [(topic, body["package"], body["state"], body["error"]) for topic, body in messages()]
    assert found == [("kiskadee.analysis.failed", "broken", "failed", "tarball refused: a link escapes the tree"),
                     ("kiskadee.analysis.failed", "nowhere", "unresolved", "no source for this project"),
                     ("kiskadee.analysis.failed", "silent", "failed", "runner r1 went silent (attempt 2)")]


def test_a_transient_error_that_requeues_announces_nothing(db):
    queued("1.0")
    assert run_job(db, {"error": "mirror down", "transient": True}) == "requeued"
    assert messages() == []


def test_every_analyzer_failing_is_announced_as_failed_with_the_analyses(db):
    queued("1.0")
    run_job(db, {}, [AnalyzerRun("flawfinder", "2.0.19", "timeout", 1800.0, error="timed out after 1800 s")])
    ((topic, body),) = messages()
    assert topic == "kiskadee.analysis.failed" and body["state"] == "failed"
    assert body["analyses"][0]["status"] == "timeout" and body["error"] == "flawfinder: timed out after 1800 s"


def test_nothing_is_written_with_publishing_off_or_for_a_replayed_result(db):
    off = queue.QueuePolicy(lease_seconds=60)
    queued("1.0", policy=off)
    run_job(db, {}, flawfinder_run("strcpy"), policy=off)
    assert messages() == []
    queued("2.0")
    with db.atomic():
        job = queue.lease("r1", POLICY, T0)
    fields = {"runner": "r1", "lease": job.lease_token}
    for expected in ("stored", "duplicate"):            # the runner did not get the ack and sends again
        with db.atomic():
            assert queue.complete(job.id, fields, flawfinder_run("strcpy"), POLICY, T0) == expected
    assert len(messages()) == 1


def test_a_one_shot_analysis_is_announced_when_asked(db):
    version = queue.record_analysis(VersionKey("local", "hello", "2.10"), flawfinder_run("strcpy"), db=db,
                                    publish=True)
    ((topic, body),) = messages()
    assert (topic, body["fetcher"], body["version"], body["findings"]) == ("kiskadee.analysis.complete", "local",
                                                                          "2.10", 1)
    assert version.state == "done"


HOSTILE_NAMES = ["hello", "index.html", "libfoo++", "1:2.0+dfsg~rc1", "example.net/a b", "..", ".hidden", "", "é<script>",
                 "x" * 300, "\"onerror=alert(1)"]


def test_the_report_path_is_where_the_report_writes_the_version_page():
    assert outbox.report_path("debian", "hello", "2.10-3") == "debian/hello/2.10-3/index.html"
    assert outbox.report_path("anitya", "example.net/a b", "1:2.0~rc1") == \
        "anitya/example.net~2fa~20b/1~3a2.0~7erc1/index.html"
    for name in HOSTILE_NAMES:
        assert outbox.report_path("local", name, name) == f"local/{site.slug(name)}/{site.slug(name)}/index.html"
    # URL-safe as it is: letters, digits, '-._~' (unreserved), '+' (allowed in a path) and the slashes.
    assert all(re.fullmatch(r"[A-Za-z0-9._~+/-]+", outbox.report_path("f", n, n)) for n in HOSTILE_NAMES)


# --- the publisher's rules, the broker faked -----------------------------------------------------

class FakeBroker:
    """Stands for the broker: takes messages (recording them) until told to be down."""

    def __init__(self):
        self.received, self.down_after = [], None

    def send(self, message):
        if self.down_after is not None and len(self.received) >= self.down_after:
            raise BrokerUnavailable("connection refused")
        self.received.append(message)


def publisher_for(db, broker, **publish):
    settings = from_mapping({"database": {"path": db.database},
                             "publish": dict({"enabled": True, "retry_seconds": 30.0}, **publish)})
    return Publisher(settings, send=broker.send)


def stored_versions(db, count):
    for n in range(count):
        queued(f"1.{n}", package=f"p{n}")
        run_job(db, {}, flawfinder_run("strcpy"))


def test_the_publisher_sends_in_order_under_the_prefix_and_deletes_what_was_confirmed(db):
    stored_versions(db, 3)
    written = [row.message_id for row in OutboxMessage.select().order_by(OutboxMessage.id)]
    broker = FakeBroker()
    publisher = publisher_for(db, broker, topic_prefix="org.example.prod.")
    publisher.setup()
    publisher.step(NOW)
    assert [m.id for m in broker.received] == written
    assert {m.topic for m in broker.received} == {"org.example.prod.kiskadee.analysis.complete"}
    assert [m.body["package"] for m in broker.received] == ["p0", "p1", "p2"]
    assert OutboxMessage.select().count() == 0 and publisher.published == 3


def test_a_broker_that_is_down_delays_the_messages_and_loses_none(db):
    stored_versions(db, 5)
    broker = FakeBroker()
    broker.down_after = 2
    publisher = publisher_for(db, broker)
    publisher.setup()
    publisher.step(NOW)
    assert len(broker.received) == 2 and OutboxMessage.select().count() == 3     # the confirmed two deleted
    broker.down_after = None
    publisher.step(NOW.later(1))                        # before retry_seconds: waits, sends nothing
    assert len(broker.received) == 2
    publisher.step(NOW.later(31))
    assert [m.body["package"] for m in broker.received] == ["p0", "p1", "p2", "p3", "p4"]
    assert OutboxMessage.select().count() == 0


def test_a_message_its_schema_refuses_is_set_aside_and_the_next_ones_sent(db):
    stored_versions(db, 2)
    first = OutboxMessage.select().order_by(OutboxMessage.id).first()
    body = json.loads(first.body)
    body["findings"] = -1
    OutboxMessage.update(body=json.dumps(body)).where(OutboxMessage.id == first.id).execute()
    broker = FakeBroker()
    publisher = publisher_for(db, broker)
    publisher.setup()
    publisher.step(NOW)
    assert [m.body["package"] for m in broker.received] == ["p1"]
    kept = OutboxMessage.get()
    assert kept.message_id == first.message_id and "-1 is less than the minimum of 0" in kept.error
    assert outbox.waiting() == (0, 1)


def test_publishing_off_is_a_configuration_error_naming_the_key(db):
    with pytest.raises(Exception) as refused:
        Publisher(from_mapping({"database": {"path": db.database}}), send=FakeBroker().send)
    assert "[publish]" in str(refused.value) and "enabled = true" in str(refused.value)
    assert refused.value.exit_code == 3


def test_the_outbox_table_is_read_oldest_first_without_the_set_aside(db):
    for n in range(5):
        OutboxMessage.create(message_id=str(uuid.uuid4()), topic=outbox.COMPLETE, body="{}", created_at=T0)
    rows = outbox.pending(10)
    outbox.set_aside(rows[1].id, "bad")
    outbox.delete([rows[0].id, rows[2].id])
    assert [row.id for row in outbox.pending(10)] == [rows[3].id, rows[4].id]
    assert outbox.waiting() == (2, 1)
    with pytest.raises(peewee.IntegrityError):
        OutboxMessage.create(message_id=rows[3].message_id, topic=outbox.COMPLETE, body="{}", created_at=T0)


# --- the monitor ----------------------------------------------------------------------------------

def test_the_monitor_announces_a_stored_result_when_publishing_is_on(tmp_path, context):
    settings = inproc_settings(tmp_path, publish={"enabled": True})
    with running_monitor(settings, context) as monitor:
        inproc.announce(monitor, context, inproc.T0, "hello", "2.10", "local", source_url="/x")
        runner = runner_socket(context, "r1")
        job = exchange(monitor, runner, wire.encode("ready", runner="r1"))
        run = {"analyzer": "cppcheck", "tool_version": "2.10", "status": "ok", "duration": 1.0, "error": "",
               "findings": []}
        ack = exchange(monitor, runner, wire.encode("result", runner="r1", job=job.fields["job"],
                                                    lease=job.fields["lease"], runs=[run]))
        assert ack is not None and ack.type == "ack"
        assert [topic for topic, _ in messages()] == ["kiskadee.analysis.complete"]
