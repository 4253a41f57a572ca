"""Analysis speed on a 10k-line file: full parse vs incremental edit + reparse + site finding.

Tree-sitter's incremental reparse costs roughly one step per top-level statement after the edit
(the module's statement list is re-linked), so an edit near the top of a file made of thousands of
one-line statements costs close to a full parse; the figures below are for a file of classes and
functions, edited at the middle, the top and the bottom.

Run: ``.venv/bin/python benchmarks/bench_analysis.py [lines]``. Prints median milliseconds.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from codegen_lsp.analysis.document import Document
from codegen_lsp.analysis.grammar import IncrementalBodyCheck, check_body
from codegen_lsp.analysis.prompt import build_prompt
from codegen_lsp.analysis.sites import find_sites, site_at


def source(lines: int) -> str:
    out = ["import os", "from typing import Any", ""]
    i = 0
    while len(out) < lines:
        out += [
            f"class Model{i}:", f'    """Model number {i}."""', "",
            "    def __init__(self, value: int = 0) -> None:", "        self.value = value", "",
            f"    def compute_{i}(self, x: int, *args: Any) -> int:", '        """Compute something."""',
            "        pass", "",
            f"    def real_{i}(self) -> int:", '        """Real code."""', "        total = 0",
            "        for k in range(self.value):", "            total += k * 2", "        return total", "", "",
            f"def helper_{i}(path: str) -> bool:", '    """Check path."""', "", "",
        ]
        i += 1
    return "\n".join(out) + "\n"


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    text = source(lines)
    doc = Document.from_text(text)
    sys.stdout.write(f"file: {doc.line_count} lines, {len(doc.data)} bytes, {len(find_sites(doc))} sites" + "\n")

    full_parse = median_ms(lambda: Document.from_text(text), 15)
    full = median_ms(lambda: find_sites(Document.from_text(text)), 15)

    middle = doc.line_count // 2
    target = next(s for s in find_sites(doc) if s.header_start.line >= middle and s.kind == "stub")
    line = target.replace_start.line
    state = {"n": 0}

    def edit_and_find() -> None:  # type one character into a stub, then find every site again
        state["n"] += 1
        if state["n"] % 2:
            doc.apply_change(line, 8, line, 8, "x")
        else:
            doc.apply_change(line, 8, line, 9, "")
        find_sites(doc)

    def edit_only() -> None:
        state["n"] += 1
        doc.apply_change(line, 8, line, 8 if state["n"] % 2 else 9, "x" if state["n"] % 2 else "")

    def newline_and_find() -> None:  # insert or remove a line: every later site moves down or up
        state["n"] += 1
        if state["n"] % 2:
            doc.apply_change(line + 1, 0, line + 1, 0, "\n")
        else:
            doc.apply_change(line + 1, 0, line + 2, 0, "")
        find_sites(doc)

    incremental = median_ms(edit_and_find, 41)
    reparse = median_ms(edit_only, 41)
    by_position = {}
    for name, site_index in (("top", 1), ("bottom", -2)):
        other = [s for s in find_sites(doc) if s.kind == "stub"][site_index]

        def typing(line: int = other.replace_start.line) -> None:
            state["n"] += 1
            doc.apply_change(line, 8, line, 8 if state["n"] % 2 else 9, "x" if state["n"] % 2 else "")
            find_sites(doc)

        state["n"] = 0
        by_position[name] = median_ms(typing, 20)
    state["n"] = 0
    lines_moved = median_ms(newline_and_find, 40)
    cursor = median_ms(lambda: site_at(doc, target.replace_start.line, 8), 41)
    site = site_at(doc, target.header_start.line, 0)
    assert site is not None
    prompt = median_ms(lambda: build_prompt(doc, site, lambda t: len(t) // 4, 1500), 15)
    body = f"{site.body_indent}y = x * 2\n{site.body_indent}return y + self.value"
    assert check_body(doc, site, body).ok
    check = median_ms(lambda: check_body(doc, site, body), 41)
    viable = IncrementalBodyCheck(doc, site)
    partial = f"\n{site.body_indent}y = x * 2\n{site.body_indent}if y:\n"
    assert viable.viable(partial)
    step = median_ms(lambda: viable.viable(partial), 41)

    broken = Document.from_text('x = """never closed\n' + text)
    broken_full = median_ms(lambda: find_sites(Document.from_text(broken.text)), 3)

    sys.stdout.write(f"full parse:                              {full_parse:7.2f} ms" + "\n")
    sys.stdout.write(f"full parse + find_sites:                 {full:7.2f} ms" + "\n")
    sys.stdout.write(f"edit + incremental reparse:              {reparse:7.2f} ms" + "\n")
    sys.stdout.write(f"edit + incremental reparse + find_sites: {incremental:7.2f} ms" + "\n")
    sys.stdout.write(f"ratio full / incremental (with sites):   {full / incremental:7.1f} x" + "\n")
    for name, ms in by_position.items():
        sys.stdout.write(f"  same, edit near the {name:6}:             {ms:7.2f} ms" + "\n")
    sys.stdout.write(f"insert/delete a line + reparse + sites:  {lines_moved:7.2f} ms" + "\n")
    sys.stdout.write(f"site_at (cached sites):                  {cursor:7.2f} ms" + "\n")
    sys.stdout.write(f"build_prompt:                            {prompt:7.2f} ms" + "\n")
    sys.stdout.write(f"check_body:                              {check:7.2f} ms" + "\n")
    sys.stdout.write(f"IncrementalBodyCheck.viable:             {step:7.2f} ms" + "\n")
    sys.stdout.write(f"broken at line 1 (all recovered):        {broken_full:7.2f} ms" + "\n")


if __name__ == "__main__":
    main()
