"""The systemd generator that starts ``runner.count`` runners with ``kiskadee.target``.

kiskadee.target wants ``kiskadee-runner@1.service``; systemd runs this
generator at boot and on every ``systemctl daemon-reload``, and it adds
``kiskadee-runner@2.service`` up to ``@N`` to the target's wants in the
generator directory, N being ``runner.count`` (0: one per CPU), as
``kiskadee run`` reads it. So after changing the count:

    systemctl daemon-reload && systemctl start kiskadee.target

starts the new runners; fewer runners take ``systemctl stop
kiskadee-runner@N.service`` for each one too many (or a restart of the
target). A generator must never fail the boot: a configuration error is
reported on standard error, which systemd sends to the journal, and the
target keeps its one runner.
"""

import sys
from pathlib import Path
from typing import List, Optional, Sequence

from kiskadee import config
from kiskadee.errors import KiskadeeError

TEMPLATE = "kiskadee-runner@.service"
TARGET_WANTS = "kiskadee.target.wants"
UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


def generate(output_dir: Path, count: int, template: Path) -> List[Path]:
    """Link runners 2..``count`` into kiskadee.target's wants under ``output_dir``; the links made."""
    wants = output_dir / TARGET_WANTS
    links = []
    for number in range(2, count + 1):
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / f"kiskadee-runner@{number}.service"
        link.symlink_to(template)
        links.append(link)
    return links


def find_template(unit_dirs: Sequence[str] = UNIT_DIRS) -> Optional[Path]:
    """The installed runner template unit, or None."""
    for directory in unit_dirs:
        path = Path(directory) / TEMPLATE
        if path.exists():
            return path
    return None


def main(argv: Sequence[str]) -> int:
    """``kiskadee-runner-generator NORMAL_DIR [EARLY_DIR LATE_DIR]``, as systemd calls it; always 0."""
    if not argv:
        print("usage: kiskadee-runner-generator NORMAL_DIR [EARLY_DIR LATE_DIR]", file=sys.stderr)
        return 0
    try:
        count = config.load(None).runner.runners()
    except KiskadeeError as exc:
        print(f"kiskadee-runner-generator: {exc}; kiskadee.target starts one runner", file=sys.stderr)
        return 0
    template = find_template()
    if template is not None:                # else the package is being removed
        generate(Path(argv[0]), count, template)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
