"""Which programming languages a source tree holds, by file name."""

import os
from collections import Counter
from pathlib import Path
from typing import Dict

EXTENSIONS = {
    ".c": "c",
    ".h": "c",
    ".cc": "c++",
    ".cpp": "c++",
    ".cxx": "c++",
    ".c++": "c++",
    ".hh": "c++",
    ".hpp": "c++",
    ".hxx": "c++",
    ".py": "python",
    ".rs": "rust",
    ".go": "go",
    ".java": "java",
    ".js": "javascript",
    ".sh": "shell",
}


def detect(root: Path) -> Dict[str, int]:
    """Number of files per language under ``root``; symbolic links are not followed."""
    counts: Counter = Counter()
    for _directory, _dirs, files in os.walk(root):
        for name in files:
            language = EXTENSIONS.get(os.path.splitext(name)[1].lower())
            if language:
                counts[language] += 1
    return dict(counts)
