"""``python -m models.finetune --source REPO``: a corpus from a user's repository (same extractor and
dedup as the main corpus, split by file), fine-tuned into a package the engine serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from codegen_lsp.engine import GenerationConfig, load_engine
from codegen_lsp.modelpkg import load_package
from export.tiny import build_tiny_checkpoint
from models.finetune.__main__ import main
from models.finetune.source import SourceError, build_source_corpus

FILES = {
    "pkg/text.py": '''
def shout(words):
    """Join the words and upper-case the result."""
    joined = " ".join(words)
    loud = joined.upper()
    return loud + "!"


def count_vowels(text):
    """Count how many vowels the text holds."""
    total = 0
    for ch in text.lower():
        if ch in "aeiou":
            total += 1
    return total
''',
    "pkg/maths.py": '''
def clamp(value, low, high):
    """Keep value between low and high."""
    if value < low:
        return low
    if value > high:
        return high
    return value


def mean(values):
    """Arithmetic mean of a non-empty list."""
    if not values:
        raise ValueError("empty")
    return sum(values) / len(values)
''',
    "pkg/io_utils.py": '''
def read_lines(path):
    """Read a file and return its stripped lines."""
    with open(path) as fh:
        lines = fh.readlines()
    return [line.strip() for line in lines]


def write_pairs(path, pairs):
    """Write key value pairs, one per line."""
    with open(path, "w") as fh:
        for key, value in pairs:
            fh.write(f"{key}={value}\\n")
    return len(pairs)
''',
    "tests/test_text.py": '''
def test_shout_is_loud_and_clear():
    """The tests directory is never trained on."""
    words = ["a", "b"]
    out = words[0]
    assert out == "a"
''',
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "myrepo"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _records(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_corpus_from_a_repository_is_split_by_file(repo: Path, tmp_path: Path) -> None:
    counts = build_source_corpus(repo, tmp_path / "corpus")
    train, valid = _records(tmp_path / "corpus" / "train.jsonl"), _records(tmp_path / "corpus" / "valid.jsonl")
    assert counts == {"train": len(train), "valid": len(valid), "files": 3, "valid_files": 1}
    assert len(train) + len(valid) == 6 and valid
    assert not {r["path"] for r in train} & {r["path"] for r in valid}  # no file on both sides
    assert all(not r["path"].startswith("tests/") for r in train + valid)
    assert all(r["prompt"].rstrip().endswith('"""') and r["target"].startswith("\n") for r in train)


def test_a_repository_without_functions_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.py").write_text("X = 1\n")
    with pytest.raises(SourceError, match="no function with a docstring"):
        build_source_corpus(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(SourceError, match="not a directory"):
        build_source_corpus(tmp_path / "missing", tmp_path / "out")


def test_finetune_on_your_own_code_in_one_command(repo: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    threads = torch.get_num_threads()
    ckpt = build_tiny_checkpoint(tmp_path / "ckpt", "qwen2")
    out = tmp_path / "run"
    args = ["--base", str(ckpt), "--source", str(repo), "--out", str(out), "--steps", "4", "--batch-size", "2",
            "--seq-len", "96", "--lr", "3e-3", "--threads", "1", "--nice", "0", "--export", "generic",
            "--no-progress", "--lora-rank", "2", "--sat"]
    try:
        assert main(args) == 0
        assert main([*args[:2], "--source", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    finally:
        torch.set_num_threads(threads)
    assert "error: --source" in capsys.readouterr().err
    report = json.loads((out / "history.json").read_text())
    assert report["steps"] == 4 and all("structure" in h for h in report["history"])
    assert (out / "corpus" / "train.jsonl").is_file() and (out / "adapter_config.json").is_file()
    pkg = load_package(out / "package", verify_hashes=True)
    assert pkg.manifest.architecture == "qwen2" and "SAT" in pkg.manifest.provenance.notes
    engine = load_engine(out / "package", device="cpu", threads=1)
    assert engine.generate('def clamp(v, lo, hi):\n    """Keep v in range."""', GenerationConfig(max_new_tokens=4)).generations
