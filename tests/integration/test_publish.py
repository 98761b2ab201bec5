"""``kiskadee publish`` against a real RabbitMQ: every stored result reaches a consumer, through a publisher
killed mid-way and a broker stopped and started.

The results are stored by the queue functions the monitor calls (lease, then
complete, one transaction each) with publishing on, in this process, while the
real ``kiskadee publish`` command runs next to it on the same SQLite file. The
broker is one of this module's own (tests/rabbitmq_broker.py's ``Broker``),
since the test stops and starts it. The consumer is a durable queue bound
before anything is published, as a subscriber's would be, read with pika and
each message decoded by fedora-messaging (schema checked) as its consumers do.
"""

import contextlib
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import pika
import pytest
from builders import finding
from fedora_messaging import message as messaging
from harness import wait_until, write_config
from rabbitmq_broker import Broker

from kiskadee.anitya.schema import AnalysisCompleteV1
from kiskadee.core.runs import AnalyzerRun
from kiskadee.store import queue
from kiskadee.store.catalog import Catalog
from kiskadee.store.db import close_database, open_database

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]

PREFIX = "org.example.test"
POLICY = queue.QueuePolicy(analyze="every", publish=True)
T0 = datetime.datetime(2026, 12, 1, 12, 0, 0)


@pytest.fixture(scope="module")
def broker():
    """A broker of this module's own: the test stops and starts it."""
    own = Broker(Path(tempfile.mkdtemp(prefix="kkpub")))
    own.start()
    yield own
    own.stop()
    shutil.rmtree(own.root, ignore_errors=True)


class Subscriber:
    """A durable queue bound to kiskadee's topics under the prefix, read on demand."""

    def __init__(self, url: str):
        self.url, self.queue = url, f"kiskadee-test-{uuid.uuid4()}"
        self.received = []          # (message id, package, version) per delivery, duplicates included
        with amqp_channel(self.url) as channel:
            channel.queue_declare(self.queue, durable=True)
            channel.queue_bind(self.queue, "amq.topic", routing_key=f"{PREFIX}.kiskadee.analysis.#")

    def ids(self) -> set:
        return {message_id for message_id, _, _ in self.received}

    def drain(self) -> int:
        """Take every message waiting in the queue, decoded as fedora-messaging's consumers do; how many."""
        taken = 0
        with amqp_channel(self.url) as channel:
            while True:
                method, properties, body = channel.basic_get(self.queue, auto_ack=True)
                if method is None:
                    return taken
                message = messaging.get_message(method.routing_key, properties, body)
                assert type(message) is AnalysisCompleteV1 and message.topic == f"{PREFIX}.kiskadee.analysis.complete"
                self.received.append((message.id, message.body["package"], message.body["version"]))
                taken += 1


@contextlib.contextmanager
def amqp_channel(url: str):
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield connection.channel()
    finally:
        connection.close()


class Results:
    """Stores analysis results with publishing on, as the monitor does, one transaction each."""

    def __init__(self, path: Path):
        self.db = open_database(str(path))
        self.stored = 0

    def store(self, count: int) -> None:
        for _ in range(count):
            number = f"1.{self.stored}"
            catalog = Catalog(POLICY)
            catalog.record({"fetcher": "debian", "package": "hello", "version": number, "source_url": "",
                            "sha256": "", "meta": {}}, T0)
            catalog.flush()
            with self.db.atomic():
                job = queue.lease("r1", POLICY, T0)
            runs = [AnalyzerRun("flawfinder", "2.0.19", "ok", 1.0,
                                findings=[finding("flawfinder", "src/hello.c", 1, f"check{self.stored % 3}")])]
            with self.db.atomic():
                outcome = queue.complete(job.id, {"runner": "r1", "lease": job.lease_token}, runs, POLICY, T0)
            assert outcome == "stored"
            self.stored += 1

    def failing_job(self):
        """A job leased for jq 1.7, to fail as the monitor does when it cannot send it."""
        catalog = Catalog(POLICY)
        catalog.record({"fetcher": "debian", "package": "jq", "version": "1.7", "source_url": "", "sha256": "",
                        "meta": {}}, T0)
        catalog.flush()
        with self.db.atomic():
            return queue.lease("r1", POLICY, T0)

    def outbox(self) -> set:
        """The ids in the outbox, read without a transaction (which would take the write lock)."""
        return {message_id for (message_id,) in self.db.execute_sql("SELECT message_id FROM outbox")}


