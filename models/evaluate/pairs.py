"""Held-out pairs as the server would see them: a deterministic sample, and for each pair an analysis
``Document`` holding the function's header and docstring with nothing after it (an ``empty`` site)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from codegen_lsp.analysis.document import Document
from codegen_lsp.analysis.sites import FunctionSite, find_sites

WRAPPER = "if 1:\n"
"""A method or nested function keeps its indentation; under ``if 1:`` any indentation parses."""


@dataclass(frozen=True)
class EvalPair:
    index: int
    """Line number in ``<split>.jsonl`` (0-based)."""
    package: str
    name: str
    prompt: str
    target: str
    path: str = ""
    """The source file, relative to its package root (``networkx/algorithms/cluster.py``)."""

    @property
    def reference(self) -> str:
        """The body in the grammar module's body form (no leading/trailing newline)."""
        return self.target[1:].rstrip()


def sample_pairs(corpus: Path, split: str, limit: int | None, seed: int = 0) -> list[EvalPair]:
    """``limit`` pairs drawn without replacement by a seeded RNG (all of them when None), in file order."""
    with open(corpus / f"{split}.jsonl", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    chosen = list(range(len(records)))
    if limit is not None and limit < len(records):
        chosen = sorted(random.Random(seed).sample(chosen, limit))
    return [EvalPair(i, records[i]["package"], records[i]["name"], records[i]["prompt"], records[i]["target"],
                     records[i].get("path", "")) for i in chosen]


def site_document(pair: EvalPair) -> tuple[Document, FunctionSite]:
    """The document an editor would hold for this pair and its site. Raises ValueError when the
    analysis layer finds no site (counted as a failure by the caller)."""
    indented = pair.prompt[:1] in (" ", "\t")
    prefix = WRAPPER if indented else ""
    doc = Document.from_text(prefix + pair.prompt + "\n")
    header_line = prefix.count("\n")
    sites = [s for s in find_sites(doc) if s.header_start.line == header_line]
    if not sites:
        raise ValueError(f"no site found for {pair.name} (line {pair.index})")
    return doc, sites[0]
