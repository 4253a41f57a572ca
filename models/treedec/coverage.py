"""``python -m models.treedec coverage``: over every split of the corpus, the share of bodies the
grammar expresses and rebuilds exactly in both orders (``ast.unparse`` of the replayed tree equals
that of the original), the reasons for the others, and the action counts."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from codegen_lsp.engine.treedec.grammar import Grammar
from models.evaluate.pairs import sample_pairs
from models.treedec.asdl import body_statements, check_roundtrip, grammar_spec
from models.treedec.config import named


def coverage(corpus: Path, splits: tuple[str, ...] = ("train", "valid", "test")) -> dict[str, Any]:
    grammar = Grammar(grammar_spec())
    t0 = time.perf_counter()
    reasons: Counter[str] = Counter()
    lengths: list[int] = []
    total = 0
    for split in splits:
        for pair in sample_pairs(corpus, split, None):
            total += 1
            try:
                body = body_statements(pair.prompt, pair.target)
                if not body:
                    reasons["empty body after the docstring"] += 1
                    continue
                counts = check_roundtrip(grammar, body)
            except SyntaxError:
                reasons["does not parse under this Python"] += 1
            except RecursionError:
                reasons["too deeply nested"] += 1
            except ValueError as exc:
                reasons[str(exc)[:80]] += 1
            else:
                lengths.append(counts["preorder"])
    ok = len(lengths)
    arr = np.asarray(lengths or [0])
    budgets = {str(b): round(float((arr <= b).mean()) * ok / max(total, 1), 4)
               for b in (60, 100, named("cpu").train.max_actions, 200, 320)}
    return {"pairs": total, "round_trip": ok, "coverage": round(ok / max(total, 1), 4),
            "failures": dict(reasons.most_common()), "actions": {
                "mean": round(float(arr.mean()), 1), "p50": int(np.percentile(arr, 50)),
                "p90": int(np.percentile(arr, 90)), "max": int(arr.max())},
            "share_within_budget": budgets, "grammar": {"constructors": len(grammar.constructors),
                                                        "fields": len(grammar.fields)},
            "seconds": round(time.perf_counter() - t0, 1)}
