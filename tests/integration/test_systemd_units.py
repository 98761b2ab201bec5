"""The unit files as shipped, read by systemd's own tools (test_rpm.py runs them on a real systemd)."""

import configparser
import re
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
SERVICES = sorted(path.name for path in UNITS.glob("*.service"))


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(UNITS / name)
    return parser


def test_each_socket_passes_the_name_the_monitor_adopts():
    names = {name: unit(name)["Socket"]["FileDescriptorName"]
             for name in ("kiskadee-monitor.socket", "kiskadee-monitor-work.socket")}
    assert names == {"kiskadee-monitor.socket": "intake", "kiskadee-monitor-work.socket": "work"}
    monitor = unit("kiskadee-monitor.service")
    assert monitor["Service"]["Sockets"].split() == list(names)
    assert monitor["Service"]["Type"] == "notify" and monitor["Service"]["WatchdogSec"]


def test_the_group_may_announce_but_only_the_runners_user_may_work():
    intake, work = (unit(name)["Socket"] for name in ("kiskadee-monitor.socket", "kiskadee-monitor-work.socket"))
    assert (intake["SocketUser"], intake["SocketGroup"], intake["SocketMode"]) == ("kiskadee", "kiskadee", "0660")
    assert (work["SocketUser"], work["SocketMode"]) == ("kiskadee", "0600")
    assert unit("kiskadee-runner@.service")["Service"]["User"] == work["SocketUser"]


@pytest.mark.parametrize("service", SERVICES)
def test_offline_security_exposure_is_at_most_3(service):
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNITS / service)],
                            capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert level, result.stdout + result.stderr
    assert float(level.group(1)) <= 3.0, result.stdout


def test_every_unit_parses_without_complaint_but_the_missing_programs():
    units = sorted(path for path in UNITS.iterdir() if path.suffix in (".service", ".socket", ".timer", ".target"))
    assert len(units) >= 8
    result = subprocess.run(["systemd-analyze", "verify", *map(str, units)],
                            capture_output=True, text=True, timeout=120)
    complaints = [line for line in result.stderr.splitlines()
                  if "is not executable" not in line and "kiskadee" in line]
    assert complaints == [], result.stderr


def seconds(timespan: str) -> float:
    """A systemd time span in seconds, as systemd reads it."""
    result = subprocess.run(["systemd-analyze", "timespan", timespan], capture_output=True, text=True, timeout=60,
                            check=True)
    return int(re.search(r"μs: (\d+)", result.stdout).group(1)) / 1e6


@pytest.mark.parametrize("service", SERVICES)
def test_usage_and_configuration_errors_are_not_restarted(service):
    assert {"2", "3"} <= set(unit(service)["Service"]["RestartPreventExitStatus"].split())


@pytest.mark.parametrize("service", ["kiskadee-runner@.service", "kiskadee-fetch@.service",
                                     "kiskadee-fedmsg-hub.service"])
def test_senders_stop_before_the_monitor_so_it_takes_what_they_deliver(service):
    # systemd stops units in the reverse order of After=: these first, then the monitor.
    assert "kiskadee-monitor.service" in unit(service)["Unit"]["After"].split()


def test_a_stopping_runner_has_time_to_finish_an_analysis():
    from kiskadee.config import AnalysisConfig

    assert seconds(unit("kiskadee-runner@.service")["Service"]["TimeoutStopSec"]) >= AnalysisConfig().timeout
