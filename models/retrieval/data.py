"""Corpus records -> (query, code) text pairs, the way CodeSearchNet built them: the query is the
first paragraph of the docstring (closer in length to a search query than the whole docstring), the
code is the function without its docstring (here: signature + body)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any


def query_text(docstring: str) -> str:
    """First paragraph of a cleaned docstring, whitespace collapsed."""
    first = docstring.strip().split("\n\n", 1)[0]
    return " ".join(first.split())


def code_text(record: dict[str, Any]) -> str:
    """Signature and body (``target`` starts with the newline after the docstring)."""
    return str(record.get("signature", "")) + str(record.get("target", ""))


def load_pairs(corpus: Path, split: str) -> tuple[list[str], list[str]]:
    """(queries, codes) of ``corpus/<split>.jsonl`` in file order; records with an empty query or
    code are skipped."""
    queries, codes = [], []
    with open(corpus / f"{split}.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            q, c = query_text(str(rec.get("docstring", ""))), code_text(rec)
            if q and c.strip():
                queries.append(q)
                codes.append(c)
    return queries, codes


def shuffled(n: int, seed: int) -> list[int]:
    """A fixed permutation of range(n) (the evaluation's chunks and training's epochs use it)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order
