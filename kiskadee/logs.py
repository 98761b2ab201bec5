"""Logging set-up, done once in ``main()``: stderr, with syslog priorities under journald."""

import logging
import os
import sys

# sd-daemon(3) priority prefixes, understood by journald on a service's stderr.
_PRIORITY = {
    logging.CRITICAL: "<2>",
    logging.ERROR: "<3>",
    logging.WARNING: "<4>",
    logging.INFO: "<6>",
    logging.DEBUG: "<7>",
}


class JournalFormatter(logging.Formatter):
    """Prefix each line with its syslog priority; journald adds time and unit."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = _PRIORITY.get(record.levelno, "<6>")
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def under_journald() -> bool:
    """True when stderr is connected to the journal (systemd sets JOURNAL_STREAM)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    if not stream or ":" not in stream:
        return False
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{stat.st_dev}:{stat.st_ino}"


def setup(verbosity: int = 0) -> None:
    """Send log records to stderr; verbosity -1 quiet, 0 warnings and progress, 1 info, 2 debug."""
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    if under_journald():
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
