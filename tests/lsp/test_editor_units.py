"""The editor-experience pieces as plain functions: typing clock, quiet spots (real tree-sitter),
single-line shaping, duplicate-below filter, continuation of a shown suggestion, acceptance counts
and the stats file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types

from codegen_lsp.analysis.document import Document
from codegen_lsp.analysis.grammar import Candidate
from codegen_lsp.analysis.sites import find_sites, site_at
from codegen_lsp.analysis.triggers import TypingClock, quiet_spot
from codegen_lsp.features.inline import InlineOffers, duplicates_below, first_statement, shape
from codegen_lsp.stats import (
    AcceptanceTracker,
    ModelStats,
    format_report,
    load_stats,
    merge_into_file,
    percentile,
)


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_typing_clock_adapts_to_the_pace_within_bounds() -> None:
    now = FakeTime()
    clock = TypingClock(now)
    assert clock.wait_s("a", 250) == 0.25  # no estimate yet: the setting
    for _ in range(20):  # a fast typist: 60 ms between keys
        clock.edit("a")
        now.t += 0.06
    assert clock.wait_s("a", 250) == pytest.approx(0.09)
    now.t += 5  # a pause does not count as a slow keystroke
    clock.edit("a")
    assert clock.wait_s("a", 250) == pytest.approx(0.09)
    for _ in range(20):  # a slow typist: capped by the setting
        clock.edit("b")
        now.t += 0.5
    assert clock.wait_s("b", 250) == 0.25
    assert clock.wait_s("b", 0) == 0.0
    clock.forget("a")
    assert clock.gap_s("a") is None


QUIET = '''def f(name):
    """Greet."""
    return "hello wor" + name  # say hel
'''


@pytest.mark.parametrize(("col", "quiet"), [
    (len('    return "hello wor'), True),   # inside a word in a string
    (len('    return "hello '), False),    # after a space in a string
    (len('    return "hello wor" + na'), False),  # a word in code
    (len('    return "hello wor" + name  # say hel'), True),  # inside a word in a comment
    (len('    return'), False),
])
def test_quiet_spot(col: int, quiet: bool) -> None:
    assert quiet_spot(Document.from_text(QUIET), 2, col) is quiet


@pytest.mark.parametrize(("line", "quiet"), [
    ('    return "hello wor', True),  # no closing quote yet: tree-sitter has no string node
    ("    return 'it\\'s wor", True),
    ('    return "a" + wor', False),
    ('    return x  # a com', True),
])
def test_quiet_spot_while_the_string_is_unclosed(line: str, quiet: bool) -> None:
    doc = Document.from_text(f'def f(name):\n    """Greet."""\n{line}')
    assert quiet_spot(doc, 2, len(line)) is quiet


def test_fstring_interpolation_is_code() -> None:
    doc = Document.from_text('x = f"a {name}"\n')
    assert quiet_spot(doc, 0, len('x = f"a {nam')) is False


def test_first_statement_and_shape() -> None:
    body = "    total = a + b\n    total = total + c\n    return total"
    assert first_statement(body) == "    total = a + b"
    assert first_statement("    if a:\n        return b\n    return c") is None  # opens a block
    assert first_statement("    return a") is None  # the whole body already
    text = 'def long_sum(a, b, c):\n    """Sum."""\n    total = a +\n'  # a line being typed
    doc = Document.from_text(text)
    site = site_at(doc, 2, len("    total = a +"))
    assert site is not None and site.kind == "live"
    assert shape(doc, site, Candidate(body, 0.0)).body == "    total = a + b"
    empty = Document.from_text('def long_sum(a, b, c):\n    """Sum."""\n    \n')
    site = site_at(empty, 2, 4)
    assert site is not None
    assert shape(empty, site, Candidate(body, 0.0)).body == body  # an empty body gets a body


def test_duplicates_below() -> None:
    doc = Document.from_text('def f(a):\n    """Doc."""\n    \n    return a + 1\n')
    end = types.Position(line=2, character=4)
    assert duplicates_below(doc, end, "\n    return a + 1")
    assert not duplicates_below(doc, end, "\n    return a - 1")
    assert not duplicates_below(doc, end, "\n    ")


def test_continuation_of_a_partly_accepted_item() -> None:
    before = 'def add(a, b):\n    """Return the sum of a and b."""\n    '
    doc = Document.from_text(before + "\n\nx = 1\n")
    cursor = types.Position(line=2, character=4)
    start = types.Position(line=1, character=len('    """Return the sum of a and b."""'))
    text = "\n    return a + b"
    item = types.InlineCompletionItem(insert_text=text, range=types.Range(start=start, end=cursor))
    offers = InlineOffers()
    offers.remember("u", doc, cursor, [item], ["id1"])
    assert offers.continue_at("u", doc, cursor)  # the same place: the same items
    doc.apply_change(2, 4, 2, 4, "return")  # accept the next word
    moved = types.Position(line=2, character=10)
    items = offers.continue_at("u", doc, moved)
    assert [i.insert_text for i in items] == [text]
    assert items[0].range == types.Range(start=start, end=moved)
    assert items[0].command is not None and items[0].command.arguments == ["id1"]
    doc.apply_change(2, 10, 2, 10, " b")  # typed something else: no continuation
    assert offers.continue_at("u", doc, types.Position(line=2, character=12)) == []


def test_acceptance_counts_once_per_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    t = AcceptanceTracker(path)
    a = t.offer("m", "\n    return a + b", typed=5)  # 12 characters from the model
    b = t.offer("m", "\n    return 1", typed=5)
    assert t.shown(a) and not t.shown(a)  # shown twice (cycling back) counts once
    assert t.shown(b)
    assert t.partially_accepted(a, 11)  # "return"
    assert not t.partially_accepted(a, 8)  # nothing new
    assert t.accepted(a) and not t.accepted(a)
    t.latency("m", 100.0)
    t.latency("m", 300.0)
    t.flush()
    s = load_stats(path)["m"]
    assert (s.shown, s.accepted, s.partially_accepted, s.kept) == (2, 1, 1, 1)
    assert (s.chars_shown, s.chars_kept) == (12 + 8, 12)
    assert s.latencies_ms == [100.0, 300.0]
    c = t.offer("m", "\n    return 2", typed=5)
    t.partially_accepted(c, 9)
    t.flush()  # merged with what is on disk
    s = load_stats(path)["m"]
    assert (s.shown, s.kept, s.partially_accepted, s.chars_kept) == (3, 2, 2, 16)


def test_stats_file_and_report(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    merge_into_file({"tiny": ModelStats(shown=4, kept=1, accepted=1, chars_shown=40, chars_kept=10,
                                        latencies_ms=[float(i) for i in range(1, 101)])}, path)
    report = format_report(load_stats(path), path)
    assert "tiny" in report and "25.0%" in report and "10 of 40" in report
    assert " 50 " in report and " 95 " in report
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a codegen-lsp stats file"):
        load_stats(path)
    assert "no suggestions recorded" in format_report({}, path)
    assert json.loads(json.dumps({"ok": True}))  # the file itself is plain JSON


def test_sites_unchanged_by_the_helpers() -> None:
    doc = Document.from_text(QUIET)
    before = find_sites(doc)
    quiet_spot(doc, 2, 10)
    assert find_sites(doc) == before


def test_stats_command(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "codegen_lsp", "stats", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    empty = run()
    assert empty.returncode == 0 and "no suggestions recorded yet" in empty.stdout
    path = tmp_path / "codegen-lsp" / "stats.json"
    merge_into_file({"m": ModelStats(shown=2, kept=1, accepted=1, chars_shown=9, chars_kept=4)}, path)
    assert "50.0%" in run().stdout
    assert json.loads(run("--json").stdout)["m"]["chars_kept"] == 4
    path.write_text("{not json")
    bad = run()
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "unreadable" in bad.stderr
    assert run("--reset").returncode == 0 and not path.exists()
