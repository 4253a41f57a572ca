"""Run a model package over evaluation pairs with the server's ``BodyGenerator`` (the same prompt
builder, engine, on-line grammar check and ranking the editor features use)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from codegen_lsp.analysis.prompt import build_prompt
from codegen_lsp.config import Settings
from codegen_lsp.generation import BodyGenerator

from .metrics import PairResult
from .pairs import EvalPair, site_document


def eval_settings(model: Path, candidates: int = 1, temperature: float = 0.0, max_tokens: int = 160,
                  time_budget_ms: int = 60000) -> Settings:
    """Server settings for scoring: greedy single candidate by default (the server's default is 3
    candidates at T=0.2 with a 4 s budget; a long budget here keeps ``length`` the only cap)."""
    settings, warnings = Settings(model_path=str(model), device="cpu", candidates=candidates, max_tokens=max_tokens,
                                  temperature=temperature, time_budget_ms=time_budget_ms).validated()
    if warnings:
        raise ValueError("; ".join(warnings))
    return settings


def evaluate_pairs(settings: Settings, pairs: list[EvalPair],
                   progress: Callable[[int, PairResult], None] | None = None) -> tuple[list[PairResult], float]:
    """One result per pair, plus the seconds the model took to load."""
    generator = BodyGenerator(settings)
    t0 = time.perf_counter()
    engine = generator.ensure_engine()
    load_s = time.perf_counter() - t0
    budget = max(64, engine.manifest.context_length - settings.max_tokens - 8)
    out: list[PairResult] = []
    for i, pair in enumerate(pairs):
        try:
            doc, site = site_document(pair)
        except ValueError as exc:
            result = PairResult(pair.index, pair.name, None, False, [], 0.0, 0.0, False, str(exc))
        else:
            prompt = build_prompt(doc, site, engine.count_tokens, budget, engine.manifest.prompt.end_before_newline)
            res = generator.bodies(doc, site)
            best = res.candidates[0] if res.candidates else None
            result = PairResult(
                pair.index, pair.name, best.body if best else None, bool(best and best.truncated),
                [f for _, _, f in res.raw], res.seconds, res.first_token_s, prompt.text == pair.prompt,
            )
        out.append(result)
        if progress is not None:
            progress(i, result)
    return out, load_s
