"""Small on-disk corpora and cancel tokens shared by the training-side tests."""

from __future__ import annotations

import json
from pathlib import Path


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
