"""The README's two commands on a fresh machine: what 'make' does, in which order."""

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def planned(target: str, tmp_path: Path) -> list:
    """The commands 'make TARGET' would run for a fresh clone (no virtual environment yet)."""
    result = subprocess.run(["make", "-n", "-C", str(REPO), f"VENV={tmp_path / 'venv'}", target],
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.splitlines()


def index_of(lines: list, text: str) -> int:
    return next(i for i, line in enumerate(lines) if text in line)


def test_the_system_packages_come_before_the_virtual_environment(tmp_path):
    # Debian's own python3 makes no virtual environment with pip until python3-venv is installed.
    for target in ("run", "test"):
        lines = planned(target, tmp_path)
        assert index_of(lines, "install-system-packages system-packages") < index_of(lines, "-m venv"), lines


def test_python3_venv_is_installed_when_the_python_lacks_ensurepip():
    entries = [line.split() for line in (REPO / "packaging" / "system-packages").read_text().splitlines()
               if line and not line.startswith("#")]
    assert ["python-module:ensurepip", "python3-venv", "python3"] in entries


def test_running_needs_none_of_the_test_only_packages(tmp_path):
    run = planned("run", tmp_path)
    assert not any("test-packages" in line for line in run), run
    assert any("test-packages" in line for line in planned("test", tmp_path))
