"""Measurements for ``docs/training.md``: edit distance to the reference vs denoising steps (the
paper's Figure 5), and top-1 vs best-of-N through the server's own path (``BodyGenerator``: prompt,
engine, grammar check, ranking) with the diversity of the N candidates and latency per step and body."""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from codegen_lsp.engine import GenerationConfig
from codegen_lsp.engine.kinds import load_engine

_CODE_TOKEN = re.compile(r"\w+|[^\w\s]")


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance between two id sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def distinct_ngrams(texts: list[str], n: int) -> float:
    """Unique n-grams over all n-grams of the candidates together (code tokens: words and symbols)."""
    grams: list[tuple[str, ...]] = []
    for t in texts:
        toks = _CODE_TOKEN.findall(t)
        grams += [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def steps_curve(pkg: Path, corpus: Path, split: str, limit: int, steps_list: list[int], png: Path,
                json_path: Path | None, threads: int | None) -> dict[str, Any]:
    """Mean BPE-token edit distance between the top-1 raw output (seed 0, before the grammar check)
    and the reference body cut at the target length, for each step count; with latency."""
    from models.evaluate.pairs import sample_pairs

    pairs = sample_pairs(corpus, split, limit, 0)
    rows: list[dict[str, Any]] = []
    for steps in steps_list:
        engine: Any = load_engine(pkg, device="cpu", threads=threads, steps=steps)
        lc = engine.target_length
        dists, norm, per_step, per_body = [], [], [], []
        for p in pairs:
            res = engine.generate(p.prompt, GenerationConfig(num_candidates=1, seed=0, max_new_tokens=lc))
            g = res.generations[0]
            ref = engine.tokenizer.encode(p.target, add_special_tokens=False).ids[:lc]
            d = edit_distance(g.token_ids, ref)
            dists.append(d)
            norm.append(d / max(len(ref), len(g.token_ids), 1))
            per_step.append(g.timings["step_s"])
            per_body.append(g.timings["finished_s"])
        row = {"steps": steps, "pairs": len(pairs), "edit_distance": round(statistics.fmean(dists), 2),
               "normalized_edit_distance": round(statistics.fmean(norm), 4),
               "step_ms": round(1000 * statistics.median(per_step), 2),
               "body_s": round(statistics.median(per_body), 4)}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    report = {"pkg": str(pkg), "split": split, "limit": limit, "rows": rows}
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=1) + "\n")
    plot_steps(rows, png)
    return report


def plot_steps(rows: list[dict[str, Any]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["steps"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    ax.plot(steps, [r["edit_distance"] for r in rows], "o-", color="tab:blue", label="edit distance (BPE tokens)")
    ax.set_xscale("log")
    ax.set_xlabel("denoising steps")
    ax.set_ylabel("mean edit distance to the reference", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(steps, [r["body_s"] * 1000 for r in rows], "s--", color="tab:red", label="ms per body")
    ax2.set_ylabel("median ms per body (1 candidate)", color="tab:red")
    ax.set_title(f"CodeFusion (cpu config): edit distance vs steps, {rows[0]['pairs']} held-out pairs")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)


def measure(pkg: Path, corpus: Path, split: str, limit: int, exec_: bool, candidates: int, steps: int | None,
            json_path: Path, label: str) -> dict[str, Any]:
    """Top-1 (the ranked first of N) vs best-of-N: BLEU, parse rate, doctest pass rate with
    ``exec_``; distinct n-grams of the N raw candidates; latency per step and per body."""
    import sacrebleu

    from codegen_lsp.generation import BodyGenerator
    from models.evaluate.metrics import bleu_details
    from models.evaluate.pairs import sample_pairs, site_document
    from models.evaluate.run import eval_settings

    if exec_:
        from models.evaluate.execution import run_doctests, runnable_pairs, testbed_pairs

        pairs = runnable_pairs(sample_pairs(corpus, "valid", None), corpus / "runnable-valid.json") + testbed_pairs()
    else:
        pairs = sample_pairs(corpus, split, limit, 0)
    settings = eval_settings(pkg, candidates=candidates)
    generator = BodyGenerator(settings)
    engine: Any = generator.ensure_engine()
    if steps is not None:
        engine.steps = engine.info["steps"] = steps
    last: dict[str, Any] = {}
    inner = engine.generate

    def recording(*args: Any, **kwargs: Any) -> Any:
        last["result"] = inner(*args, **kwargs)
        return last["result"]

    engine.generate = recording
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for k, p in enumerate(pairs):
        try:
            doc, site = site_document(p)
        except ValueError as exc:  # no site: counts as no body, as in models.evaluate
            rows.append({"index": p.index, "name": p.name, "top1": None, "bodies": [], "raw": [], "finish": [],
                         "seconds": 0.0, "step_s": 0.0, "steps": 0, "sentence_bleu": [], "exec": [],
                         "error": str(exc)})
            continue
        res = generator.bodies(doc, site)
        gen = last["result"]
        bodies = [c.body for c in res.candidates]
        row: dict[str, Any] = {
            "index": p.index, "name": p.name, "top1": bodies[0] if bodies else None, "bodies": bodies,
            "raw": [t for t, _, _ in res.raw], "finish": [f for _, _, f in res.raw], "seconds": res.seconds,
            "step_s": gen.generations[0].timings.get("step_s", 0.0), "steps": gen.generations[0].timings.get("steps", 0),
            "sentence_bleu": [sacrebleu.sentence_bleu(b, [p.reference]).score for b in bodies],
        }
        if exec_:
            verdicts = [run_doctests(p, b).passed for b in bodies]
            row["exec"] = verdicts
        rows.append(row)
        if (k + 1) % 20 == 0:
            print(f"{k + 1}/{len(pairs)} pairs, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    n = len(rows)
    refs = [p.reference for p in pairs]
    top1 = bleu_details([r["top1"] or "" for r in rows], refs)
    oracle_hyps = [r["bodies"][max(range(len(r["bodies"])), key=lambda i: r["sentence_bleu"][i])] if r["bodies"]
                   else "" for r in rows]
    best = bleu_details(oracle_hyps, refs)
    summary: dict[str, Any] = {
        "label": label, "pairs": n, "candidates": candidates, "steps": engine.steps,
        "parse_top1": round(sum(r["top1"] is not None for r in rows) / n, 4),
        "parse_any": round(sum(bool(r["bodies"]) for r in rows) / n, 4),
        "bleu_top1": top1, "bleu_best_of_n": best,
        "distinct": {f"distinct_{k}": round(statistics.fmean(distinct_ngrams(r["raw"], k) for r in rows if r["raw"]), 4)
                     for k in (1, 2, 3, 4)},
        "unique_candidates": round(statistics.fmean(len(set(r["raw"])) for r in rows), 2),
        "body_s_median": round(statistics.median(r["seconds"] for r in rows), 4),
        "body_s_mean": round(statistics.fmean(r["seconds"] for r in rows), 4),
        "step_ms_median": round(1000 * statistics.median(r["step_s"] for r in rows if r["raw"]), 2),
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    if exec_:
        summary["exec_top1"] = round(sum(bool(r["exec"] and r["exec"][0]) for r in rows) / n, 4)
        summary["exec_best_of_n"] = round(sum(any(r["exec"]) for r in rows) / n, 4)
    print(json.dumps(summary, indent=1))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({**summary, "rows": rows}, indent=1) + "\n")
    return summary
