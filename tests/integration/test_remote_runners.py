"""Runners on other hosts: a monitor and runners in separate network namespaces, over tcp:// with CurveZMQ.

The test makes its own little network: a "switch" namespace holding a
bridge, and one namespace per host joined to it by a veth pair, on the
private range 10.231.0.0/24. The monitor's host serves the real hello 2.10
tarball over HTTP and runs the monitor, its work socket on
tcp://10.231.0.1:5557 with CurveZMQ and its intake on ipc://. Three runners,
each in its own namespace with its own configuration, directories and key
pair copied over as an operator would, fetch the source over HTTP
themselves: in each runner's mount namespace the monitor's directory
(database, spool, keys) is hidden under an empty tmpfs, so nothing works
through a shared filesystem. A fourth runner holds a key the monitor never
listed. Everything runs as root (``ip netns`` needs it) and the namespaces
and links are deleted at the end.
"""

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import zmq.auth
from harness import HELLO_TARBALL, short_tmp_dir, wait_until, write_config

SUBNET = "10.231.0"
MONITOR_ADDRESS = f"{SUBNET}.1"
WORK = f"tcp://{MONITOR_ADDRESS}:5557"
SOURCE_PORT = 8080
ANALYZERS = '["cppcheck", "flawfinder"]'
RUNNERS = ("r1", "r2", "r3")

pytestmark = pytest.mark.slow      # root, as the tests run here, and iproute2 from packaging/test-packages


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


class Network:
    """Namespaces joined by veth pairs to a bridge in a namespace of their own; nothing in the host's."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.switch = f"{prefix}-sw"
        self.hosts = {}             # host name -> namespace
        self._add_namespace(self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")

    def _add_namespace(self, namespace: str) -> None:
        ip("netns", "add", namespace)
        ip("-n", namespace, "link", "set", "lo", "up")

    def add_host(self, name: str, address: str) -> str:
        """A namespace NAME with eth0 at ``address``/24, whose veth peer NAME is a port of the bridge."""
        namespace = f"{self.prefix}-{name}"
        self._add_namespace(namespace)
        self.hosts[name] = namespace
        ip("link", "add", "name", "eth0", "netns", namespace, "type", "veth", "peer", "name", name,
           "netns", self.switch)
        ip("-n", self.switch, "link", "set", name, "master", "br0", "up")
        ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        return namespace

    def cut(self, name: str) -> None:
        """Pull the host's cable: its switch port goes down, every packet to and from it is lost."""
        ip("-n", self.switch, "link", "set", name, "down")

    def mend(self, name: str) -> None:
        ip("-n", self.switch, "link", "set", name, "up")

    def delete(self) -> None:
        """Delete every veth pair, then every namespace; call once the processes in them are gone."""
        for name in self.hosts:
            subprocess.run(["ip", "-n", self.switch, "link", "del", name], capture_output=True, timeout=30)
        for namespace in (*self.hosts.values(), self.switch):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)

    def leftovers(self) -> list:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
        return [line.split()[0] for line in listed.splitlines() if line.startswith(self.prefix + "-")]


class Site:
    """The hosts' directories, their processes (each in its namespace, its output in NAME.log) and the database."""

    def __init__(self, root: Path, network: Network):
        self.root, self.network = root, network
        self.monitor_root = root / "monitor"
        self.monitor_root.mkdir()
        self.db = self.monitor_root / "k.db"
        self.processes = {}
        # No proxy can be reached from inside the namespaces: the runners download directly.
        self.env = {key: value for key, value in os.environ.items()
                    if not key.lower().endswith("_proxy") and key != "KISKADEE_CONFIG"}

    def start(self, name: str, host: str, *command: str, hide_monitor: bool = False) -> subprocess.Popen:
        """Run ``command`` on ``host``; with ``hide_monitor`` the monitor's files are out of its sight."""
        if hide_monitor:     # ip netns exec gives the command a mount namespace of its own: the tmpfs stays there
            command = ("sh", "-c", 'mount -t tmpfs -o size=64k,mode=0700 elsewhere "$1" && shift && exec "$@"',
                       "sh", str(self.monitor_root), *command)
        log = open(self.root / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(["ip", "netns", "exec", self.network.hosts[host], *command],
                                                stdout=log, stderr=subprocess.STDOUT, env=self.env)
        return self.processes[name]

    def kiskadee(self, host: str, config: Path, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.network.hosts[host], sys.executable, "-m", "kiskadee",
                               "-c", str(config), *args], capture_output=True, text=True, timeout=120,
                              env=self.env)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def rows(self, sql: str, *params):
        if not self.db.exists():
            return []
        with sqlite3.connect(self.db, timeout=10) as connection:
            return connection.execute(sql, params).fetchall()

    def jobs(self) -> dict:
        """package -> (state, leased_by, attempts, sha256)."""
        return {row[0]: row[1:] for row in self.rows(
            "SELECT p.name, v.state, v.leased_by, v.attempts, v.sha256 FROM version v "
            "JOIN package p ON p.id = v.package_id")}

    def stop(self) -> None:
        for process in self.processes.values():
            process.kill()
            process.wait(30)


