"""kiskadee's messages as fedora-messaging sees them: registered by entry point, the outbox's bodies valid by
their schema, readable by people, and read back by a consumer as the same message with the same id."""

import datetime
import importlib.metadata
import json

import jsonschema
import pytest
from builders import finding, ranked_runs
from fedora_messaging import message as messaging

from kiskadee.anitya import schema
from kiskadee.anitya.publisher import Undeliverable, _wire, to_message
from kiskadee.core.runs import AnalyzerRun
from kiskadee.store import outbox, queue
from kiskadee.store.models import OutboxMessage
from kiskadee.store.results import VersionKey

pytestmark = pytest.mark.both_databases

T0 = datetime.datetime(2026, 12, 1, 12, 0, 0)


def stored(db, package, version, runs):
    queue.record_analysis(VersionKey("debian", package, version), runs, db=db, publish=True)
    return OutboxMessage.select().order_by(OutboxMessage.id.desc()).first()


def flawfinder(*checks):
    return ranked_runs({"flawfinder": [finding("flawfinder", "src/a.c", n + 1, check) for n, check in enumerate(checks)]},
                       tool_version="2.0.19")


def test_the_message_classes_are_registered_under_their_schema_names():
    points = {point.name: point.value for point in importlib.metadata.entry_points(group="fedora.messages")
              if point.value.startswith("kiskadee.")}
    assert points == {"kiskadee.analysis.complete.v1": "kiskadee.anitya.schema:AnalysisCompleteV1",
                      "kiskadee.analysis.failed.v1": "kiskadee.anitya.schema:AnalysisFailedV1"}
    assert messaging.get_class("kiskadee.analysis.complete.v1") is schema.AnalysisCompleteV1
    assert messaging.get_name(schema.AnalysisFailedV1) == "kiskadee.analysis.failed.v1"


def test_the_outbox_writes_a_class_for_each_of_its_topics():
    assert set(schema.CLASSES) == set(outbox.TOPICS)
    assert {topic: cls.topic for topic, cls in schema.CLASSES.items()} == {t: t for t in outbox.TOPICS}


def test_the_body_schema_is_a_valid_draft_4_schema():
    jsonschema.Draft4Validator.check_schema(schema.BODY_SCHEMA)


def test_the_outbox_bodies_follow_the_schema_and_read_well(db):
    stored(db, "hello", "2.9", flawfinder("strcpy", "printf"))
    row = stored(db, "hello", "2.10", flawfinder("strcpy", "memcpy", "gets")
                 + [AnalyzerRun("cppcheck", "2.10", "failed", 3.0, error="cppcheck: internal error")])
    message = to_message(row, "org.example.prod")
    message.validate()
    assert isinstance(message, schema.AnalysisCompleteV1) and message.id == row.message_id
    assert message.topic == "org.example.prod.kiskadee.analysis.complete"
    assert message.summary == "kiskadee analyzed hello 2.10 (debian): 3 findings, 2 new and 1 fixed since 2.9"
    assert message.app_name == "kiskadee" and message.packages == ["hello"] and message.severity == messaging.INFO
    text = str(message)
    assert "Compared with 2.9." in text and "Report: debian/hello/2.10/index.html" in text
    assert "cppcheck 2.10: failed, 0 findings: cppcheck: internal error" in text
    assert "flawfinder 2.0.19: ok, 3 findings, 2 new, 1 fixed" in text


def test_a_failed_version_reads_as_a_warning_with_its_reason(db):
    row = stored(db, "jq", "1.7", [AnalyzerRun("flawfinder", "2.0.19", "timeout", 1800.0, error="timed out")])
    message = to_message(row, "")
    assert isinstance(message, schema.AnalysisFailedV1) and message.topic == "kiskadee.analysis.failed"
    assert message.severity == messaging.WARNING
    assert message.summary == "kiskadee could not analyze jq 1.7 (debian): flawfinder: timed out"


def test_a_consumer_reads_back_the_same_message_with_the_same_id(db):
    row = stored(db, "hello", "2.10", flawfinder("strcpy"))
    sent = to_message(row, "org.example.prod")
    routing_key, body, properties = _wire(sent)
    received = messaging.get_message(routing_key, properties, body)     # what fedora-messaging's consumer does
    assert type(received) is schema.AnalysisCompleteV1
    assert (received.id, received.topic, received.body) == (row.message_id, sent.topic, json.loads(row.body))
    assert properties.delivery_mode == 2 and properties.headers["fedora_messaging_schema"] == \
        "kiskadee.analysis.complete.v1"
    assert properties.headers["fedora_messaging_rpm_hello"] is True


@pytest.mark.parametrize("change, reason", [
    (lambda body: body.pop("package"), "'package' is a required property"),
    (lambda body: body.update(state="leased"), "'leased' is not one of"),
    (lambda body: body["analyses"][0].update(new="2"), "'2' is not valid under any of the given schemas"),
])
def test_a_body_that_breaks_the_schema_is_refused_saying_where(db, change, reason):
    row = stored(db, "hello", "3.0", flawfinder("strcpy"))
    body = json.loads(row.body)
    change(body)
    row.body = json.dumps(body)
    with pytest.raises(Undeliverable, match=reason):
        to_message(row, "")


def test_an_unknown_topic_is_refused(db):
    row = stored(db, "hello", "3.0", flawfinder("strcpy"))
    row.topic = "kiskadee.analysis.exploded"
    with pytest.raises(Undeliverable, match="no message class for the topic 'kiskadee.analysis.exploded'"):
        to_message(row, "")
