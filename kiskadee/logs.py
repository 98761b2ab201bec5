"""Logging set-up, done once in ``main()``: stderr, with syslog priorities under journald."""

import logging
import os
import sys
from typing import Optional

# sd-daemon(3) priority prefixes, understood by journald on a service's stderr.
_PRIORITY = {
    logging.CRITICAL: "<2>",
    logging.ERROR: "<3>",
    logging.WARNING: "<4>",
    logging.INFO: "<6>",
    logging.DEBUG: "<7>",
}


def with_priority(text: str, level: int) -> str:
    """``text`` with the syslog priority of ``level`` before each of its lines."""
    prefix = _PRIORITY.get(level, "<6>")
    return "\n".join(prefix + line for line in text.splitlines())


class JournalFormatter(logging.Formatter):
    """Prefix each line with its syslog priority; journald adds time and unit.

    ``inner`` is the formatter whose text is prefixed (another library's, such as fedmsg-hub's);
    without it, this formatter's own format."""

    def __init__(self, fmt: Optional[str] = None, inner: Optional[logging.Formatter] = None):
        super().__init__(fmt)
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record) if self.inner is not None else super().format(record)
        return with_priority(text, record.levelno)


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


def for_stderr(text: str, level: int = logging.ERROR) -> str:
    """A line printed to stderr outside logging (``main()``'s fatal errors): under journald with the
    syslog priority of ``level``, so ``journalctl -p`` finds it; elsewhere unchanged."""
    return with_priority(text, level) if under_journald() else text


def prioritize_stream_handlers(fallback: str = "kiskadee") -> None:
    """Under journald, give syslog priority prefixes to the stream handlers another program configured
    (fedmsg-hub's, writing to stdout or stderr, which systemd joins in one journal stream), and make sure
    the ``fallback`` logger's warnings reach the journal even when that configuration leaves it no handler."""
    if not under_journald():
        return
    loggers = [logging.getLogger()] + [logger for logger in logging.Logger.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    for handler in {handler for logger in loggers for handler in logger.handlers}:
        if (isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.stderr)
                and not isinstance(handler.formatter, JournalFormatter)):
            handler.setFormatter(JournalFormatter(inner=handler.formatter or logging.Formatter()))
    logger = logging.getLogger(fallback)
    if not logger.hasHandlers():        # else only logging's last resort, without a priority
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
        logger.addHandler(handler)
