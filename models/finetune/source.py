"""A fine-tuning corpus from a user's own repository (``--source``): the corpus builder's extractor
(functions with a docstring, ``models/corpus/extract.py``) and near-duplicate filter, split by file so a
file's functions never sit on both sides (train / valid, by a stable hash of the file's path)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from models.corpus.dedup import Deduplicator
from models.corpus.extract import extract_pairs
from models.corpus.sources import _py_files
from models.corpus.split import TRAIN_PERCENT


class SourceError(ValueError):
    """The repository yields nothing to train on."""


def _bucket(rel: str) -> int:
    return int.from_bytes(hashlib.sha256(rel.encode("utf-8")).digest()[:8], "big") % 100


def build_source_corpus(repo: Path, out: Path) -> dict[str, int]:
    """Write ``out/train.jsonl`` and ``out/valid.jsonl`` from the ``.py`` files under ``repo`` (tests,
    vendored and cache directories skipped, as for the main corpus); returns pair and file counts.
    A file goes to valid when its path hashes into the top 20%; when none does, the file with the
    highest hash does (a repository of two or more files always has a validation split)."""
    if not repo.is_dir():
        raise SourceError(f"--source {repo}: not a directory")
    per_file: dict[str, list[dict[str, object]]] = {}
    dedup = Deduplicator()
    rejects: Counter[str] = Counter()
    for path in _py_files(repo, repo):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        rel = path.relative_to(repo).as_posix()
        kept = [p for p in extract_pairs(text, rejects) if dedup.admit(p.target)]
        if kept:
            per_file[rel] = [{"package": repo.name, "path": rel, **asdict(p)} for p in kept]
    if not per_file:
        raise SourceError(f"--source {repo}: no function with a docstring and a body of 3+ lines found")
    if len(per_file) < 2:
        raise SourceError(f"--source {repo}: functions in only one file; need two or more files to hold one "
                          "out for validation")
    ranked = sorted(per_file, key=_bucket)
    valid = {f for f in ranked if _bucket(f) >= TRAIN_PERCENT} or {ranked[-1]}
    if len(valid) == len(ranked):
        valid = {ranked[-1]}
    out.mkdir(parents=True, exist_ok=True)
    counts = {"train": 0, "valid": 0}
    for split in counts:
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            for rel in sorted(per_file):
                if (rel in valid) == (split == "valid"):
                    for rec in per_file[rel]:
                        fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                        counts[split] += 1
    return {**counts, "files": len(per_file), "valid_files": len(valid)}
