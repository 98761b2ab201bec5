"""The fedora-messaging consumer against a real RabbitMQ: real Anitya messages to the monitor's database.

The consumer is the real ``fedora-messaging consume`` command with the
shipped ``packaging/fedora-messaging/kiskadee.toml``, changed only in the
broker's address and the queue's name. The messages are published with the
real ``fedora-messaging publish`` command: the v2 bodies as anitya-schema's
``ProjectVersionUpdatedV2`` (validated on both sides, as Anitya publishes
them), the flat v1 body as a plain message (anitya-schema has no class for
that old layout).
"""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from anitya_schema import ProjectVersionUpdatedV2
from fedora_messaging.message import Message, dumps
from harness import Suite, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "anitya"
SHIPPED = ROOT / "packaging" / "fedora-messaging" / "kiskadee.toml"
PLACEHOLDER_QUEUE = "00000000-0000-0000-0000-000000000000"
V1 = "org.release-monitoring.prod.anitya.project.version.update"
V2 = V1 + ".v2"
BIN = Path(sys.executable).parent


class Consumer:
    """``fedora-messaging consume`` with kiskadee's callback, and a way to publish to its broker."""

    def __init__(self, suite: Suite, broker):
        self.suite, self.broker = suite, broker
        self.config = suite.root / "fedora-messaging.toml"
        shipped = SHIPPED.read_text()
        assert shipped.count('amqp_url = "amqps://') == 1 and PLACEHOLDER_QUEUE in shipped
        self.config.write_text(
            shipped.replace(shipped[shipped.index('amqp_url = "'):].split("\n")[0], f'amqp_url = "{broker.url}"')
            .replace(PLACEHOLDER_QUEUE, str(uuid.uuid4())))

    def start(self) -> None:
        env = dict(os.environ, KISKADEE_CONFIG=str(self.suite.config))
        self.suite.processes["consumer"] = subprocess.Popen(
            [str(BIN / "fedora-messaging"), "--conf", str(self.config), "consume"], env=env,
            stdout=subprocess.DEVNULL, stderr=open(self.suite.root / "consumer.log", "ab"))
        wait_until(lambda: "Successfully registered AMQP consumer" in self.log(), 90, "the consumer's queue")

    def publish(self, *messages: Message) -> None:
        """Publish with the real 'fedora-messaging publish' command."""
        lines = self.suite.root / "messages.jsonl"
        lines.write_text(dumps(list(messages)))
        publisher = self.suite.root / "publisher.toml"
        publisher.write_text(f'amqp_url = "{self.broker.url}"\n')
        done = subprocess.run([str(BIN / "fedora-messaging"), "--conf", str(publisher), "publish", str(lines)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr

    def log(self) -> str:
        return self.suite.log("consumer")


@pytest.fixture
def consumer(short_tmp, rabbitmq):  # noqa: F811 (the fixture imported above)
    suite = Suite(short_tmp, extra="[anitya]\nretry_seconds = 1.0\n")
    yield Consumer(suite, rabbitmq)
    suite.stop()


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def real_messages() -> list:
    v1 = fixture("fedmsg-v1-aspell.json")
    return [Message(topic=v1["topic"], body=v1["msg"])] + [
        ProjectVersionUpdatedV2(topic=V2, body=fixture(name))
        for name in ("v2-fedora_mapping.json", "v2-fedora_mapping_no_stable.json", "v2-no_mapping.json")]


def anitya_versions(suite: Suite) -> dict:
    rows = suite.rows("SELECT p.name, v.number, v.event FROM version v JOIN package p ON p.id = v.package_id "
                      "JOIN fetcher f ON f.id = p.fetcher_id WHERE f.name = 'anitya'")
    return {(name, number): json.loads(event)["meta"] for name, number, event in rows}


def test_real_anitya_messages_reach_the_monitor_database_through_fedora_messaging(consumer):
    consumer.suite.start_monitor()
    consumer.start()
    consumer.publish(*real_messages())
    expected = {("aspell", "0.60.6.1"), ("flatpak", "1.0.4"), ("pg-semver", "0.17.0")}
    wait_until(lambda: set(anitya_versions(consumer.suite)) == expected, 30, "the three versions recorded")
    flatpak = anitya_versions(consumer.suite)[("flatpak", "1.0.4")]
    assert flatpak["backend"] == "GitHub" and flatpak["version_url"] == "flatpak/flatpak"
    assert flatpak["topic"] == V2 and len(flatpak["distributions"]) == 4
    wait_until(lambda: consumer.log().count("Successfully consumed message from topic") == 4, 10,
               "four messages acknowledged to the broker")


def test_a_malformed_message_is_dropped_and_the_next_one_delivered(consumer):
    consumer.suite.start_monitor()
    consumer.start()
    good = fixture("v2-no_mapping.json")
    bad_id = fixture("v2-no_mapping.json")
    bad_id["project"]["id"] = "18163"
    consumer.publish(Message(topic=V2, body={"project": {"name": "broken"}}),   # plain messages: not
                     Message(topic=V2, body=bad_id),                            # validated by the broker's side
                     ProjectVersionUpdatedV2(topic=V2, body=good))
    wait_until(lambda: ("pg-semver", "0.17.0") in anitya_versions(consumer.suite), 30, "the good message recorded")
    log = consumer.log()
    assert "anitya consumer dropped a message (malformed; 1 dropped so far): " + V2 in log
    assert "the body must contain ['distro', 'message'] properties" in log
    assert "anitya consumer dropped a message (malformed; 2 dropped so far)" in log
    assert "project.id must be integer" in log
    assert log.count("Consumer requested message id") == 2          # fedora-messaging's Drop: discarded
    assert consumer.suite.processes["consumer"].poll() is None
    assert list(anitya_versions(consumer.suite)) == [("pg-semver", "0.17.0")]


def test_messages_wait_in_the_queue_while_the_monitor_is_down(consumer):
    consumer.start()                                # no monitor: the callback returns messages (Nack)
    consumer.publish(*real_messages())
    wait_until(lambda: "Returning message id" in consumer.log(), 30, "a message returned to the queue")
    assert "returning message" in consumer.log() and "no monitor is listening" in consumer.log()
    consumer.suite.start_monitor()
    wait_until(lambda: len(anitya_versions(consumer.suite)) == 3, 60, "the three versions recorded")
    wait_until(lambda: consumer.log().count("Successfully consumed message from topic") == 4, 10,
               "every message acknowledged once recorded")
