"""One table from the path-sensitive analyzers' checkers to CWE numbers and severities.

gcc gives a CWE with most ``-Wanalyzer-*`` warnings itself; the table fills
in the rest of gcc, the clang static analyzer's checkers and Frama-C's Eva
alarms. One clang checker can report several weaknesses (``unix.Malloc``:
use after free, double free, leak), so a row may also match the message.
Rows are tried in order; a checker matches a row naming it or its family
(``core.uninitialized`` matches ``core.uninitialized.Assign``).

A row gives every CWE that fits, the main one first: a C library
precondition of Frama-C broken on a copy's destination is a classic buffer
overflow that writes out of bounds (120, 787); one on a string or block read
is a buffer over-read, out of bounds (126, 125).
"""

import re
from typing import NamedTuple, Optional, Tuple, Union

# Frama-C's libc preconditions, matched on the report's 'name: predicate' property: the name of a
# clause about where a copy writes, a predicate reading a string or a block, one writing a block.
COPY_DESTINATION = r"^(room\w*|valid_dest\w*|valid_dst\w*|valid_\w*_dest\w*)\s*:"
READ = (r"^valid_\w*\s*:.*(\bvalid_read_n?w?string\(|\bvalid_n?w?string\(|\bvalid_read_or_empty\("
        r"|\\valid_read\([^;]*\.\.)|^valid_(nptr|src|s)\s*:\s*\\valid_read\(")
WRITE = r"^valid_\w*\s*:.*(\bvalid_or_empty\(|\\valid\([^;]*\.\.)"


class Row(NamedTuple):
    checker: str
    message: str            # a regular expression the message must match, '' for any
    cwes: Union[Tuple[int, ...], Optional[int]]    # every CWE that fits, the main one first; or one; or None
    severity: str


