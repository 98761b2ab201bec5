"""The processes and their protocol: wire format, intake, monitor, runner, supervisor, loop, systemd."""