class PublisherProcess:
    """The real ``kiskadee publish`` command on the test's configuration."""

    def __init__(self, root: Path):
        self.root, self.process = root, None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "kiskadee", "-c", str(self.root / "kiskadee.toml"),
                                         "publish"], stdout=subprocess.DEVNULL,
                                        stderr=open(self.root / "publisher.log", "ab"))

    def kill(self, sig=signal.SIGKILL) -> int:
        self.process.send_signal(sig)
        return self.process.wait(30)

    def log(self) -> str:
        return (self.root / "publisher.log").read_text(errors="replace")


@pytest.fixture
def setup(broker, short_tmp):
    (short_tmp / "fedora-messaging.toml").write_text(f'amqp_url = "{broker.url}"\n')
    write_config(short_tmp / "kiskadee.toml", {
        "database": f'path = "{short_tmp / "k.db"}"',
        "publish": f'enabled = true\ntopic_prefix = "{PREFIX}"\n'
                   f'messaging_config = "{short_tmp / "fedora-messaging.toml"}"\nretry_seconds = 1.0',
    })
    results = Results(short_tmp / "k.db")
    publisher = PublisherProcess(short_tmp)
    yield results, publisher, Subscriber(broker.url)
    if publisher.process and publisher.process.poll() is None:
        publisher.kill()
    close_database(results.db)


def test_every_result_reaches_the_consumer_through_a_killed_publisher_and_a_broker_restart(broker, setup):
    results, publisher, subscriber = setup
    results.store(300)
    stored_first = results.outbox()

    # 1. The publisher is killed while it sends: what the broker confirmed and the outbox still holds
    #    is sent again after the restart, with the same id.
    publisher.start()
    with amqp_channel(subscriber.url) as channel:
        def frozen_with_sent_messages_not_deleted() -> bool:
            """Stop the publisher where the broker holds messages the outbox still has; else let it go on."""
            publisher.process.send_signal(signal.SIGSTOP)
            deleted = 300 - len(results.outbox())
            queued = channel.queue_declare(subscriber.queue, passive=True).method.message_count
            if 0 < deleted < queued - 2 and queued < 300:
                return True
            publisher.process.send_signal(signal.SIGCONT)
            return False
        wait_until(frozen_with_sent_messages_not_deleted, 60, "a publisher between sending and deleting",
                   interval=0.002)
    assert publisher.kill() == -signal.SIGKILL
    left = results.outbox()
    assert 0 < len(left) < 300, "the publisher was not killed mid-way"
    subscriber.drain()
    before_kill = subscriber.ids()
    resent = before_kill & left                 # confirmed by the broker, not yet deleted
    assert before_kill | left == stored_first   # nothing lost at the kill
    publisher.start()
    results.store(50)
    wait_until(lambda: not results.outbox(), 60, "the outbox sent")

    # 2. The broker stops: the messages wait in the outbox; once it is back they go out.
    broker.stop()
    results.store(50)
    waiting = results.outbox()
    wait_until(lambda: "the outbox keeps the messages, trying again every 1 s" in publisher.log(), 30,
               "the publisher to notice the broker is away")
    assert results.outbox() == waiting and len(waiting) == 50
    broker.start()
    wait_until(lambda: not results.outbox(), 90, "the outbox sent after the broker came back")
    wait_until(lambda: subscriber.drain() >= 0 and len(subscriber.ids()) == results.stored, 30,
               "every message at the consumer")
    assert publisher.kill(signal.SIGTERM) == 0
    assert "publisher stopped:" in publisher.log()

    deliveries = Counter(message_id for message_id, _, _ in subscriber.received)
    versions = {(package, version) for _, package, version in subscriber.received}
    duplicates = sum(deliveries.values()) - len(deliveries)
    figures = (f"stored {results.stored}, published (deliveries seen) {sum(deliveries.values())}, distinct ids "
               f"{len(deliveries)}, duplicates {duplicates} (resent after the kill: {len(resent)})")
    print(figures)      # pytest -s shows them
    assert len(deliveries) == results.stored == 400
    assert versions == {("hello", f"1.{n}") for n in range(400)}
    assert len(resent) >= 3 and all(deliveries[message_id] == 2 for message_id in resent)   # each once more
    assert duplicates == len(resent)