TABLE: Tuple[Row, ...] = (
    # clang static analyzer
    Row("clang:core.NullDereference", "", 476, "high"),
    Row("clang:core.NonNullParamChecker", "", 476, "high"),
    Row("clang:core.CallAndMessage", "null", 476, "high"),
    Row("clang:core.CallAndMessage", "", 457, "medium"),
    Row("clang:core.DivideZero", "", 369, "high"),
    Row("clang:core.StackAddressEscape", "", 562, "high"),
    Row("clang:core.UndefinedBinaryOperatorResult", "", 457, "medium"),
    Row("clang:core.VLASize", "", 789, "medium"),
    Row("clang:core.uninitialized", "", 457, "medium"),
    Row("clang:core", "", None, "medium"),
    Row("clang:unix.Malloc", r"free released memory|[Dd]ouble free", 415, "high"),
    Row("clang:unix.Malloc", r"after it is freed|released memory", 416, "high"),
    Row("clang:unix.Malloc", r"[Pp]otential (memory )?leak", 401, "medium"),
    Row("clang:unix.Malloc", r"not allocated by|non-heap|offset|address of", 590, "high"),
    Row("clang:unix.Malloc", "", None, "high"),
    Row("clang:unix.MallocSizeof", "", 131, "medium"),
    Row("clang:unix.MismatchedDeallocator", "", 762, "high"),
    Row("clang:unix.cstring.NullArg", "", 476, "high"),
    Row("clang:unix.cstring.BadSizeArg", "", 131, "medium"),
    Row("clang:unix", "", None, "medium"),
    Row("clang:cplusplus.NewDelete", r"free released memory|[Dd]ouble", 415, "high"),
    Row("clang:cplusplus.NewDelete", r"after it is freed|released memory", 416, "high"),
    Row("clang:cplusplus.NewDeleteLeaks", "", 401, "medium"),
    Row("clang:cplusplus.InnerPointer", "", 416, "high"),
    Row("clang:cplusplus", "", None, "medium"),
    Row("clang:deadcode.DeadStores", "", 563, "low"),
    Row("clang:security.insecureAPI.gets", "", 242, "high"),
    Row("clang:security.insecureAPI.strcpy", "", 120, "medium"),
    Row("clang:security.insecureAPI.mktemp", "", 377, "medium"),
    Row("clang:security.insecureAPI.rand", "", 338, "low"),
    Row("clang:security.insecureAPI.UncheckedReturn", "", 252, "low"),
    Row("clang:security.insecureAPI", "", 676, "low"),
    Row("clang:alpha.security.ArrayBoundV2", "", 119, "high"),
    Row("clang:alpha.security.ArrayBound", "", 119, "high"),
    Row("clang:alpha.unix.cstring.OutOfBounds", "", 120, "high"),
    Row("clang:alpha.unix.cstring.BufferOverlap", "", 475, "medium"),
    Row("clang:nullability", "", 476, "medium"),
    Row("clang:", "", None, "low"),
    # gcc: -Wanalyzer-* warnings carry their CWE; these fill the gaps and set severities.
    Row("gcc:analyzer-null-dereference", "", 476, "high"),
    Row("gcc:analyzer-use-after-free", "", 416, "high"),
    Row("gcc:analyzer-double-free", "", 415, "high"),
    Row("gcc:analyzer-free-of-non-heap", "", 590, "high"),
    Row("gcc:analyzer-mismatching-deallocation", "", 762, "high"),
    Row("gcc:analyzer-null-argument", "", 476, "high"),
    Row("gcc:analyzer-use-of-pointer-in-stale-stack-frame", "", 562, "high"),
    Row("gcc:analyzer-write-to-string-literal", "", 758, "high"),
    Row("gcc:analyzer-malloc-leak", "", 401, "medium"),
    Row("gcc:analyzer-file-leak", "", 775, "low"),
    Row("gcc:analyzer", "", None, "medium"),
    Row("gcc:stringop-overflow", "", 787, "high"),
    Row("gcc:array-bounds", "", 119, "high"),
    Row("gcc:stringop-overread", "", 125, "medium"),
    Row("gcc:use-after-free", "", 416, "high"),
    Row("gcc:free-nonheap-object", "", 590, "high"),
    Row("gcc:mismatched-dealloc", "", 762, "high"),
    Row("gcc:return-local-addr", "", 562, "high"),
    Row("gcc:format-overflow", "", 787, "high"),
    Row("gcc:", "", None, "medium"),
    # Frama-C Eva alarms; preconditions of the C library by the name of the broken clause.
    Row("framac:mem_access", "", 119, ""),
    Row("framac:index_bound", "", 129, ""),
    Row("framac:pointer_value", "", 823, ""),
    Row("framac:dangling_pointer", "", 416, ""),
    Row("framac:initialization", "", 457, ""),
    Row("framac:division_by_zero", "", 369, ""),
    Row("framac:signed_overflow", "", 190, ""),
    Row("framac:unsigned_overflow", "", 190, ""),
    Row("framac:signed_downcast", "", 197, ""),
    Row("framac:unsigned_downcast", "", 197, ""),
    Row("framac:shift", "", 1335, ""),
    Row("framac:float_to_int", "", 681, ""),
    Row("framac:separation", "", 475, ""),
    Row("framac:precondition", COPY_DESTINATION, (120, 787), ""),
    Row("framac:precondition", READ, (126, 125), ""),
    Row("framac:precondition", WRITE, (787,), ""),
    Row("framac:precondition", r"\bfreeable\b", 763, ""),
    Row("framac:", "", None, ""),
)


def classify(analyzer: str, checker: str, message: str) -> Tuple[Tuple[int, ...], str]:
    """The CWEs (the main one first; () for none) and severity of ``analyzer``'s ``checker`` reporting ``message``.

    Frama-C rows leave the severity empty: it comes from the alarm's status.
    """
    name = f"{analyzer}:{checker}"
    for row in TABLE:
        if _names(row.checker, name) and (not row.message or re.search(row.message, message)):
            cwes = row.cwes if isinstance(row.cwes, tuple) else () if row.cwes is None else (row.cwes,)
            return cwes, row.severity
    return (), "medium"


def _names(row: str, name: str) -> bool:
    """Whether a row's checker is ``name`` or its family (dotted for clang, dashed for gcc)."""
    if row.endswith(":"):
        return name.startswith(row)
    return name == row or name.startswith(row + ".") or name.startswith(row + "-")
