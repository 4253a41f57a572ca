"""Reading the marker conventions of tests/data/analysis/ (see the README there)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "analysis"
CURSOR = "$CURSOR$"
_MARK = re.compile(r"# site: (\S+) (stub|empty|live)\b")


@dataclass
class Fixture:
    name: str
    text: str
    """The text with the cursor marker removed."""
    expected: list[tuple[str, str]]
    """(qualname, kind) of every marked site, sorted."""
    cursor: tuple[int, int] | None
    """(line, UTF-16 character) of the cursor marker."""


def load(name: str) -> Fixture:
    """The fixture ``name`` (e.g. ``sites_basic.py``; stored as ``sites_basic.py.txt`` so that
    linters leave the deliberately broken ones alone)."""
    text = (DATA / f"{name}.txt").read_text(encoding="utf-8")
    cursor = None
    if CURSOR in text:
        i = text.index(CURSOR)
        line_start = text.rfind("\n", 0, i) + 1
        cursor = (text.count("\n", 0, i), len(text[line_start:i].encode("utf-16-le")) // 2)
        text = text.replace(CURSOR, "")
    expected = sorted((m.group(1), m.group(2)) for m in _MARK.finditer(text))
    return Fixture(name, text, expected, cursor)


def fixture_names(prefix: str = "") -> list[str]:
    return sorted(p.name.removesuffix(".txt") for p in DATA.glob(f"{prefix}*.py.txt"))


def big_source(lines: int = 10_000) -> str:
    """A valid file of about ``lines`` lines: classes with stub methods and real methods."""
    out = ["import os", "from typing import Any", ""]
    i = 0
    while len(out) < lines:
        out += [
            f"class Model{i}:",
            f'    """Model number {i}."""',
            "",
            "    def __init__(self, value: int = 0) -> None:",
            "        self.value = value",
            "",
            f"    def compute_{i}(self, x: int, *args: Any) -> int:",
            '        """Compute something."""',
            "        pass",
            "",
            f"    def real_{i}(self) -> int:",
            '        """Real code."""',
            "        total = 0",
            "        for k in range(self.value):",
            "            total += k * 2",
            "        return total",
            "",
            "",
            f"def helper_{i}(path: str) -> bool:",
            '    """Check path."""',
            "",
            "",
        ]
        i += 1
    return "\n".join(out) + "\n"