@pytest.fixture
def site():
    with short_tmp_dir() as root:
        network = Network(f"kk{os.getpid() % 100000}")
        running = Site(root, network)
        try:
            yield running
        finally:
            running.stop()
            network.delete()
            assert network.leftovers() == []


# --- the hosts' configurations -------------------------------------------------------

def monitor_config(site: Site) -> Path:
    root = site.monitor_root
    return write_config(root / "kiskadee.toml", {
        "database": f'path = "{site.db}"',
        "service": f'runtime_dir = "{root / "run"}"\nstate_dir = "{root / "state"}"\nwork = "{WORK}"',
        "analysis": f"analyzers = {ANALYZERS}",
        "monitor": "lease_seconds = 3\nbackoff_seconds = 0.5",
    })


def runner_host(site: Site, name: str, secret_key: Path) -> Path:
    """A runner host's own directories and configuration, with the keys copied in where the defaults look."""
    root = site.root / name
    keys = root / "state" / "keys"
    keys.mkdir(parents=True, mode=0o700)
    shutil.copy(secret_key, keys / "runner.key_secret")
    os.chmod(keys / "runner.key_secret", 0o600)
    shutil.copy(site.monitor_root / "state" / "keys" / "monitor.key", keys / "monitor.key")
    return write_config(root / "kiskadee.toml", {
        "database": f'path = "{root / "no-database" / "k.db"}"',     # a runner never opens one
        "service": f'runtime_dir = "{root / "run"}"\nstate_dir = "{root / "state"}"\nwork = "{WORK}"',
        "analysis": f"analyzers = {ANALYZERS}",
        "analysis.cache": "enabled = false",    # every job really analyzed, on every host
        "runner": "heartbeat_seconds = 1",
    })


def make_keys(site: Site, config: Path) -> dict:
    """The monitor's key pair and one runner key per runner, made on the monitor's host; name -> secret file."""
    for role in (["monitor"], *(["runner", name] for name in RUNNERS)):
        made = site.kiskadee("mon", config, "keys", *role)
        assert made.returncode == 0, made.stderr
    return {name: site.monitor_root / "state" / "keys" / "runners" / f"{name}.key_secret" for name in RUNNERS}


def stranger_key(site: Site) -> Path:
    """A runner key pair made elsewhere: valid, but not among the keys the monitor lets in."""
    made_in = site.root / "elsewhere"
    config = write_config(site.root / "elsewhere.toml", {
        "service": f'state_dir = "{made_in}"\nruntime_dir = "{made_in / "run"}"'})
    made = site.kiskadee("rogue", config, "keys", "runner", "rogue")
    assert made.returncode == 0, made.stderr
    return made_in / "keys" / "runners" / "rogue.key_secret"


def serve_source(site: Site) -> str:
    """The hello tarball served over HTTP from the monitor's host; its URL."""
    www = site.monitor_root / "www"
    www.mkdir(parents=True)
    shutil.copy(HELLO_TARBALL, www)
    site.start("http", "mon", sys.executable, "-m", "http.server", str(SOURCE_PORT), "--bind", MONITOR_ADDRESS,
               "--directory", str(www))
    wait_until(lambda: "Serving HTTP" in site.log("http"), 20, "the HTTP server in the monitor's namespace")
    return f"http://{MONITOR_ADDRESS}:{SOURCE_PORT}/{HELLO_TARBALL.name}"


# --- the test --------------------------------------------------------------------------

def submit(site: Site, config: Path, package: str, url: str) -> None:
    submitted = site.kiskadee("mon", config, "submit", package, "2.10", url)
    assert submitted.returncode == 0, submitted.stderr


def stored_once(site: Site, package: str) -> list:
    """(analyzer, status, finding_count) of the package's analyses; each analysis's findings stored once."""
    rows = site.rows("SELECT a.id, az.name, a.status, a.finding_count, "
                     "(SELECT count(*) FROM finding f WHERE f.analysis_id = a.id) "
                     "FROM analysis a JOIN analyzer az ON az.id = a.analyzer_id "
                     "JOIN version v ON v.id = a.version_id JOIN package p ON p.id = v.package_id "
                     "WHERE p.name = ? ORDER BY az.name", package)
    for _, analyzer, _, count, stored in rows:
        assert stored == count, f"{package} {analyzer}: {stored} findings stored for {count} found"
    return [row[1:4] for row in rows]


