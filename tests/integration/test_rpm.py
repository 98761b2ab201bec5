"""The RPM, built and linted here, installed into a real systemd machine and run as an operator would.

The machine is this host's OS booted with systemd-nspawn (systemd as PID 1,
journald, sysusers, tmpfiles) on a tmpfs root with an overlay over /usr, so
``rpm -i`` inside changes nothing on the host. The RPM is installed with
``--nodeps`` because Debian's rpm database knows none of the system's
packages; its Python dependencies (Debian lacks some, e.g. firehose) come
from the test's virtual environment through a drop-in setting PYTHONPATH
for the kiskadee units. Everything else is what the package ships.

The tests share one machine and run in file order, like an operator's
session: install, socket activation, a runner's analysis, a stalled
monitor restarted by the watchdog, a restart under load, the journal, stop.
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Iterable, Optional

import pytest
from harness import HELLO_TARBALL, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.rpm]    # every test builds the RPMs; those that boot a machine: systemd

REPO = Path(__file__).resolve().parents[2]
SITE = sysconfig.get_path("purelib")           # the virtual environment's packages
# ...bound at a fixed path in the machine: a checkout under /tmp would be hidden by the units' PrivateTmp
SITE_IN_MACHINE = "/opt/kiskadee-test-deps"
BOOT_SECONDS = 120
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UNITS = ["kiskadee.target", "kiskadee-monitor.socket", "kiskadee-monitor-work.socket",
         "kiskadee-monitor.service", "kiskadee-runner@1.service", "kiskadee-fetch@debian.service",
         "kiskadee-fetch@debian.timer", "kiskadee-fedmsg-hub.service", "kiskadee-report.service",
         "kiskadee-report.timer"]
SHELL_ENV = f"PYTHONPATH={SITE_IN_MACHINE} RUNTIME_DIRECTORY=/run/kiskadee"
ANALYZER_IMAGES = ["clang", "cppcheck", "flawfinder", "framac", "gcc"]


# the machine -------------------------------------------------------------------
def children(pid: int) -> list:
    """The process ids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class Machine:
    """A booted container; ``run`` executes a shell command inside as root."""

    def __init__(self, binds_ro: Iterable[str] = (), shared: Optional[Path] = None):
        self.dir = Path(tempfile.mkdtemp(prefix="kkm"))
        self.shared = shared or self.dir / "srv"
        self.shared.mkdir(exist_ok=True)
        self.shared.chmod(0o755)
        (self.dir / "usr").mkdir()
        self.name = f"kk{os.getpid()}"
        command = ["systemd-nspawn", "-q", "-D", "/", "--volatile=yes", f"--overlay=/usr:{self.dir / 'usr'}:/usr",
                   f"--bind={self.shared}:/srv/kk", "--register=no", "--keep-unit", "-M", self.name]
        command += [f"--bind-ro={spec}" for spec in binds_ro]       # "HOST-PATH:MACHINE-PATH"
        self.log = open(self.dir / "console.log", "wb")
        self.process = subprocess.Popen(command + ["-b", "--", "systemd.firstboot=off"], stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self.pid1 = self._find_init()
            wait_until(lambda: self.run("systemctl is-system-running", check=False).strip() in ("running", "degraded"),
                       BOOT_SECONDS, "the container's boot")
        except BaseException:
            self.close()
            raise

    def _find_init(self) -> int:
        deadline = time.monotonic() + BOOT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited: {(self.dir / 'console.log').read_text(errors='replace')}")
            for child in children(self.process.pid):
                for init in [child] + children(child):      # nspawn may fork once more before systemd
                    if Path(f"/proc/{init}/comm").read_text().strip() == "systemd":
                        return init
            time.sleep(0.2)
        raise RuntimeError("the container's systemd did not start")

    def run(self, command: str, check: bool = True, timeout: float = 120, env: str = "") -> str:
        """Run ``command`` with /bin/sh inside the container; its stdout (stderr joined)."""
        argv = ["nsenter", "-t", str(self.pid1), "-a", "--", "/usr/bin/env", "-i", f"PATH={PATH}",
                "LANG=C.UTF-8", *shlex.split(env), "/bin/sh", "-c", command]
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        output = result.stdout.decode(errors="replace")
        if check and result.returncode != 0:
            raise AssertionError(f"{command!r} exited with {result.returncode}:\n{output}")
        return output

    def show(self, unit: str, prop: str) -> str:
        """One property of a unit, as 'systemctl show' gives it."""
        return self.run(f"systemctl show -P {prop} {shlex.quote(unit)}").strip()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)       # nspawn powers the container off
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# building ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rpms():
    """kiskadee's RPMs built by 'packaging/rpm/build' (as 'make rpm' does) into a temp top dir."""
    top = Path(tempfile.mkdtemp(prefix="kkrpm"))
    env = dict(os.environ, RPM_TOPDIR=str(top), KISKADEE_TEST_DEPS=SITE)
    try:
        result = subprocess.run([str(REPO / "packaging" / "rpm" / "build")], cwd=REPO, env=env, timeout=600,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert result.returncode == 0, result.stdout.decode(errors="replace")[-6000:]
        built = sorted((top / "RPMS" / "noarch").glob("*.rpm")) + sorted((top / "SRPMS").glob("*.rpm"))
        yield {path.name.rsplit("-", 2)[0] + (".src" if path.name.endswith(".src.rpm") else ""): path
               for path in built}
    finally:
        shutil.rmtree(top, ignore_errors=True)


def rpm_query(path: Path, *options: str) -> str:
    return subprocess.run(["rpm", "-qp", *options, str(path)], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def test_rpmlint_finds_nothing_but_the_missing_signature(rpms):
    result = subprocess.run(["rpmlint", "-c", str(REPO / "packaging" / "rpm" / "rpmlint.toml"),
                             *map(str, rpms.values()), str(REPO / "kiskadee.spec")],
                            capture_output=True, text=True, timeout=300)
    errors = [line for line in result.stdout.splitlines() if ": E: " in line]
    assert errors and all(line.endswith("E: no-signature") for line in errors), result.stdout


def test_core_package_ships_units_config_and_state_but_not_the_bridge(rpms):
    files = rpm_query(rpms["kiskadee"], "-l").split()
    for unit in UNITS[:4] + ["kiskadee-runner@.service", "kiskadee-fetch@.service", "kiskadee-fetch@.timer"]:
        assert f"/usr/lib/systemd/system/{unit}" in files
    assert "/usr/lib/systemd/system/kiskadee-fedmsg-hub.service" not in files
    assert {"/usr/lib/sysusers.d/kiskadee.conf", "/usr/lib/tmpfiles.d/kiskadee.conf", "/usr/bin/kiskadee"} <= set(files)
    containers = "/usr/share/kiskadee/containers"
    assert {f"{containers}/Containerfile", f"{containers}/install-packages"} | {
        f"{containers}/{name}/packages" for name in ANALYZER_IMAGES} <= set(files)
    assert rpm_query(rpms["kiskadee"], "-c").split() == ["/etc/kiskadee/kiskadee.toml"]
    owners = rpm_query(rpms["kiskadee"], "--qf", "[%{FILENAMES} %{FILEUSERNAME} %{FILEMODES:perms}\n]")
    assert "/var/lib/kiskadee kiskadee drwxr-xr-x" in owners.splitlines()
    assert "/usr/share/licenses/kiskadee/LICENSE" in rpm_query(rpms["kiskadee"], "-L").split()
    # byte-compiled as root would leave it, so that 'rpm -e' removes every file it wrote
    modules = [path for path in files if re.search(r"/kiskadee/(\w+/)*\w+\.py$", path)]
    assert modules and all(re.sub(r"(\w+)\.py$", r"__pycache__/\1.cpython-", path) in " ".join(files)
                           for path in modules)
    bridge = rpm_query(rpms["kiskadee-fedmsg"], "-l").split()
    assert bridge == ["/etc/fedmsg.d/kiskadee.py", "/usr/lib/systemd/system/kiskadee-fedmsg-hub.service"]
    assert rpm_query(rpms["kiskadee-fedmsg"], "-c").split() == ["/etc/fedmsg.d/kiskadee.py"]


def test_amqp_package_ships_the_fedora_messaging_consumers_configuration(rpms):
    assert rpm_query(rpms["kiskadee-amqp"], "-c").split() == ["/etc/fedora-messaging/kiskadee.toml"]
    requires = rpm_query(rpms["kiskadee-amqp"], "-R").splitlines()
    assert {"fedora-messaging", "python3dist(fedora-messaging)"} <= {line.strip() for line in requires}
    assert any(re.match(r"kiskadee = \S+-\S+$", line) for line in requires), requires


def test_scriptlets_leave_the_user_to_rpm_and_handle_every_unit(rpms):
    scripts = rpm_query(rpms["kiskadee"], "--scripts")
    # rpm >= 4.19 creates the user from the shipped sysusers.d file: no %pre of its own (%sysusers_create_compat)
    assert "preinstall" not in scripts and "systemd-sysusers" not in scripts
    for unit in ("kiskadee.target", "kiskadee-monitor.socket", "kiskadee-monitor-work.socket",
                 "kiskadee-monitor.service", "kiskadee-runner@.service", "kiskadee-fetch@.timer"):
        assert scripts.count(unit) >= 2, unit          # post (preset) and preun (disable --now)
    postun = scripts.split("postuninstall scriptlet")[1]
    assert "kiskadee-monitor.service" in postun         # restarted after an upgrade
    assert "kiskadee-fedmsg-hub.service" in rpm_query(rpms["kiskadee-fedmsg"], "--scripts")


# the installed package on a real systemd -----------------------------------------

FEDMSG_HUB_STANDIN = """#!/bin/sh
# Stands in for Fedora's python3-fedmsg, which provides /usr/bin/fedmsg-hub.
exec /usr/bin/python3 -c 'import sys; from fedmsg.commands.hub import hub; sys.exit(hub())' "$@"
"""


def install(machine: Machine) -> None:
    """What 'dnf install kiskadee kiskadee-fedmsg' does here, plus the test's Python dependencies."""
    # What Fedora's rpm (4.19 and later) does before installing the files, which Debian's rpm 4.18 does not:
    # create the users and groups that the package's sysusers.d file declares.
    machine.run("rpm2cpio /srv/kk/kiskadee-0*.noarch.rpm | cpio -i --quiet --to-stdout ./usr/lib/sysusers.d/kiskadee.conf"
                " | systemd-sysusers -")
    machine.run("rpm -i --nodeps /srv/kk/kiskadee-0*.noarch.rpm /srv/kk/kiskadee-fedmsg-0*.noarch.rpm")
    machine.run(f"printf %s {shlex.quote(FEDMSG_HUB_STANDIN)} > /usr/bin/fedmsg-hub && chmod 755 /usr/bin/fedmsg-hub")
    machine.run("mkdir -p /etc/systemd/system/kiskadee-.service.d && printf '[Service]\\nEnvironment=PYTHONPATH=%s\\n'"
                f" {SITE_IN_MACHINE} > /etc/systemd/system/kiskadee-.service.d/python-dependencies.conf")
    # The operator's choice for this machine: cppcheck only (flawfinder is not installed system-wide here).
    machine.run("sed -i 's/^# analyzers = .*/analyzers = [\"cppcheck\"]/' /etc/kiskadee/kiskadee.toml")
    # ... and one runner (runner.count; kiskadee-runner-generator starts more)
    machine.run("sed -i 's/^# count = 0 .*/count = 1/' /etc/kiskadee/kiskadee.toml")
    machine.run("systemctl daemon-reload")       # Fedora's systemd rpm file triggers do this
    # Debian's presets enable every unit, Fedora's leave the bridge off until the operator configures the bus.
    machine.run("systemctl disable kiskadee-fedmsg-hub.service")


@pytest.fixture(scope="module")
def machine(rpms):
    shared = Path(tempfile.mkdtemp(prefix="kksrv"))
    shared.chmod(0o755)
    for name in ("kiskadee", "kiskadee-fedmsg"):
        shutil.copy(rpms[name], shared)
    shutil.copy(HELLO_TARBALL, shared / "hello-2.10.tar.gz")
    try:
        booted = Machine(binds_ro=[f"{SITE}:{SITE_IN_MACHINE}"], shared=shared)
    except BaseException:
        shutil.rmtree(shared, ignore_errors=True)
        raise
    try:
        install(booted)
        yield booted
    finally:
        print(booted.run("journalctl -q --no-pager -n 300 -u 'kiskadee*'", check=False))     # shown on failure
        booted.close()
        shutil.rmtree(shared, ignore_errors=True)


def sql(machine: Machine, query: str) -> str:
    return machine.run(f"sqlite3 /var/lib/kiskadee/kiskadee.db {shlex.quote(query)}", check=False).strip()


def journal(machine: Machine, unit: str) -> list:
    lines = machine.run(f"journalctl -q --no-pager -o json -u {unit}").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.mark.systemd
def test_installed_kiskadee_finds_the_containerfiles_of_every_analyzer_image(machine):
    output = machine.run("python3 -c 'from kiskadee import config; from kiskadee.analysis import images; "
                         "d = images.containers_dir("
                         "config.DockerSandboxConfig()); print(d, *images.analyzers_in(d))'", env=SHELL_ENV)
    assert output.split() == ["/usr/share/kiskadee/containers", *ANALYZER_IMAGES]


@pytest.mark.systemd
def test_every_unit_verifies(machine):
    output = machine.run(f"systemd-analyze verify {' '.join(UNITS)}")
    assert "kiskadee" not in output, output


@pytest.mark.systemd
def test_monitor_and_runner_are_hardened(machine):
    output = machine.run("systemd-analyze security --no-pager kiskadee-monitor.service kiskadee-runner@1.service "
                         "kiskadee-fetch@debian.service kiskadee-fedmsg-hub.service")
    exposure = {unit: float(level) for unit, level in re.findall(r"exposure level for (\S+): ([0-9.]+)", output)}
    print("systemd-analyze security:", exposure)
    assert exposure["kiskadee-monitor.service"] <= 3.0
    assert exposure["kiskadee-runner@1.service"] <= 3.0
    assert max(exposure.values()) <= 3.0


@pytest.mark.systemd
def test_first_event_socket_activates_the_monitor(machine):
    machine.run("systemctl start kiskadee-monitor.socket kiskadee-monitor-work.socket")
    assert machine.show("kiskadee-monitor.service", "ActiveState") == "inactive"
    submitted = machine.run("kiskadee submit hello 2.10 /srv/kk/hello-2.10.tar.gz", env=SHELL_ENV)
    assert "submitted hello 2.10" in submitted                      # returns once the monitor committed it
    assert machine.show("kiskadee-monitor.service", "ActiveState") == "active"   # READY=1 was received
    assert sql(machine, "SELECT state FROM version") == "queued"
    wait_until(lambda: machine.show("kiskadee-monitor.service", "StatusText").startswith("1 queued, 0 running"),
               20, "the monitor's STATUS line")
    messages = [entry["MESSAGE"] for entry in journal(machine, "kiskadee-monitor.service")]
    assert any("(sockets from systemd)" in message for message in messages), messages


@pytest.mark.systemd
def test_a_runner_analyzes_the_job(machine):
    machine.run("systemctl start kiskadee.target")
    wait_until(lambda: machine.show("kiskadee-runner@1.service", "StatusText").startswith(
        "analyzing hello 2.10 with cppcheck"), 60, "the runner's STATUS while analyzing")
    wait_until(lambda: sql(machine, "SELECT state FROM version") == "done", 180, "hello 2.10 analyzed")
    assert sql(machine, "SELECT analyzer, status FROM analysis_detail") == "cppcheck|ok"
    assert int(sql(machine, "SELECT COUNT(*) FROM finding")) > 0
    wait_until(lambda: "1 runners idle" in machine.show("kiskadee-monitor.service", "StatusText"), 20,
               "the runner idle again")


@pytest.mark.systemd
def test_a_member_of_the_group_may_submit_but_not_take_jobs(machine):
    machine.run("systemctl start kiskadee-monitor.socket kiskadee-monitor-work.socket")
    modes = machine.run("stat -c '%n %a %U %G' /run/kiskadee/intake.sock /run/kiskadee/work.sock").split("\n")
    assert modes[:2] == ["/run/kiskadee/intake.sock 660 kiskadee kiskadee",
                         "/run/kiskadee/work.sock 600 kiskadee kiskadee"]
    machine.run("id alice >/dev/null 2>&1 || useradd -M -G kiskadee alice")
    as_alice = f"setpriv --reuid=alice --regid=$(id -g alice) --init-groups env HOME=/ PYTHONPATH={SITE_IN_MACHINE} "
    submitted = machine.run(as_alice + "kiskadee submit hello 2.11 /srv/kk/hello-2.10.tar.gz")
    assert "submitted hello 2.11" in submitted
    work = machine.run(as_alice + "python3 -c 'import socket; socket.socket(socket.AF_UNIX)"
                       ".connect(\"/run/kiskadee/work.sock\")'", check=False)
    assert "PermissionError" in work, work


@pytest.mark.systemd
def test_a_stalled_monitor_misses_its_watchdog_and_is_restarted(machine):
    restarts = int(machine.show("kiskadee-monitor.service", "NRestarts"))
    machine.run("mkdir -p /run/systemd/system/kiskadee-monitor.service.d && printf '[Service]\\nWatchdogSec=3s\\n"
                "Environment=KISKADEE_TEST_STALL_AFTER=2\\n' > /run/systemd/system/kiskadee-monitor.service.d/stall.conf"
                " && systemctl daemon-reload && systemctl restart kiskadee-monitor.service")
    wait_until(lambda: int(machine.show("kiskadee-monitor.service", "NRestarts")) > restarts, 60,
               "a restart after the watchdog fired")
    machine.run("rm -r /run/systemd/system/kiskadee-monitor.service.d && systemctl daemon-reload"
                " && systemctl restart kiskadee-monitor.service")
    messages = [entry["MESSAGE"] for entry in journal(machine, "kiskadee-monitor.service")]
    assert any("Watchdog timeout" in message for message in messages), messages
    assert machine.show("kiskadee-monitor.service", "ActiveState") == "active"


PRODUCER = """
import sys
from kiskadee.core.events import SourceEvent
from kiskadee.service.intake import IntakeSender
import time
with IntakeSender("ipc:///run/kiskadee/intake.sock") as intake:
    for i in range(10000):
        intake.send(SourceEvent("local", "load%05d" % i, "1.0"))
        if i % 200 == 199:
            intake.pump()
            time.sleep(0.1)
    delivered = intake.flush(120)
print("sent", intake.sent, "resent", intake.resent, "pending", intake.pending, "delivered", delivered)
"""


@pytest.mark.systemd
def test_monitor_killed_twice_under_a_steady_stream_loses_no_event(machine):
    machine.run("systemctl stop kiskadee-runner@1.service")     # the 10,000 events are not meant to be analyzed
    restarts = int(machine.show("kiskadee-monitor.service", "NRestarts"))
    argv = ["nsenter", "-t", str(machine.pid1), "-a", "--", "/usr/bin/env", "-i", f"PATH={PATH}", f"PYTHONPATH={SITE_IN_MACHINE}",
            "/usr/bin/python3", "-c", PRODUCER]
    producer = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(2):
            time.sleep(1.5)
            machine.run("systemctl kill -s KILL kiskadee-monitor.service")
            wait_until(lambda: machine.show("kiskadee-monitor.service", "SubState") == "running", 30,
                       "the monitor restarted")
        output = producer.communicate(timeout=180)[0].decode(errors="replace")
    finally:
        producer.kill()
    print(output)
    assert producer.returncode == 0, output
    assert int(machine.show("kiskadee-monitor.service", "NRestarts")) == restarts + 2
    assert "delivered True" in output
    assert sql(machine, "SELECT COUNT(*) FROM package WHERE name LIKE 'load%'") == "10000"


@pytest.mark.systemd
def test_the_journal_holds_the_services_logs_with_their_priorities(machine):
    monitor = {entry["MESSAGE"]: entry["PRIORITY"] for entry in journal(machine, "kiskadee-monitor.service")}
    runner = {entry["MESSAGE"]: entry["PRIORITY"] for entry in journal(machine, "kiskadee-runner@1.service")}
    assert monitor.get("kiskadee.service.loop: monitor ready") == "6"
    assert [p for m, p in monitor.items() if "KISKADEE_TEST_STALL_AFTER is set" in m] == ["4"]
    assert any(m.startswith("kiskadee.service.runner: job ") and p == "6" for m, p in runner.items()), runner
    both = machine.run("journalctl -q --no-pager -u 'kiskadee*' -o cat")
    assert "kiskadee.service.monitor: job " in both and "kiskadee.service.runner: runner " in both


@pytest.mark.systemd
def test_stopping_the_target_ends_every_service_cleanly(machine):
    units = ("kiskadee-monitor.service", "kiskadee-runner@1.service", "kiskadee-monitor.socket",
             "kiskadee-monitor-work.socket")
    machine.run("systemctl stop kiskadee.target", timeout=120)
    wait_until(lambda: all(machine.show(unit, "ActiveState") == "inactive" for unit in units), 30,
               "every kiskadee unit stopped")
    for unit in units:
        assert machine.show(unit, "Result") == "success", unit
    assert machine.run("test -e /run/kiskadee/intake.sock || echo gone").strip() == "gone"
    messages = [entry["MESSAGE"] for entry in journal(machine, "kiskadee-monitor.service")]
    assert "kiskadee.service.loop: monitor stopping" in messages[-6:], messages[-6:]
    assert "kiskadee.service.loop: runner stopping" in [entry["MESSAGE"] for entry in
                                                   journal(machine, "kiskadee-runner@1.service")]


# stopping, reconfiguring, upgrading: what an admin does in the first week ------------

SLOW_CPPCHECK = """#!/bin/sh
# cppcheck, slower: its first run in a runner's private /tmp waits, so a stop lands mid-analysis.
case "$1" in --version) ;; *) [ -e /tmp/kk-slept ] || { touch /tmp/kk-slept; sleep 10; } ;; esac
exec /usr/bin/cppcheck "$@"
"""
RUNNER_DROPIN = "/run/systemd/system/kiskadee-runner@.service.d"


@pytest.mark.systemd
def test_stopping_the_target_mid_analysis_stores_the_result_without_another_attempt(machine):
    # (the monitor started once: the database exists even when this test runs alone)
    machine.run("systemctl stop kiskadee.target && systemctl start kiskadee-monitor.service"
                " && systemctl stop kiskadee-monitor.service", timeout=120)
    # The 10,000 load events and whatever else waits are not this test's: only hello 2.12 is to be analyzed.
    # (as the database's owner: root's sqlite3 would leave a -shm file the monitor cannot open)
    machine.run("setpriv --reuid=kiskadee --regid=kiskadee --clear-groups sqlite3 /var/lib/kiskadee/kiskadee.db "
                "\"UPDATE version SET state = 'seen' WHERE state = 'queued'\"")
    (machine.shared / "slowbin").mkdir(exist_ok=True)
    (machine.shared / "slowbin" / "cppcheck").write_text(SLOW_CPPCHECK)
    (machine.shared / "slowbin" / "cppcheck").chmod(0o755)
    machine.run(f"mkdir -p {RUNNER_DROPIN} && printf '[Service]\\nEnvironment=PATH=/srv/kk/slowbin:/usr/bin:/bin\\n'"
                f" > {RUNNER_DROPIN}/slow.conf && systemctl daemon-reload")
    try:
        machine.run("systemctl start kiskadee.target")
        machine.run("kiskadee submit hello 2.12 /srv/kk/hello-2.10.tar.gz", env=SHELL_ENV)
        wait_until(lambda: machine.show("kiskadee-runner@1.service", "StatusText").startswith(
            "analyzing hello 2.12 with cppcheck"), 60, "the runner analyzing hello 2.12")
        leased = sql(machine, "SELECT state, attempts FROM version WHERE number = '2.12'")
        machine.run("systemctl stop kiskadee.target", timeout=120)
    finally:
        machine.run(f"rm -rf {RUNNER_DROPIN} && systemctl daemon-reload")
    assert leased == "leased|1"
    units = ("kiskadee-runner@1.service", "kiskadee-monitor.service")
    # 'systemctl stop' returns once the target is down; the runner then finishes, and the monitor stops after it.
    wait_until(lambda: all(machine.show(unit, "ActiveState") in ("inactive", "failed") for unit in units), 60,
               "the runner and the monitor stopped")
    for unit in units:
        assert (machine.show(unit, "ActiveState"), machine.show(unit, "Result")) == ("inactive", "success"), unit
    assert sql(machine, "SELECT state, attempts FROM version WHERE number = '2.12'") == "done|1"
    job = sql(machine, "SELECT id FROM version WHERE number = '2.12'")
    monitor = [entry["MESSAGE"] for entry in journal(machine, "kiskadee-monitor.service")]
    assert any(re.match(rf"kiskadee\.service\.monitor: job {job} from \S+: stored$", m) for m in monitor), monitor[-20:]
    runner = [entry["MESSAGE"] for entry in journal(machine, "kiskadee-runner@1.service")]
    runner = runner[max(i for i, m in enumerate(runner) if m.endswith(f"job {job}: hello 2.12 from local")):]
    assert not any("no acknowledgement" in message for message in runner), runner   # the first sending counted


def entries_at(machine: Machine, unit: str, priority: str, text: str) -> list:
    """The journal entries of ``unit`` that 'journalctl -p PRIORITY' shows and whose message holds ``text``."""
    lines = machine.run(f"journalctl -q --no-pager -o json -p {priority} -u {unit}").splitlines()
    return [entry for entry in map(json.loads, (line for line in lines if line.startswith("{")))
            if text in entry["MESSAGE"]]


@pytest.mark.systemd
def test_a_configuration_typo_fails_the_monitor_once_with_the_error_at_priority_err(machine):
    machine.run("systemctl stop kiskadee.target kiskadee-monitor.service", timeout=120)
    wait_until(lambda: machine.show("kiskadee-monitor.service", "ActiveState") in ("inactive", "failed"), 60,
               "the monitor stopped")
    machine.run("sed -i '1i typo_key = 1' /etc/kiskadee/kiskadee.toml")
    try:
        machine.run("systemctl reset-failed 'kiskadee*'; systemctl start kiskadee-monitor.service", check=False)
        wait_until(lambda: machine.show("kiskadee-monitor.service", "ActiveState") == "failed", 30,
                   "the monitor failed")
        time.sleep(4)                                   # RestartSec=1s: time for restarts, were there any
        assert machine.show("kiskadee-monitor.service", "ActiveState") == "failed"
        assert machine.show("kiskadee-monitor.service", "NRestarts") == "0"
        assert machine.show("kiskadee-monitor.service", "ExecMainStatus") == "3"
        errors = entries_at(machine, "kiskadee-monitor.service", "warning", "typo_key")
        assert [(e["PRIORITY"], e["MESSAGE"].split(":")[:2]) for e in errors] == [("3", ["kiskadee", " error"])]
    finally:
        machine.run("sed -i '/^typo_key = 1$/d' /etc/kiskadee/kiskadee.toml && systemctl reset-failed 'kiskadee*'")


FEDMSG_ENDPOINTS = """config = dict(endpoints={"anitya-test": ["tcp://127.0.0.1:9940"]}, zmq_enabled=True,
              validate_signatures=False, sign_messages=False, environment="dev")
"""


@pytest.mark.systemd
def test_the_bridge_errors_reach_journalctl_p_warning(machine):
    # The bus an operator configures (fedmsg's own logging left as shipped: a plain handler on stdout).
    machine.run(f"printf %s {shlex.quote(FEDMSG_ENDPOINTS)} > /etc/fedmsg.d/endpoints.py")
    machine.run("sed -i '1i typo_key = 1' /etc/kiskadee/kiskadee.toml")
    try:
        machine.run("systemctl start kiskadee-fedmsg-hub.service")
        wait_until(lambda: entries_at(machine, "kiskadee-fedmsg-hub.service", "warning", "anitya bridge not started"),
                   60, "the bridge's error in the journal")
        errors = entries_at(machine, "kiskadee-fedmsg-hub.service", "warning", "anitya bridge not started")
        assert {entry["PRIORITY"] for entry in errors} == {"3"}, errors
        assert "typo_key" in errors[0]["MESSAGE"]
        assert entries_at(machine, "kiskadee-fedmsg-hub.service", "err", "Failed to init")   # moksha's own, too
    finally:
        machine.run("systemctl stop kiskadee-fedmsg-hub.service; rm -f /etc/fedmsg.d/endpoints.py;"
                    " sed -i '/^typo_key = 1$/d' /etc/kiskadee/kiskadee.toml")


@pytest.mark.systemd
def test_an_upgrade_restarts_every_running_runner(machine):
    machine.run("systemctl start kiskadee.target kiskadee-runner@2.service")
    runners = ("kiskadee-runner@1.service", "kiskadee-runner@2.service")
    wait_until(lambda: all(machine.show(r, "SubState") == "running" for r in runners), 60, "two runners running")
    before = {runner: machine.show(runner, "InvocationID") for runner in runners}
    # What rpm runs of the old package after 'rpm -U' installed the new one: %postun with $1 = 1.
    machine.run("sh -c \"$(rpm -q --qf '%{POSTUN}' kiskadee)\" postun 1")
    wait_until(lambda: all(machine.show(r, "InvocationID") not in ("", before[r]) and
                           machine.show(r, "SubState") == "running" for r in runners), 60, "both runners restarted")
    machine.run("systemctl stop kiskadee-runner@2.service")


# who may read, where sources may be, how many runners ------------------------------

def as_user(user: str) -> str:
    """The prefix that runs a command in the machine as ``user`` with its groups."""
    return (f"setpriv --reuid={user} --regid=$(id -g {user}) --init-groups "
            f"env HOME=/ PYTHONPATH={SITE_IN_MACHINE} ")


@pytest.mark.systemd
def test_the_group_reads_the_database_with_the_service_stopped_and_others_are_told_why_not(machine):
    machine.run("systemctl start kiskadee.target")
    machine.run("kiskadee submit hello 2.20 /srv/kk/hello-2.10.tar.gz", env=SHELL_ENV)
    machine.run("systemctl stop kiskadee.target", timeout=120)
    wait_until(lambda: machine.show("kiskadee-monitor.service", "ActiveState") == "inactive", 60, "the monitor stopped")
    machine.run("id alice >/dev/null 2>&1 || useradd -M -G kiskadee alice; id mallory >/dev/null 2>&1 || useradd -M mallory")
    assert machine.run("stat -c '%a %U %G' /var/lib/kiskadee/kiskadee.db").strip() == "640 kiskadee kiskadee"
    # The group reads, with the service stopped, both ways the README shows.
    count = machine.run(as_user("alice") + "sqlite3 /var/lib/kiskadee/kiskadee.db "
                        "\"SELECT COUNT(*) FROM version WHERE number = '2.20'\"")
    assert count.strip() == "1"
    status = machine.run(as_user("alice") + "kiskadee status; echo exit=$?", check=False)
    assert "exit=0" in status and "error" not in status, status
    # ... but may not write: the refusal says so and what it takes, with the exit status of a database error.
    retry = machine.run(as_user("alice") + "kiskadee retry --state failed; echo exit=$?", check=False)
    assert "permission denied" in retry and "exit=5" in retry, retry
    # Someone outside the group is told at once why not, for reading and for submitting.
    status = machine.run(as_user("mallory") + "kiskadee status; echo exit=$?", check=False)
    assert "permission denied" in status and "usermod -aG kiskadee" in status and "exit=5" in status, status
    machine.run("systemctl start kiskadee-monitor.socket")
    started = time.monotonic()
    submit = machine.run(as_user("mallory") + "kiskadee submit hello 2.21 /srv/kk/hello-2.10.tar.gz; echo exit=$?",
                         check=False)
    assert time.monotonic() - started < 10
    assert "permission denied: /run/kiskadee/intake.sock" in submit and "exit=7" in submit, submit


@pytest.mark.systemd
def test_a_folder_in_home_is_fetched_and_analyzed_by_the_runner(machine):
    machine.run("mkdir -p /home/releases && cp /srv/kk/hello-2.10.tar.gz /home/releases/hello-2.30.tar.gz"
                " && chmod -R a+rX /home/releases && touch -d '1 hour ago' /home/releases/hello-2.30.tar.gz")
    machine.run("cp /etc/kiskadee/kiskadee.toml /etc/kiskadee/kiskadee.toml.orig && "
                "sed -i 's|^# path = \"\" .*|path = \"/home/releases\"|' /etc/kiskadee/kiskadee.toml")
    try:
        machine.run("systemctl start kiskadee.target && systemctl start kiskadee-fetch@directory.service", timeout=120)
        wait_until(lambda: sql(machine, "SELECT v.state FROM version v JOIN package p ON p.id = v.package_id "
                                        "JOIN fetcher f ON f.id = p.fetcher_id WHERE f.name = 'directory'") == "done",
                   180, "hello 2.30 from /home analyzed")
    finally:
        machine.run("mv /etc/kiskadee/kiskadee.toml.orig /etc/kiskadee/kiskadee.toml")


@pytest.mark.systemd
def test_the_target_starts_runner_count_runners(machine):
    machine.run("sed -i 's/^count = 1$/count = 3/' /etc/kiskadee/kiskadee.toml && systemctl daemon-reload")
    runners = [f"kiskadee-runner@{n}.service" for n in (1, 2, 3)]
    try:
        machine.run("systemctl start kiskadee.target")
        wait_until(lambda: all(machine.show(r, "SubState") == "running" for r in runners), 60, "three runners")
        wait_until(lambda: "3 runners idle" in machine.show("kiskadee-monitor.service", "StatusText"), 30,
                   "the monitor sees three runners")
    finally:
        machine.run("sed -i 's/^count = 3$/count = 1/' /etc/kiskadee/kiskadee.toml && systemctl daemon-reload"
                    " && systemctl stop kiskadee-runner@2.service kiskadee-runner@3.service", timeout=120)
    assert machine.run("ls /run/systemd/generator/kiskadee.target.wants/ 2>/dev/null || true").strip() == ""


@pytest.mark.systemd
def test_the_report_unit_writes_the_html_report_readable_by_a_web_server(machine):
    machine.run("systemctl start kiskadee.target")      # the database exists, with analyzed versions
    machine.run("systemctl start kiskadee-report.service", timeout=180)
    assert machine.show("kiskadee-report.service", "Result") == "success"
    listing = machine.run("stat -c '%a %U' /var/lib/kiskadee/html/index.html")
    assert listing.split()[1] == "kiskadee" and int(listing.split()[0], 8) & 0o004, listing
    index = machine.run("setpriv --reuid=nobody --regid=nogroup --clear-groups cat /var/lib/kiskadee/html/index.html")
    assert "hello" in index


@pytest.mark.systemd
def test_removing_the_packages_leaves_only_the_data_and_the_edited_configuration(machine):
    site = machine.run("rpm -ql kiskadee | grep '/kiskadee/__init__.py$'").strip().rsplit("/", 2)[0]
    machine.run("systemctl start kiskadee.target")        # every unit ran, as root too: nothing may stay behind
    machine.run("kiskadee status >/dev/null; kiskadee --help >/dev/null", env=SHELL_ENV)
    machine.run("rpm -e kiskadee-fedmsg kiskadee", timeout=180)
    assert machine.run("rpm -qa 'kiskadee*'").strip() == ""
    machine.run("rm -r /etc/systemd/system/kiskadee-.service.d")    # the test's own drop-in (install above)
    left = machine.run(f"find {site}/kiskadee* /usr/lib/systemd /etc/systemd /usr/share/kiskadee "
                       "/usr/share/doc/kiskadee /usr/bin/kiskadee -name '*kiskadee*' 2>/dev/null || true").split()
    assert left == [], left
    for unit in ("kiskadee-monitor.service", "kiskadee-runner@1.service"):
        assert machine.show(unit, "ActiveState") == "inactive", unit
    # What an admin keeps: the database and the configuration they edited.
    assert machine.run("test -f /var/lib/kiskadee/kiskadee.db && echo kept").strip() == "kept"
