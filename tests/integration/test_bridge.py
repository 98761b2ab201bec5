"""The Anitya bridge in a real fedmsg-hub: real Anitya messages from a local publisher to the monitor's database.

The hub is the real ``fedmsg-hub`` command; it loads ``AnityaConsumer``
through its ``moksha.consumer`` entry point, switched on by the shipped
``packaging/fedmsg.d/kiskadee.py`` (copied unchanged into the hub's
``fedmsg.d/``, next to a file naming the publisher as the only endpoint).
The publisher is a ZeroMQ XPUB socket on an ipc path, which tells the test
when the hub has subscribed, so no message is published into the void.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from harness import Suite, wait_until

from kiskadee.anitya.messages import normalize
from kiskadee.anitya.outbox import STOP_SECONDS, Outbox, Tally

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "anitya"
PREFIX = "org.release-monitoring.prod.anitya.project.version.update"
V1, V2 = PREFIX, PREFIX + ".v2"
V2_FIXTURES = ("v2-fedora_mapping.json", "v2-fedora_mapping_no_stable.json", "v2-no_mapping.json")
SUBSCRIBE_SECONDS = 90          # the hub imports Twisted, moksha and fedmsg: some seconds, more on a busy machine
BURST = 200                     # messages published at once in the shutdown tests
EXIT_SECONDS = 30               # a stopping hub exits within this (systemd's default stop timeout is 90 s)

HUB_CONFIG = """\
config = dict(
    endpoints={{"anitya-test": ["{endpoint}"]}},
    zmq_enabled=True, validate_signatures=False, sign_messages=False, environment="dev",
    logging=dict(version=1,
        formatters=dict(bare={{"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}}),
        handlers=dict(console={{"class": "logging.StreamHandler", "formatter": "bare",
                                "stream": "ext://sys.stderr"}}),
        loggers=dict(kiskadee={{"level": "INFO", "propagate": False, "handlers": ["console"]}},
                     moksha={{"level": "INFO", "propagate": False, "handlers": ["console"]}})),
)
"""


class Hub:
    """A fedmsg-hub process running kiskadee's bridge, and the publisher it listens to."""

    def __init__(self, suite: Suite):
        self.suite = suite
        self.dir = suite.root / "hub"
        (self.dir / "fedmsg.d").mkdir(parents=True)
        self.endpoint = f"ipc://{suite.root / 'pub.sock'}"
        (self.dir / "fedmsg.d" / "endpoints.py").write_text(HUB_CONFIG.format(endpoint=self.endpoint))
        shutil.copy(ROOT / "packaging" / "fedmsg.d" / "kiskadee.py", self.dir / "fedmsg.d" / "kiskadee.py")
        self.context = zmq.Context()
        self.publisher = self.context.socket(zmq.XPUB)
        self.publisher.setsockopt(zmq.SNDHWM, 0)
        self.publisher.bind(self.endpoint)

    def start(self) -> None:
        env = dict(os.environ, HOME=str(self.dir), KISKADEE_CONFIG=str(self.suite.config))
        env.pop("VIRTUAL_ENV", None)            # the hub would read $VIRTUAL_ENV/etc/fedmsg.d/ too
        self.suite.processes["hub"] = subprocess.Popen(
            [str(Path(sys.executable).parent / "fedmsg-hub")], cwd=self.dir, env=env,
            stdout=subprocess.DEVNULL, stderr=open(self.suite.root / "hub.log", "ab"))
        if not self.publisher.poll(SUBSCRIBE_SECONDS * 1000):
            raise AssertionError(f"fedmsg-hub did not subscribe within {SUBSCRIBE_SECONDS} s:\n{self.log()}")
        assert self.publisher.recv() == b"\x01" + V1.encode()

    def publish(self, topic: str, body) -> None:
        """Send a fedmsg envelope holding ``body``, or ``body`` as it is if it is bytes."""
        if not isinstance(body, bytes):
            body = json.dumps({"topic": topic, "msg": body, "i": 1, "timestamp": time.time(),
                               "msg_id": f"test-{time.monotonic_ns()}", "username": "anitya"}).encode()
        self.publisher.send_multipart([topic.encode(), body])

    def log(self) -> str:
        return self.suite.log("hub")

    def reported(self, text: str) -> bool:
        return text in self.log()

    def terminate(self) -> float:
        """SIGTERM, as systemd stops the hub; the seconds until it exited (AssertionError if it did not)."""
        hub, start = self.suite.processes["hub"], time.monotonic()
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"fedmsg-hub still running {EXIT_SECONDS} s after SIGTERM:\n{self.log()}") from None
        return time.monotonic() - start

    def close(self) -> None:
        self.publisher.close(linger=0)
        self.context.term()


@pytest.fixture
def bridge(short_tmp):
    suite = Suite(short_tmp, extra="[anitya]\nreport_seconds = 0.5\nretry_seconds = 0.5\n")
    hub = Hub(suite)
    yield hub
    suite.stop()
    hub.close()


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def anitya_versions(suite: Suite) -> dict:
    """(package, version) -> the event's meta, for every version the monitor recorded from Anitya."""
    rows = suite.rows("SELECT p.name, v.number, v.event FROM version v JOIN package p ON p.id = v.package_id "
                      "JOIN fetcher f ON f.id = p.fetcher_id WHERE f.name = 'anitya'")
    return {(name, number): json.loads(event)["meta"] for name, number, event in rows}


def renamed(number: int) -> dict:
    """The real v2 message of pg-semver 0.17.0, for a project named pg-semver-NUMBER."""
    body = fixture("v2-no_mapping.json")
    body["project"]["name"] = body["message"]["project"]["name"] = f"pg-semver-{number}"
    return body


def publish_burst(hub: Hub) -> set:
    """BURST messages at once, each for a project of its own; the (package, version) pairs they announce."""
    for number in range(BURST):
        hub.publish(V2, renamed(number))
    return {(f"pg-semver-{number}", "0.17.0") for number in range(BURST)}


def anitya_rows(suite: Suite) -> list:
    """Every Anitya (package, version) row in the database, duplicates included, sorted."""
    return sorted(suite.rows("SELECT p.name, v.number FROM version v JOIN package p ON p.id = v.package_id "
                             "JOIN fetcher f ON f.id = p.fetcher_id WHERE f.name = 'anitya'"))


def publish_fixtures(hub: Hub) -> None:
    """The real v1 fedmsg envelope as recorded, then the real v2 bodies in envelopes."""
    hub.publish(V1, (FIXTURES / "fedmsg-v1-aspell.json").read_bytes())
    for name in V2_FIXTURES:
        hub.publish(V2, fixture(name))


def test_real_anitya_messages_reach_the_monitor_database_through_fedmsg_hub(bridge):
    bridge.suite.start_monitor()
    bridge.start()
    publish_fixtures(bridge)
    expected = {("aspell", "0.60.6.1"), ("flatpak", "1.0.4"), ("pg-semver", "0.17.0")}
    wait_until(lambda: set(anitya_versions(bridge.suite)) == expected, 30, "the three versions recorded")
    aspell = anitya_versions(bridge.suite)[("aspell", "0.60.6.1")]
    assert aspell["project_id"] == 5 and aspell["backend"] == "GNU project"
    assert aspell["distributions"] == [{"distro": "Fedora", "package_name": "aspell"}]
    assert anitya_versions(bridge.suite)[("flatpak", "1.0.4")]["topic"] == V2
    assert bridge.suite.states()["flatpak 1.0.4"] == "queued"
    wait_until(lambda: bridge.reported("anitya bridge: received 4, forwarded 4, dropped 0, waiting 0"),
               10, "the bridge's report of four messages forwarded")


def test_malformed_messages_are_dropped_counted_and_the_hub_keeps_running(bridge):
    bridge.suite.start_monitor()
    bridge.start()
    good = fixture("v2-no_mapping.json")
    no_message = {key: value for key, value in good.items() if key != "message"}
    bad_id = json.loads(json.dumps(good))
    bad_id["project"]["id"] = "18163"
    bridge.publish(V2, b"this is not JSON {")
    bridge.publish(V2, no_message)
    bridge.publish(V2, bad_id)
    bridge.publish(V2, b'{"topic": "x", "msg": "' + b"A" * (2 * 1024 * 1024) + b'"}')
    bridge.publish(V2, ["a", "list"])
    bridge.publish(V2 + "-preview", good)           # ZeroMQ's prefix match lets it in; not an update
    bridge.publish(V2, good)
    wait_until(lambda: ("pg-semver", "0.17.0") in anitya_versions(bridge.suite), 30, "the good message recorded")
    wait_until(lambda: bridge.reported("anitya bridge: received 7, forwarded 1, dropped 6 (malformed 5, "
                                       "too large 1), waiting 0"), 10, "the bridge's report of six drops")
    log = bridge.log()
    assert "malformed; 1 dropped so far): " + V2 + ": not JSON: Expecting value" in log
    assert "the body must contain ['message'] properties" in log
    assert "project.id must be integer" in log
    assert "over the 1048576 byte limit" in log
    assert "the body is a JSON array, not an object" in log
    assert "is not an Anitya version update" in log
    assert bridge.suite.processes["hub"].poll() is None
    assert len(anitya_versions(bridge.suite)) == 1


@pytest.mark.slow
def test_events_wait_for_a_monitor_that_is_not_running_or_restarts(bridge):
    bridge.start()                                  # no monitor yet: the bridge holds what it receives
    publish_fixtures(bridge)
    wait_until(lambda: bridge.reported("cannot reach the monitor"), 10, "the bridge noticing no monitor")
    bridge.suite.start_monitor()
    wait_until(lambda: len(anitya_versions(bridge.suite)) == 3, 30, "the held versions recorded")
    bridge.suite.kill("monitor")                    # kill -9, then a new message, then a new monitor
    renamed = fixture("v2-no_mapping.json")
    renamed["project"]["name"] = renamed["message"]["project"]["name"] = "pg-semver-renamed"
    bridge.publish(V2, renamed)
    time.sleep(1)
    bridge.suite.start_monitor()
    wait_until(lambda: ("pg-semver-renamed", "0.17.0") in anitya_versions(bridge.suite), 60,
               "the version sent while the monitor was down recorded")
    assert len(anitya_versions(bridge.suite)) == 4


@pytest.mark.slow
def test_sigterm_waits_for_the_monitor_to_acknowledge_every_event_then_exits(bridge):
    monitor = bridge.suite.start_monitor()
    bridge.start()
    monitor.send_signal(signal.SIGSTOP)         # a monitor that is busy: it acknowledges nothing until SIGCONT
    try:
        expected = publish_burst(bridge)
        wait_until(lambda: bridge.reported(f"received {BURST}, forwarded {BURST}, dropped 0, waiting {BURST}"),
                   30, f"the bridge's report of {BURST} events sent and not acknowledged")
        hub = bridge.suite.processes["hub"]
        hub.send_signal(signal.SIGTERM)
        wait_until(lambda: bridge.reported("SIGTERM: stopping fedmsg-hub") or hub.poll() is not None, 10,
                   "the hub to take SIGTERM")
        assert hub.poll() is None, f"fedmsg-hub ended on SIGTERM (status {hub.returncode}) without waiting"
    finally:
        monitor.send_signal(signal.SIGCONT)
    assert hub.wait(EXIT_SECONDS) == 0, bridge.log()
    assert anitya_rows(bridge.suite) == sorted(expected)
    assert bridge.reported(f"anitya bridge stopped: the monitor acknowledged all {BURST} events that were waiting")
    assert "MokshaHub reactor stopped" in bridge.log()


@pytest.mark.slow
def test_sigterm_without_a_monitor_exits_after_the_wait_and_logs_how_many_events_are_lost(bridge):
    bridge.start()                                  # no monitor: the bridge holds what it receives
    publish_burst(bridge)
    wait_until(lambda: bridge.reported(f"received {BURST}, forwarded 0, dropped 0, waiting {BURST}"),
               30, f"the bridge's report of {BURST} events held")
    seconds = bridge.terminate()
    assert STOP_SECONDS <= seconds < EXIT_SECONDS and bridge.suite.processes["hub"].returncode == 0, bridge.log()
    assert bridge.reported(f"ERROR anitya bridge stopped: {BURST} of the {BURST} events that were waiting did not "
                           f"reach the monitor within {STOP_SECONDS:.0f} s ({BURST} held, 0 sent and not "
                           "acknowledged) and are lost; 'kiskadee fetch anitya' fetches the versions")
    assert bridge.reported(f"dropped {BURST} (shutdown {BURST}), waiting 0")


def test_closing_the_outbox_hands_held_events_to_a_monitor_that_came_up_meanwhile(short_tmp):
    suite = Suite(short_tmp)
    outbox = Outbox(f"ipc://{short_tmp / 'run' / 'intake.sock'}", 10_000, Tally("anitya bridge", 60), 60)
    try:
        for number in range(BURST):                 # no monitor: held, and not retried for 60 s
            outbox.offer(normalize(V2, renamed(number)))
        assert outbox.sender is None and len(outbox.held) == BURST
        suite.start_monitor()
        lost = outbox.close(timeout=60)
        assert anitya_rows(suite) == sorted((f"pg-semver-{number}", "0.17.0") for number in range(BURST))
        assert lost == 0
    finally:
        suite.stop()
