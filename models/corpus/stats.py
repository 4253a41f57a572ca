"""Length statistics of a corpus directory and their text rendering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.corpus.dedup import code_tokens
from models.corpus.split import SPLITS

EDGES = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)
BAR = 40


def _bucket(n: int) -> str:
    for edge in EDGES:
        if n < edge:
            return f"<{edge}"
    return f">={EDGES[-1]}"


def summarize(corpus: Path) -> dict[str, Any]:
    """Per split: pair count, char totals and token-length histograms of prompt and target."""
    result: dict[str, Any] = {}
    labels = [f"<{e}" for e in EDGES] + [f">={EDGES[-1]}"]
    for split in SPLITS:
        path = corpus / f"{split}.jsonl"
        if not path.exists():
            continue
        hist = {"prompt": dict.fromkeys(labels, 0), "target": dict.fromkeys(labels, 0)}
        chars = {"prompt": 0, "target": 0}
        n = 0
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                n += 1
                for key in ("prompt", "target"):
                    hist[key][_bucket(len(code_tokens(rec[key])))] += 1
                    chars[key] += len(rec[key])
        result[split] = {"pairs": n, "chars": chars, "token_histogram": hist}
    return result


def render(lengths: dict[str, Any]) -> str:
    """Text histograms, one block per split and field."""
    lines: list[str] = []
    for split, info in lengths.items():
        n = info["pairs"]
        c = info["chars"]
        lines.append(f"{split}: {n} pairs, {c['prompt'] + c['target']:,} chars")
        for key, hist in info["token_histogram"].items():
            lines.append(f"  {key} tokens")
            top = max(hist.values()) or 1
            for label, count in hist.items():
                lines.append(f"    {label:>6} {count:>7} {'#' * round(BAR * count / top)}")
    return "\n".join(lines)
