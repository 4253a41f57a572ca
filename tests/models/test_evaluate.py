"""Evaluation through the server's path on the scripted model (tests/scripted_rules.py writes four
exact bodies, one valid but wrong, one invalid): the metrics come out exactly, the prompt is
identical to the corpus prompt, sampling is seeded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.evaluate.__main__ import main
from models.evaluate.execution import module_name, run_doctests, runnable_pairs
from models.evaluate.metrics import PairResult, corpus_bleu, exact_match, summarize
from models.evaluate.pairs import EvalPair, sample_pairs, site_document
from models.evaluate.run import eval_settings, evaluate_pairs
from models.evaluate.table import table

PAIRS = [
    ("def compute_total(total, count):\n    \"\"\"Return the sum of total and count.\"\"\"", "\n    return total + count"),
    ("def get_size(size, item):\n    \"\"\"Return the length of size.\"\"\"", "\n    return len(size)"),
    ("    def make_value(self, value, data):\n        \"\"\"Return value multiplied by data.\"\"\"",
     "\n        return value * data"),
    ("def check_score(score, name):\n    \"\"\"Return score unchanged if positive, else zero.\"\"\"",
     "\n    if score > 0:\n        return score\n    return 0"),
    ("def build_text(text, result):\n    \"\"\"Return text as a string.\"\"\"", "\n    return str(text)"),
    ("def parse_item(item, total):\n    \"\"\"Return a list with item and total.\"\"\"", "\n    return [item, total]"),
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    with open(root / "test.jsonl", "w") as fh:
        for i, (p, t) in enumerate(PAIRS):
            fh.write(json.dumps({"package": "fixture", "name": f"f{i}", "prompt": p, "target": t}) + "\n")
    return root


def test_metrics() -> None:
    assert exact_match("return  a +\n b", "return a + b") and not exact_match(None, "x")
    assert corpus_bleu(["return a + b"], ["return a + b"]) == pytest.approx(100.0)
    assert corpus_bleu([""], ["return a + b"]) == 0.0
    results = [PairResult(0, "f", "return a + b", False, ["eos"], 1.0, 0.1, True),
               PairResult(1, "g", None, False, ["length"], 3.0, 0.2, True)]
    s = summarize(results, ["return a + b", "return 1"])
    assert (s.n, s.valid, s.valid_complete, s.exact_match, s.hit_token_limit) == (2, 0.5, 0.5, 0.5, 0.5)
    assert 0 < s.bleu < 1 and s.bleu_100 == pytest.approx(s.bleu * 100, abs=0.01)
    assert s.mean_latency_s == 2.0 and s.finish_reasons == {"eos": 1, "length": 1}


def test_sample_is_seeded_and_sites_are_found(corpus: Path) -> None:
    a = sample_pairs(corpus, "test", 3, seed=1)
    assert [p.index for p in a] == [p.index for p in sample_pairs(corpus, "test", 3, seed=1)]
    assert [p.index for p in a] == sorted(p.index for p in a)
    assert len(sample_pairs(corpus, "test", None)) == len(PAIRS)
    method = sample_pairs(corpus, "test", None)[2]
    doc, site = site_document(method)
    assert site.name == "make_value" and site.kind == "empty" and site.def_indent == "    "


def test_evaluation_through_the_server_path(scripted_pkg: Path, corpus: Path, tmp_path: Path) -> None:
    pairs = sample_pairs(corpus, "test", None)
    results, load_s = evaluate_pairs(eval_settings(scripted_pkg, max_tokens=64), pairs)
    assert len(results) == len(pairs) and load_s >= 0
    assert all(r.prompt_matches and not r.error for r in results)
    assert [r.body is not None for r in results] == [True, True, True, True, True, False]
    s = summarize(results, [p.reference for p in pairs])
    assert (s.exact_match, s.valid, s.valid_complete, s.hit_token_limit) == (0.6667, 0.8333, 0.8333, 0.0)  # rounded to 4 places
    assert s.finish_reasons == {"eos": 6} and 0.2 < s.bleu < 1.0
    assert s.mean_latency_s > 0 and s.prompt_mismatches == 0
    out = tmp_path / "eval.json"
    assert main(["--model", str(scripted_pkg), "--corpus", str(corpus), "--limit", "4", "--json", str(out),
                 "--max-tokens", "24", "--nice", "0", "--no-progress", "--label", "tiny"]) == 0
    report = json.loads(out.read_text())
    assert report["summary"]["n"] == 4 == len(report["pairs"]) and report["label"] == "tiny"
    md = table([out])
    assert md.count("\n") == 2 and "| tiny | 4 |" in md


DOUBLE = EvalPair(0, "fixture", "double", 'def double(x):\n    """Twice x.\n\n    >>> double(2)\n    4\n    """', "\n    return 2 * x")


@pytest.mark.parametrize(("body", "passed", "detail"), [
    ("    return 2 * x", True, "ok"),
    ("    return x + 1", False, "1 of 1 examples failed"),
    # passes only because the sandbox refuses sockets
    ("    import socket\n    try:\n        socket.socket()\n    except OSError as e:\n        return 2 * x if 'disabled' in str(e) else 0",
     True, "ok"),
    ("    while True:\n        pass", False, "timeout"),
    ("    import os\n    os._exit(3)", False, "error: exit 3"),
])
def test_doctests_run_sandboxed_in_a_subprocess(body: str, passed: bool, detail: str) -> None:
    result = run_doctests(DOUBLE, body, timeout=3.0)
    assert (result.passed, result.detail) == (passed, detail)


def test_only_pairs_whose_reference_passes_are_kept(tmp_path: Path) -> None:
    wrong_ref = EvalPair(1, "fixture", "half", 'def half(x):\n    """Half.\n\n    >>> half(4)\n    2\n    """', "\n    return x")
    no_tests = EvalPair(2, "fixture", "f", 'def f():\n    """Nothing to run."""', "\n    return 1")
    cache = tmp_path / "runnable.json"
    assert [p.name for p in runnable_pairs([DOUBLE, wrong_ref, no_tests], cache)] == ["double"]
    assert json.loads(cache.read_text()) == {"fixture:0": True, "fixture:1": False}
    assert module_name("networkx/algorithms/__init__.py") == "networkx.algorithms"
