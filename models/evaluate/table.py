"""``python -m models.evaluate.table [--rescore CORPUS] A.json B.json ...``: the markdown comparison
table of runs written by ``python -m models.evaluate --json`` (``--rescore`` recomputes each summary
from the stored bodies and rewrites the file)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HEADER = ("| model | pairs | BLEU (0-1) | BLEU (0-100) | BP | BLEU w/o BP | sentence BLEU | exact | valid "
          "| valid, whole | hit token limit | mean latency s | median s | eval wall s |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")


def row(report: dict) -> str:  # type: ignore[type-arg]
    s = report["summary"]
    b = s["bleu_parts"]
    return (f"| {report['label']} | {s['n']} | {s['bleu']:.4f} | {s['bleu_100']:.2f} | {b['bp']:.3f} "
            f"| {b['bleu_no_bp']:.2f} | {b['sentence_bleu']:.2f} | {s['exact_match']:.1%} "
            f"| {s['valid']:.1%} | {s['valid_complete']:.1%} | {s['hit_token_limit']:.1%} "
            f"| {s['mean_latency_s']:.2f} | {s['median_latency_s']:.2f} | {report['wall_s']:.0f} |")


EXEC_HEADER = ("| model | variant | prompt | pairs | doctest pass | held-out (corpus) | own testbed | parses "
               "| no valid body | p50 s | p95 s |\n"
               "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")


def _source(report: dict, key: str) -> str:  # type: ignore[type-arg]
    c = report.get("exec_by_source", {}).get(key)
    return f"{c['passed']}/{c['n']}" if c else "–"


def exec_row(report: dict) -> str:  # type: ignore[type-arg]
    s = report["summary"]
    return (f"| {report['label']} | {report.get('variant') or 'default'} | {report.get('prompt_template', 'raw')} "
            f"| {s['n']} | {s['exec_pass_rate']:.1%} | {_source(report, 'held-out')} | {_source(report, 'testbed')} "
            f"| {s['valid']:.1%} | {s['unfilled']:.1%} "
            f"| {s['p50_latency_s']:.2f} | {s['p95_latency_s']:.2f} |")


def rescore(report: dict, corpus: Path) -> dict:  # type: ignore[type-arg]
    """Recompute the summary from the stored per-pair results (after a metrics change)."""
    from .metrics import PairResult, summarize
    from .pairs import sample_pairs

    pairs = sample_pairs(corpus, report["split"], report["limit"], report["seed"])
    results = [PairResult(**r) for r in report["pairs"]]
    if [p.index for p in pairs] != [r.index for r in results]:
        raise ValueError(f"{report['label']}: stored pairs do not match the sample from {corpus}")
    report["summary"] = summarize(results, [p.reference for p in pairs]).as_dict()
    return report


def table(paths: list[Path], corpus: Path | None = None) -> str:
    reports = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    if reports and all(r.get("exec") for r in reports):
        return "\n".join([EXEC_HEADER, *(exec_row(r) for r in reports)])
    rows = []
    for p in paths:
        report = json.loads(p.read_text(encoding="utf-8"))
        if corpus is not None:
            report = rescore(report, corpus)
            p.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        rows.append(row(report))
    return "\n".join([HEADER, *rows])


if __name__ == "__main__":
    args = sys.argv[1:]
    corpus = Path(args.pop(args.index("--rescore") + 1)) if "--rescore" in args else None
    if corpus is not None:
        args.remove("--rescore")
    print(table([Path(a) for a in args], corpus))
