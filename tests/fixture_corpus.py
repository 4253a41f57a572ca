"""Small on-disk corpora, edited packages and cancel tokens shared by the training-side tests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_corpus(root: Path, pairs: list[tuple[str, str]], sizes: dict[str, int],
                 extra: dict[str, str] | None = None) -> Path:
    """``root/corpus/{split}.jsonl`` for each split in ``sizes``: that many records cycling through
    ``pairs`` (prompt, target), each with the ``extra`` fields (e.g. ``package``). Returns the corpus dir."""
    corpus = root / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        with open(corpus / f"{split}.jsonl", "w") as fh:
            for i in range(n):
                prompt, target = pairs[i % len(pairs)]
                fh.write(json.dumps({**(extra or {}), "prompt": prompt, "target": target}) + "\n")
    return corpus


class CancelAfter:
    """A cancel token that turns set after ``steps`` engine steps (the engines call ``run_waiting``
    once per step, then ``is_set``)."""

    def __init__(self, steps: int = 2) -> None:
        self.steps, self.waits = steps, 0

    def run_waiting(self) -> float:
        self.waits += 1
        return 0.0

    def is_set(self) -> bool:
        return self.waits > self.steps


def edited_package(src: Path, dest: Path, edit: Callable[[dict[str, Any]], Any]) -> Path:
    """A copy of package ``src`` at ``dest`` whose manifest ``edit`` changed in place (bad-package tests)."""
    shutil.copytree(src, dest)
    data = json.loads((dest / "manifest.json").read_text())
    edit(data)
    (dest / "manifest.json").write_text(json.dumps(data))
    return dest