@pytest.mark.slow
def test_runners_on_three_hosts_share_the_jobs_survive_a_cut_link_and_a_stranger_gets_nothing(site):
    network = site.network
    network.add_host("mon", MONITOR_ADDRESS)
    for number, name in enumerate((*RUNNERS, "rogue"), start=11):
        network.add_host(name, f"{SUBNET}.{number}")

    config = monitor_config(site)
    secrets = make_keys(site, config)
    runner_configs = {name: runner_host(site, name, secrets[name]) for name in RUNNERS}
    rogue_secret = stranger_key(site)
    rogue_config = runner_host(site, "rogue", rogue_secret)
    url = serve_source(site)

    monitor = site.start("monitor", "mon", sys.executable, "-m", "kiskadee", "-c", str(config), "monitor")
    wait_until(lambda: "monitor ready" in site.log("monitor") or monitor.poll() is not None, 30, "the monitor ready")
    assert monitor.poll() is None, site.log("monitor")
    for name, runner_config in (*runner_configs.items(), ("rogue", rogue_config)):
        site.start(name, name, sys.executable, "-m", "kiskadee", "-c", str(runner_config), "runner",
                   "--name", name, hide_monitor=True)

    # The stranger is refused at the handshake, by its key; the three listed runners announce themselves.
    rogue_public = zmq.auth.load_certificate(str(rogue_secret))[0].decode()
    wait_until(lambda: re.search(r"refused a connection to the work socket: key " + re.escape(rogue_public),
                                 site.log("monitor")), 30, "the monitor refusing the rogue runner's key")
    wait_until(lambda: {row[0] for row in site.rows("SELECT name FROM runner")} == set(RUNNERS), 60,
               "the three runners announcing themselves over tcp://")

    # Three jobs, the same real source under three package names: one on each host, each stored once.
    for package in ("hello-1", "hello-2", "hello-3"):
        submit(site, config, package, url)
    wait_until(lambda: [state for state, *_ in site.jobs().values()] == ["done"] * 3, 300,
               "three jobs analyzed by the remote runners")
    digest = hashlib.sha256(HELLO_TARBALL.read_bytes()).hexdigest()
    jobs = site.jobs()
    assert {package: (attempts, sha256) for package, (_, _, attempts, sha256) in jobs.items()} == \
        {package: (1, digest) for package in jobs}        # fetched over HTTP, the digest reported back
    assert {runner for _, runner, _, _ in jobs.values()} == set(RUNNERS), jobs
    expected = stored_once(site, "hello-1")
    assert [(analyzer, status) for analyzer, status, _ in expected] == [("cppcheck", "ok"), ("flawfinder", "ok")]
    assert all(count > 0 for _, _, count in expected), expected
    assert stored_once(site, "hello-2") == stored_once(site, "hello-3") == expected
    fetched_by = set(re.findall(rf"^({re.escape(SUBNET)}\.\d+) .*\"GET /{HELLO_TARBALL.name}", site.log("http"),
                                re.MULTILINE))
    assert fetched_by == {f"{SUBNET}.{number}" for number in (11, 12, 13)}, site.log("http")

    # A fourth job: its runner's cable is pulled while it analyzes; the lease runs out, another finishes it.
    submit(site, config, "hello-4", url)
    _, holder, _, _ = wait_until(lambda: (job := site.jobs()["hello-4"])[0] == "leased" and job, 60,
                                 "hello-4 leased to a runner")
    network.cut(holder)
    state, finisher, attempts, _ = wait_until(lambda: (job := site.jobs()["hello-4"])[0] == "done" and job, 120,
                                              "hello-4 finished by another runner")
    assert finisher in RUNNERS and finisher != holder and attempts == 2
    assert f"runner {holder} went silent" in site.log("monitor")
    assert stored_once(site, "hello-4") == expected

    # The cut-off runner finished too and keeps sending its result; with the cable back, it is refused.
    wait_until(lambda: "sending the result again" in site.log(holder), 60, f"{holder} re-sending its result")
    network.mend(holder)
    wait_until(lambda: re.search(rf"runner '{holder}'.*result refused", site.log("monitor")), 60,
               f"the monitor refusing {holder}'s late result")
    assert site.jobs()["hello-4"][:2] == ("done", finisher)
    for package in ("hello-1", "hello-2", "hello-3", "hello-4"):
        assert stored_once(site, package) == expected
    assert site.rows("SELECT count(*) FROM analysis") == [(8,)]
    assert not any((site.root / name / "no-database").exists() for name in RUNNERS)    # nothing stored there

    # The stranger never reached the monitor: no message, no job; it stopped at once, saying why (exit 3).
    assert "rogue" not in {row[0] for row in site.rows("SELECT name FROM runner")}
    assert "rogue" not in {runner for _, runner, _, _ in site.jobs().values()}
    assert site.processes["rogue"].poll() == 3, site.log("rogue")
    assert f"{WORK} refused this runner's key" in site.log("rogue") and "job " not in site.log("rogue")
