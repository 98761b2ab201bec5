"""kiskadee-runner-generator: kiskadee.target starts runner.count runners."""

import os
import subprocess
import sys
from pathlib import Path

from kiskadee.service.generator import generate

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "systemd" / "kiskadee-runner-generator"


def test_runners_beyond_the_first_are_linked_into_the_targets_wants(tmp_path):
    template = tmp_path / "kiskadee-runner@.service"
    template.write_text("[Service]\n")
    links = generate(tmp_path / "out", 3, template)
    wants = tmp_path / "out" / "kiskadee.target.wants"
    assert sorted(p.name for p in wants.iterdir()) == ["kiskadee-runner@2.service", "kiskadee-runner@3.service"]
    assert all(os.readlink(link) == str(template) for link in links)


def test_one_runner_needs_no_link(tmp_path):
    assert generate(tmp_path / "out", 1, tmp_path / "kiskadee-runner@.service") == []
    assert not (tmp_path / "out").exists()


def run_generator(tmp_path, config_text):
    config = tmp_path / "kiskadee.toml"
    config.write_text(config_text)
    out = tmp_path / "gen"
    out.mkdir()
    env = dict(os.environ, KISKADEE_CONFIG=str(config))
    result = subprocess.run([sys.executable, str(GENERATOR), str(out), str(out), str(out)], env=env,
                            capture_output=True, text=True, timeout=60)
    return result, out


def test_a_configuration_error_never_fails_the_boot_and_says_why(tmp_path):
    result, out = run_generator(tmp_path, "[runner]\ncount = 'many'\n")
    assert result.returncode == 0
    assert "runner.count" in result.stderr and "kiskadee.target starts one runner" in result.stderr
    assert list(out.iterdir()) == []
