"""Typed errors and the exit codes the ``kiskadee`` command documents."""

# Exit codes, documented in the README's "Exit status" section.
EXIT_OK = 0
EXIT_ANALYSIS_INCOMPLETE = 1   # at least one analyzer failed or timed out
EXIT_USAGE = 2                 # bad command line (argparse uses 2 as well)
EXIT_CONFIG = 3                # configuration file missing, unreadable or invalid
EXIT_SOURCE = 4                # source could not be fetched or was refused on unpacking
EXIT_DATABASE = 5              # database could not be opened or is at a newer schema
EXIT_NOT_FOUND = 6             # the package or version asked for is not in the database
EXIT_UNAVAILABLE = 7           # a service kiskadee needs (socket, engine) cannot be reached


class KiskadeeError(Exception):
    """Base of every error kiskadee reports to a person; carries an exit code."""

    exit_code = 1


class UsageError(KiskadeeError):
    """A command's arguments make no sense together or name nothing unambiguously."""

    exit_code = EXIT_USAGE


class ConfigError(KiskadeeError):
    """The configuration is missing, unreadable or invalid."""

    exit_code = EXIT_CONFIG


class SourceError(KiskadeeError):
    """A source could not be fetched or read."""

    exit_code = EXIT_SOURCE


class TransientSourceError(SourceError):
    """A source could not be fetched for now (network down, server error): try again later."""


class SourceNotFound(SourceError):
    """The origin answered that the file asked for does not exist (HTTP 404 or 410)."""


class UnresolvedSource(SourceError):
    """Where the source of a version is cannot be determined; the version is recorded
    as 'unresolved' with this reason instead of being analyzed."""


class UnsafeArchiveError(SourceError):
    """An archive member would escape the work directory or break a limit."""


class DatabaseError(KiskadeeError):
    """The database cannot be opened, or its schema does not fit this kiskadee."""

    exit_code = EXIT_DATABASE


class NotFoundError(KiskadeeError):
    """A package or version asked for is not in the database."""

    exit_code = EXIT_NOT_FOUND


class AnalyzerUnavailable(KiskadeeError):
    """An analyzer's program is not installed where the sandbox looks for it."""

    exit_code = EXIT_ANALYSIS_INCOMPLETE


class TransientError(KiskadeeError):
    """Something kiskadee needs is unavailable for now: try again later (the job is re-queued)."""

    exit_code = EXIT_UNAVAILABLE


class SandboxUnavailable(TransientError):
    """The sandbox backend cannot run commands now (the container engine cannot be reached)."""


class ImageBuildError(KiskadeeError):
    """An analyzer image or its base could not be built ('kiskadee images')."""
