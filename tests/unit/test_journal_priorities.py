"""Under journald (JOURNAL_STREAM naming stderr) every warning and error carries its syslog priority:
main()'s fatal errors, and the log lines of handlers another program configured (fedmsg-hub's)."""

import os
import subprocess
import sys
import textwrap

KISKADEE = [sys.executable, "-c", "import sys; from kiskadee.cli import main; sys.exit(main())"]


def run_with_stderr_file(tmp_path, argv, journald: bool):
    """Run ``argv`` with stdout and stderr in one file, as systemd joins them in one journal stream;
    JOURNAL_STREAM names that file when ``journald``. Returns (exit status, what it wrote)."""
    out = tmp_path / "stream"
    with open(out, "wb") as stream:
        env = {key: value for key, value in os.environ.items() if key != "JOURNAL_STREAM"}
        if journald:
            stat = os.fstat(stream.fileno())
            env["JOURNAL_STREAM"] = f"{stat.st_dev}:{stat.st_ino}"
        status = subprocess.run(argv, stdout=stream, stderr=stream, env=env, timeout=60).returncode
    return status, out.read_text()


def test_a_configuration_error_is_printed_at_priority_err_under_journald(tmp_path):
    config = tmp_path / "kiskadee.toml"
    config.write_text("typo_key = 1\n")
    argv = KISKADEE + ["--config", str(config), "status"]
    status, text = run_with_stderr_file(tmp_path, argv, journald=True)
    assert status == 3
    lines = text.splitlines()
    assert lines and all(line.startswith("<3>") for line in lines), text
    assert lines[0].startswith("<3>kiskadee: error: ") and "typo_key" in text


def test_the_same_error_on_a_terminal_has_no_prefix(tmp_path):
    config = tmp_path / "kiskadee.toml"
    config.write_text("typo_key = 1\n")
    status, text = run_with_stderr_file(tmp_path, KISKADEE + ["--config", str(config), "status"],
                                        journald=False)
    assert status == 3 and text.startswith("kiskadee: error: ") and "<3>" not in text


HUB_LOGGING = textwrap.dedent("""
    import logging, logging.config
    from kiskadee import logs
    # fedmsg's default logging configuration: a plain handler on stdout for fedmsg and moksha alone
    logging.config.dictConfig({"version": 1,
        "formatters": {"bare": {"format": "[%(name)10s %(levelname)7s] %(message)s"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "bare", "level": "INFO",
                                 "stream": "ext://sys.stdout"}},
        "loggers": {"moksha": {"level": "INFO", "propagate": False, "handlers": ["console"]}}})
    logs.prioritize_stream_handlers()
    logs.prioritize_stream_handlers()       # a second consumer: no double prefix
    logging.getLogger("moksha.hub").info("hub started")
    logging.getLogger("moksha.hub").error("Failed to init consumer")
    logging.getLogger("kiskadee.anitya.outbox").warning("dropped 1 malformed message")
    logging.getLogger("kiskadee.anitya.bridge").info("not shown: no kiskadee logger configured")
""")


def test_hub_handlers_get_priorities_and_the_bridge_warnings_reach_the_journal(tmp_path):
    status, text = run_with_stderr_file(tmp_path, [sys.executable, "-c", HUB_LOGGING], journald=True)
    assert status == 0, text
    assert text.splitlines() == ["<6>[moksha.hub    INFO] hub started",
                                 "<3>[moksha.hub   ERROR] Failed to init consumer",
                                 "<4>kiskadee.anitya.outbox: dropped 1 malformed message"]


def test_outside_journald_hub_handlers_are_left_alone(tmp_path):
    status, text = run_with_stderr_file(tmp_path, [sys.executable, "-c", HUB_LOGGING], journald=False)
    assert status == 0, text
    assert "<" not in text and "[moksha.hub   ERROR] Failed to init consumer" in text
