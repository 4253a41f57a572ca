"""``python -m models.treedec measure``: what the engine writes before any check, on held-out pairs:
raw parse rate (every returned candidate, and the finished beam hypotheses the engine dropped because
their tree did not render to valid Python), exact match as text (whitespace-normalized, the
evaluation's metric) and as AST (``ast.unparse`` of both sides: layout, quotes and comments
aside), BLEU of the top candidate, and latency."""

from __future__ import annotations

import ast
import json
import statistics
import time
from pathlib import Path
from typing import Any

from codegen_lsp.engine import GenerationConfig
from codegen_lsp.engine.kinds import load_engine
from codegen_lsp.engine.treedec import TreeDecoderEngine
from codegen_lsp.engine.treedec.grammar import unparse_body
from models.evaluate.metrics import bleu_details, exact_match
from models.evaluate.pairs import sample_pairs
from models.treedec.asdl import body_statements


def _parses(prompt: str, text: str) -> bool:
    try:
        ast.parse(("if 1:\n" if prompt[:1] in " \t" else "") + prompt + text)
    except SyntaxError:
        return False
    return True


def _ast_text(prompt: str, target: str) -> str | None:
    try:
        return unparse_body(body_statements(prompt, target))
    except (SyntaxError, ValueError):
        return None


def measure(pkg: Path, corpus: Path, split: str, limit: int | None, candidates: int, out: Path | None,
            label: str, threads: int | None = None) -> dict[str, Any]:
    engine = load_engine(pkg, device="cpu", threads=threads)
    if not isinstance(engine, TreeDecoderEngine):
        raise ValueError(f"{pkg} is not a tree-decoder package")
    pairs = sample_pairs(corpus, split, limit, 0)
    raw = parsed = finished = ast_exact = text_exact = 0
    hyps, refs, seconds, steps = [], [], [], []
    for pair in pairs:
        t0 = time.perf_counter()
        res = engine.generate(pair.prompt, GenerationConfig(num_candidates=candidates, max_new_tokens=160))
        seconds.append(time.perf_counter() - t0)
        steps.append(res.generations[0].timings.get("steps", 0.0))
        done = [g for g in res.generations if g.finish_reason == "eos"]
        finished += bool(done)
        raw += len(done)
        parsed += sum(_parses(pair.prompt, g.text) for g in done)
        top = done[0].text if done else ""
        text_exact += exact_match(top[1:], pair.reference) if done else 0
        want = _ast_text(pair.prompt, pair.target)
        got = _ast_text(pair.prompt, top) if done else None
        ast_exact += want is not None and got == want
        hyps.append(top[1:])
        refs.append(pair.reference)
    n = max(len(pairs), 1)
    bleu = bleu_details(hyps, refs)
    report = {
        "label": label, "package": str(pkg), "split": split, "pairs": len(pairs), "candidates": candidates,
        "order": engine.order, "beam_size": max(candidates, engine.beam_size),
        "raw_outputs": raw, "raw_parse_rate": round(parsed / max(raw, 1), 4),
        "dropped_by_render_check": engine.dropped,
        "parse_rate_incl_dropped": round(parsed / max(raw + engine.dropped, 1), 4),
        "pairs_with_a_body": round(finished / n, 4), "exact_match_text": round(text_exact / n, 4),
        "exact_match_ast": round(ast_exact / n, 4), "bleu_100": round(bleu["bleu"], 2), "bleu_parts": bleu,
        "latency_s": {"mean": round(statistics.fmean(seconds or [0.0]), 3),
                      "p50": round(statistics.median(seconds or [0.0]), 3),
                      "p95": round(sorted(seconds or [0.0])[int(0.95 * (len(seconds) - 1))], 3)},
        "mean_steps": round(statistics.fmean(steps or [0.0]), 1), "threads": engine.threads,
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**report, "bodies": hyps}, indent=1) + "\n")
    return report