def test_publish_once_exits_7_while_the_broker_is_unreachable_and_keeps_the_messages(setup, short_tmp):
    results, _, _ = setup
    (short_tmp / "fedora-messaging.toml").write_text('amqp_url = "amqp://guest:guest@127.0.0.1:1/%2F"\n')
    results.store(3)
    done = subprocess.run([sys.executable, "-m", "kiskadee", "-c", str(short_tmp / "kiskadee.toml"), "publish",
                           "--once"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 7, done.stderr
    assert "cannot publish to the broker at 127.0.0.1:1" in done.stderr
    assert "3 waiting" in done.stderr and len(results.outbox()) == 3


def readme_block(after: str) -> str:
    """The README's indented block that follows the line ending with ``after``, unindented."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(re.escape(after) + r"\n\n((?:(?:    .*)?\n)+)", readme)
    assert block, f"README has no block after {after!r}"
    return "\n".join(line[4:] for line in block.group(1).splitlines()) + "\n"


def test_the_readme_subscriber_gets_the_events_with_their_summaries(broker, setup, short_tmp):
    """The README's consume configuration and callback, run by the real 'fedora-messaging consume'."""
    results, _, _ = setup
    placeholder = "kiskadee-events-00000000-0000-0000-0000-000000000000"
    configuration = readme_block("`fedora-messaging consume` configuration bound to the events:")
    assert placeholder in configuration and 'amqp_url = "amqps://consumer:@broker.example.org/%2Fpubsub"' in configuration
    (short_tmp / "consume.toml").write_text(
        configuration.replace("amqps://consumer:@broker.example.org/%2Fpubsub", broker.url)
        .replace(placeholder, f"kiskadee-events-{uuid.uuid4()}").replace("org.example.prod", PREFIX))
    (short_tmp / "mymodule.py").write_text(readme_block("and a callback that deduplicates (a message sent again has "
                                                        "the same id):"))
    consumer = subprocess.Popen([str(Path(sys.executable).parent / "fedora-messaging"), "--conf",
                                 str(short_tmp / "consume.toml"), "consume"],
                                env=dict(os.environ, PYTHONPATH=str(short_tmp), PYTHONUNBUFFERED="1"),
                                stdout=open(short_tmp / "consumer.out", "wb"),
                                stderr=open(short_tmp / "consumer.log", "wb"))
    try:
        wait_until(lambda: "Successfully registered AMQP consumer" in (short_tmp / "consumer.out").read_text(), 60,
                   "the consumer's queue")
        results.store(2)
        job = results.failing_job()
        with results.db.atomic():
            queue.fail(job, "the monitor could not send this job: ZMQError", T0, publish=True)
        done = subprocess.run([sys.executable, "-m", "kiskadee", "-c", str(short_tmp / "kiskadee.toml"), "publish",
                               "--once"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        expected = ["kiskadee analyzed hello 1.0 (debian): 1 findings",
                    "kiskadee analyzed hello 1.1 (debian): 1 findings, 1 new and 1 fixed since 1.0",
                    "new findings: https://reports.example.org/kiskadee/debian/hello/1.1/index.html",
                    "kiskadee could not analyze jq 1.7 (debian): the monitor could not send this job: ZMQError"]
        def printed():     # fedora-messaging's own log lines go to standard output too, in brackets
            return [line for line in (short_tmp / "consumer.out").read_text().splitlines() if line[:1] != "["]
        wait_until(lambda: len(printed()) >= len(expected), 30, "the callback's lines")
        assert printed() == expected
    finally:
        consumer.terminate()
        consumer.wait(30)
