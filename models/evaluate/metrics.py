"""Scores of generated bodies against references: corpus BLEU (sacrebleu), exact match after
whitespace normalization, and the aggregate of one run."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import sacrebleu


def normalize(body: str) -> str:
    """Whitespace-normalized text: tokens split on any whitespace, joined by one space."""
    return " ".join(body.split())


def exact_match(hypothesis: str | None, reference: str) -> bool:
    return hypothesis is not None and normalize(hypothesis) == normalize(reference)


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    """sacrebleu corpus BLEU (13a tokenization) on the 0-100 scale; a missing body scores as ''."""
    return bleu_details(hypotheses, references)["bleu"]


def bleu_details(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU with its parts: n-gram precisions, brevity penalty, length ratio, BLEU without the
    brevity penalty (bodies cut by the token limit are short, and the penalty then dominates), and
    the mean sentence BLEU (exp smoothing). All on the 0-100 scale except bp and ratio."""
    if not hypotheses:
        return {"bleu": 0.0, "bp": 0.0, "ratio": 0.0, "bleu_no_bp": 0.0, "sentence_bleu": 0.0,
                "p1": 0.0, "p2": 0.0, "p3": 0.0, "p4": 0.0}
    b = sacrebleu.corpus_bleu(hypotheses, [references])
    sentence = statistics.fmean(sacrebleu.sentence_bleu(h, [r]).score for h, r in zip(hypotheses, references,
                                                                                        strict=True))
    return {"bleu": float(b.score), "bp": round(float(b.bp), 4), "ratio": round(float(b.ratio), 4),
            "bleu_no_bp": round(float(b.score) / b.bp, 2) if b.bp > 0 else 0.0,
            "sentence_bleu": round(sentence, 2),
            **{f"p{i + 1}": round(float(p), 2) for i, p in enumerate(b.precisions)}}


@dataclass
class PairResult:
    """What one pair produced."""

    index: int
    name: str
    body: str | None
    """The top-ranked valid body, None when no candidate survived the grammar check."""
    truncated: bool
    """The chosen body is the valid prefix of a candidate that went bad."""
    finish: list[str]
    seconds: float
    first_token_s: float
    prompt_matches: bool
    """The prompt the server built equals the corpus prompt (same format as training)."""
    error: str = ""
    exec_passed: bool | None = None
    """With ``--exec``: the chosen body passed the function's doctests (None: not run)."""
    exec_detail: str = ""


@dataclass
class Summary:
    n: int
    bleu: float
    """0-1 scale (as in the paper's 0.22)."""
    bleu_100: float
    bleu_parts: dict[str, float]
    """Brevity penalty, hypothesis/reference length ratio, BLEU without the penalty, mean sentence
    BLEU and the 1-4-gram precisions (see :func:`bleu_details`)."""
    exact_match: float
    valid: float
    """Share of pairs with a chosen body that parses (complete or a valid prefix)."""
    valid_complete: float
    """Share whose chosen body is a whole candidate, not a truncated prefix."""
    hit_token_limit: float
    """Share of pairs where a candidate ended with finish reason ``length``."""
    mean_latency_s: float
    median_latency_s: float
    mean_first_token_s: float
    finish_reasons: dict[str, int] = field(default_factory=dict)
    prompt_mismatches: int = 0
    errors: int = 0
    exec_pass_rate: float | None = None
    """Share of pairs whose chosen body passed its doctests (``--exec`` runs only)."""
    unfilled: float = 0.0
    """Share of pairs left without any valid body."""
    p50_latency_s: float = 0.0
    p95_latency_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize(results: list[PairResult], references: list[str]) -> Summary:
    n = len(results)
    hyps = [r.body or "" for r in results]
    parts = bleu_details(hyps, references)
    bleu = parts.pop("bleu")
    reasons: dict[str, int] = {}
    for r in results:
        for f in r.finish:
            reasons[f] = reasons.get(f, 0) + 1
    share = lambda k: round(k / n, 4) if n else 0.0  # noqa: E731
    lat = [r.seconds for r in results] or [0.0]
    return Summary(
        n=n,
        bleu=round(bleu / 100, 4),
        bleu_100=round(bleu, 2),
        bleu_parts=parts,
        exact_match=share(sum(exact_match(r.body, ref) for r, ref in zip(results, references, strict=True))),
        valid=share(sum(r.body is not None for r in results)),
        valid_complete=share(sum(r.body is not None and not r.truncated for r in results)),
        hit_token_limit=share(sum("length" in r.finish for r in results)),
        mean_latency_s=round(statistics.fmean(lat), 3),
        median_latency_s=round(statistics.median(lat), 3),
        mean_first_token_s=round(statistics.fmean([r.first_token_s for r in results] or [0.0]), 3),
        finish_reasons=reasons,
        prompt_mismatches=sum(not r.prompt_matches for r in results),
        errors=sum(bool(r.error) for r in results),
        exec_pass_rate=share(sum(bool(r.exec_passed) for r in results))
        if any(r.exec_passed is not None for r in results) else None,
        unfilled=share(sum(r.body is None for r in results)),
        p50_latency_s=round(_quantile(lat, 0.5), 3),
        p95_latency_s=round(_quantile(lat, 0.95), 3),
    )


def _quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (no interpolation: a reported p95 is a latency that happened)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(-(-q * len(ordered) // 1)) - 1))]
