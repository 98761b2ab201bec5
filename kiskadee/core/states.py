"""The states of a version's analysis job, the moves between them, and an analysis's statuses.

A version's ``state`` is its job's state:

============  ==================================================================
state         meaning
============  ==================================================================
seen          recorded, not to be analyzed (older than what was analyzed)
queued        waiting for a runner (``not_before`` holds a backoff after a failure)
leased        a runner has it until ``lease_expires``, extended by its heartbeats
done          analyzed; the analyses say how each analyzer fared
failed        could not be analyzed: ``error`` says why (all analyzers failed, the
              source was refused, or the runner went silent ``max_attempts`` times)
unresolved    kiskadee could not tell where the version's source is: ``error`` says why
============  ==================================================================

Only ``kiskadee.store.queue`` changes a state, and only along ``TRANSITIONS``.
Both enums are ``str`` enums: a member equals, hashes and stores as the plain
string that databases already hold, so rows read back compare to members.
"""

import enum
from typing import FrozenSet, Mapping, Tuple


class _StrEnum(str, enum.Enum):
    """A str enum whose members behave as their value in sets, dicts and formatting.

    ``enum.StrEnum`` is Python 3.11 only, and an Enum hashes by member name, so
    ``"done" in {VersionState.DONE}`` would be False without ``__hash__`` here.
    """

    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value


class VersionState(_StrEnum):
    """The state of a version's analysis job (the module docstring says what each means)."""

    SEEN = "seen"
    QUEUED = "queued"
    LEASED = "leased"
    DONE = "done"
    FAILED = "failed"
    UNRESOLVED = "unresolved"


_S = VersionState

# Which state may go to which. A version is created queued or seen by the monitor's
# catalog, or seen by 'kiskadee analyze' for a version the monitor never heard of.
# Every state may become done or failed because 'kiskadee analyze' stores a
# one-shot analysis of any version, analyzed before or not. Nothing goes back to
# seen, only a queued job is leased, and only the answer of the runner holding
# its lease makes it unresolved (kiskadee.store.queue refuses any other's).
TRANSITIONS: Mapping[VersionState, FrozenSet[VersionState]] = {
    _S.SEEN: frozenset({_S.QUEUED, _S.DONE, _S.FAILED}),                          # kiskadee retry; analyze
    _S.QUEUED: frozenset({_S.LEASED, _S.DONE, _S.FAILED}),                        # a runner; analyze
    _S.LEASED: frozenset({_S.QUEUED, _S.DONE, _S.FAILED, _S.UNRESOLVED}),        # released, expired; a result
    _S.DONE: frozenset({_S.QUEUED, _S.DONE, _S.FAILED}),                          # retry --state done; analyze
    _S.FAILED: frozenset({_S.QUEUED, _S.DONE, _S.FAILED}),
    _S.UNRESOLVED: frozenset({_S.QUEUED, _S.DONE, _S.FAILED}),
}

IN_QUEUE: Tuple[VersionState, ...] = (_S.QUEUED, _S.LEASED)           # a runner has or will get it
COULD_NOT_ANALYZE: Tuple[VersionState, ...] = (_S.FAILED, _S.UNRESOLVED)
# What 'kiskadee retry' may put back in the queue as new, its attempts reset: every state
# that may go to queued but those in the queue, whose runner holds or will get them.
RETRYABLE: Tuple[VersionState, ...] = tuple(state for state in VersionState
                                            if _S.QUEUED in TRANSITIONS[state] and state not in IN_QUEUE)


class ForbiddenTransition(RuntimeError):
    """A state change the table does not allow: a bug in kiskadee, not a user's mistake."""


def check_transition(old: VersionState, new: VersionState) -> None:
    """Raise ForbiddenTransition unless a version may go from ``old`` to ``new``."""
    if new not in TRANSITIONS[VersionState(old)]:
        raise ForbiddenTransition(f"a version cannot go from {old} to {new}")


class AnalysisStatus(_StrEnum):
    """How one analyzer's run over one version ended."""

    OK = "ok"               # it ran over the code; its findings are all it found
    FAILED = "failed"       # it crashed or its report could not be read: ``error`` says why
    TIMEOUT = "timeout"     # it ran out of time
    SKIPPED = "skipped"     # it did not run: the tree had no file in its languages


# The runs whose error makes a version failed when every analyzer's run is one.
FAILURES: Tuple[AnalysisStatus, ...] = (AnalysisStatus.FAILED, AnalysisStatus.TIMEOUT)

# The one definition of a completed analysis: the analyzer ran over the code.
# Only a completed analysis makes a version count as analyzed (the previous
# version of the next one, for diffs and survival), and only where an analyzer
# completed on both versions are its findings new or fixed. Skipped is not
# completed: a tree with no file the analyzer reads (a documentation tarball,
# a tag archive whose C code lives in a git submodule) says nothing about the
# code, and counting it would make every finding of the release before "fixed"
# and every finding of the release after "new". A fixed finding never just
# means "not analyzed this time".
COMPLETED: Tuple[AnalysisStatus, ...] = (AnalysisStatus.OK,)
