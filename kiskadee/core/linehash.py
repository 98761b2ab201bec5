"""GitHub code scanning's ``primaryLocationLineHash``, computed as github/codeql-action does.

codeql-action (``src/fingerprints.ts``) hashes, for every line, the first 100
characters from the start of that line on, spaces and tabs left out and line
ends (CR, LF, CRLF) read as one LF: a rolling polynomial hash (base 37, 64
bits) over UTF-16 code units, written in lower-case hex without leading zeros,
then ``:`` and how many earlier lines of the file had the same hash plus one.
The values kiskadee writes are those codeql-action's upload step would compute
from the same file, so alerts keep matching whichever side computed them.
"""

import array
import sys
from typing import Dict

BLOCK_SIZE = 100
_MOD = 37
_MASK = (1 << 64) - 1
_FIRST_MOD = pow(_MOD, BLOCK_SIZE, 1 << 64)
_EOF = 0xFFFF
_TAB, _SPACE, _LF, _CR = 9, 32, 10, 13


def line_hashes(text: str) -> Dict[int, str]:
    """Each line number (from 1) of ``text`` and its ``primaryLocationLineHash``.

    One loop with local names, as codeql-action's ``hash`` is written: the
    runner hashes every file with findings, so this is its cost (a few
    million characters a second).
    """
    window = [0] * BLOCK_SIZE           # the last BLOCK_SIZE units hashed
    line_numbers = [-1] * BLOCK_SIZE    # the line that starts at each place of the window, or -1
    counts: Dict[int, int] = {}
    hashes: Dict[int, str] = {}
    value = index = line_number = 0
    line_start, previous_cr = True, False
    units = _code_units(text)
    units.append(_EOF)
    for unit in units:
        if unit == _SPACE or unit == _TAB or (previous_cr and unit == _LF):
            previous_cr = False
            continue
        previous_cr = unit == _CR
        if previous_cr:
            unit = _LF
        if line_numbers[index] != -1:       # the window is full past that line's start: its hash is done
            count = counts[value] = counts.get(value, 0) + 1
            hashes[line_numbers[index]] = f"{value:x}:{count}"
            line_numbers[index] = -1
        if line_start:
            line_start = False
            line_number += 1
            line_numbers[index] = line_number
        if unit == _LF:
            line_start = True
        value = (_MOD * value + unit - _FIRST_MOD * window[index]) & _MASK
        window[index] = unit
        index = index + 1 if index < BLOCK_SIZE - 1 else 0
    for _ in range(BLOCK_SIZE):             # the last lines: their windows end in zeros
        if line_numbers[index] != -1:
            count = counts[value] = counts.get(value, 0) + 1
            hashes[line_numbers[index]] = f"{value:x}:{count}"
            line_numbers[index] = -1
        value = (_MOD * value - _FIRST_MOD * window[index]) & _MASK
        window[index] = 0
        index = index + 1 if index < BLOCK_SIZE - 1 else 0
    return hashes


def _code_units(text: str) -> "array.array[int]":
    """``text`` as JavaScript sees it: UTF-16 code units."""
    units = array.array("H", text.encode("utf-16-le", "surrogatepass"))
    if sys.byteorder == "big":
        units.byteswap()
    return units
