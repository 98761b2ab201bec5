"""GitHub code scanning's ``primaryLocationLineHash``, computed as github/codeql-action does.

codeql-action (``src/fingerprints.ts``) hashes, for every line, the first 100
characters from the start of that line on, spaces and tabs left out and line
ends (CR, LF, CRLF) read as one LF: a rolling polynomial hash (base 37, 64
bits) over UTF-16 code units, written in lower-case hex without leading zeros,
then ``:`` and how many earlier lines of the file had the same hash plus one.
The values kiskadee writes are those codeql-action's upload step would compute
from the same file, so alerts keep matching whichever side computed them.
"""

from typing import Dict, List

BLOCK_SIZE = 100
_MOD = 37
_MASK = (1 << 64) - 1
_FIRST_MOD = pow(_MOD, BLOCK_SIZE, 1 << 64)
_EOF = 0xFFFF
_TAB, _SPACE, _LF, _CR = 9, 32, 10, 13


def line_hashes(text: str) -> Dict[int, str]:
    """Each line number (from 1) of ``text`` and its ``primaryLocationLineHash``."""
    return _Hasher().run(_code_units(text))


def _code_units(text: str) -> List[int]:
    """``text`` as JavaScript sees it: UTF-16 code units."""
    data = text.encode("utf-16-le", "surrogatepass")
    return [data[i] | data[i + 1] << 8 for i in range(0, len(data), 2)]


class _Hasher:
    def __init__(self) -> None:
        self.window = [0] * BLOCK_SIZE
        self.line_numbers = [-1] * BLOCK_SIZE
        self.value = 0
        self.index = 0
        self.line_number = 0
        self.line_start = True
        self.previous_cr = False
        self.counts: Dict[int, int] = {}
        self.hashes: Dict[int, str] = {}

    def run(self, units: List[int]) -> Dict[int, str]:
        for unit in units:
            self._character(unit)
        self._character(_EOF)
        for _ in range(BLOCK_SIZE):
            if self.line_numbers[self.index] != -1:
                self._output()
            self._update(0)
        return self.hashes

    def _character(self, unit: int) -> None:
        if unit in (_SPACE, _TAB) or (self.previous_cr and unit == _LF):
            self.previous_cr = False
            return
        self.previous_cr = unit == _CR
        if unit == _CR:
            unit = _LF
        if self.line_numbers[self.index] != -1:
            self._output()
        if self.line_start:
            self.line_start = False
            self.line_number += 1
            self.line_numbers[self.index] = self.line_number
        if unit == _LF:
            self.line_start = True
        self._update(unit)

    def _update(self, unit: int) -> None:
        leaving = self.window[self.index]
        self.window[self.index] = unit
        self.value = (_MOD * self.value + unit - _FIRST_MOD * leaving) & _MASK
        self.index = (self.index + 1) % BLOCK_SIZE

    def _output(self) -> None:
        self.counts[self.value] = self.counts.get(self.value, 0) + 1
        self.hashes[self.line_numbers[self.index]] = f"{self.value:x}:{self.counts[self.value]}"
        self.line_numbers[self.index] = -1
