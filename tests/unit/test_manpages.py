"""The man pages name every subcommand and every configuration key."""

import dataclasses
import re
import subprocess

from kiskadee import config
from kiskadee.cli import build_parser
from kiskadee.cli.manpage import SHIPPED_CONFIG, commands, kiskadee_1, kiskadee_toml_5, write


def config_keys(cls=config.Config, prefix=()):
    for field in dataclasses.fields(cls):
        if field.name == "source" and cls is config.Config:     # where the configuration came from, not a key
            continue
        kind = field.type if not isinstance(field.type, str) else eval(field.type, vars(config))
        if dataclasses.is_dataclass(kind):
            yield from config_keys(kind, prefix + (field.name,))
        else:
            yield ".".join(prefix), field.name


def test_kiskadee_1_has_every_subcommand():
    page = kiskadee_1(build_parser())
    headings = set(re.findall(r"^\.SS (.+)$", page, re.M))
    names = {name for name, _, _ in commands(build_parser())}
    assert {"kiskadee prune", "kiskadee db backup", "kiskadee analyze", "kiskadee run"} <= names
    assert names == {heading.replace("\\-", "-") for heading in headings}
    assert "\\fB\\-\\-keep\\fR N" in page and "\\fB141\\fR" in page


def test_kiskadee_toml_5_has_every_key():
    page = kiskadee_toml_5(SHIPPED_CONFIG.read_text())
    found, section = set(), None
    for line in page.splitlines():
        heading = re.match(r"^\.SS \[(.+)\]$", line)
        key = re.match(r"^\\fB(.+?)\\fR = ", line)
        if heading:
            section = heading.group(1)
        elif key:
            found.add((section, key.group(1).replace("\\-", "-")))
    missing = set(config_keys()) - found
    assert not missing, f"keys missing from packaging/kiskadee.toml (and so from kiskadee.toml(5)): {missing}"


def test_pages_are_valid_roff(tmp_path):
    for page in write(tmp_path):
        result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr, result.stderr
