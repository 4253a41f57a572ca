"""``python -m models.evaluate --model PKG --corpus DIR --split test [--limit N] [--json out.json]``.

Prints the summary as JSON (and writes it, with every pair's body, to ``--json``); ``--row`` also
prints the markdown table row that ``docs/training.md`` collects.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__)
    ap.add_argument("--model", type=Path, required=True, help="model package directory")
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--split", default="test", choices=("train", "valid", "test"))
    ap.add_argument("--limit", type=int, default=None, help="a seeded sample of this many pairs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--candidates", type=int, default=1)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--time-budget-ms", type=int, default=60000)
    ap.add_argument("--label", default=None, help="name in the results table (default: the package name)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--nice", type=int, default=10)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--exec", action="store_true",
                    help="keep the pairs whose doctests their reference passes, and run each chosen body's "
                         "doctests in a sandboxed subprocess (pass rate)")
    ap.add_argument("--testbed", action="store_true",
                    help="with --exec: also run our own testbed (benchmarks/testbed/utilities.py)")
    ap.add_argument("--variant", default=None, help="package variant to use (e.g. cpu-int8)")
    args = ap.parse_args(argv)

    from tqdm import tqdm

    from codegen_lsp.modelpkg import load_package, resolve_model_dir

    from .metrics import summarize
    from .pairs import sample_pairs
    from .run import eval_settings, evaluate_pairs

    if args.nice:
        os.nice(args.nice)
    if args.exec:
        from .execution import runnable_pairs

        cache = args.corpus / f"runnable-{args.split}.json"
        pairs = runnable_pairs(sample_pairs(args.corpus, args.split, None), cache)
        if args.limit is not None:
            pairs = pairs[: args.limit]
        if args.testbed:
            from .execution import testbed_pairs

            pairs += testbed_pairs()
    else:
        pairs = sample_pairs(args.corpus, args.split, args.limit, args.seed)
    settings = eval_settings(args.model, args.candidates, args.temperature, args.max_tokens, args.time_budget_ms)
    settings.variant = args.variant
    t0 = time.perf_counter()
    bar = tqdm(total=len(pairs), disable=args.no_progress, unit="pair", dynamic_ncols=True)
    results, load_s = evaluate_pairs(settings, pairs, lambda _i, _r: bar.update(1))
    bar.close()
    if args.exec:
        from .execution import run_doctests

        for pair, r in zip(pairs, results, strict=True):
            verdict = run_doctests(pair, r.body) if r.body is not None else None
            r.exec_passed = bool(verdict and verdict.passed)
            r.exec_detail = verdict.detail if verdict else "no valid body"
    summary = summarize(results, [p.reference for p in pairs])
    by_source: dict[str, list[float]] = {}
    if args.exec:
        for pair, r in zip(pairs, results, strict=True):
            counts = by_source.setdefault("testbed" if pair.package == "testbed" else "held-out", [0, 0])
            counts[0] += bool(r.exec_passed)
            counts[1] += 1
    manifest = load_package(resolve_model_dir(str(args.model))).manifest
    report = {
        "label": args.label or manifest.name, "model": str(args.model), "split": args.split, "exec": args.exec, "testbed": args.testbed,
        "variant": args.variant, "prompt_template": manifest.prompt.template,
        "limit": args.limit, "seed": args.seed, "settings": {k: getattr(settings, k) for k in
                                                               ("candidates", "temperature", "max_tokens", "time_budget_ms")},
        "summary": summary.as_dict(), "load_s": round(load_s, 2),
        "exec_by_source": {k: {"passed": int(v[0]), "n": int(v[1])} for k, v in by_source.items()}, "wall_s": round(time.perf_counter() - t0, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**report, "pairs": [asdict(r) for r in results]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
