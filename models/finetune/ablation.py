"""``python -m models.finetune.ablation``: SAT against plain LoRA fine-tuning on the same base, data, seed
order and steps, each run exported (fused ``cpu-int8``) and scored by the doctest execution evaluation.

Every arm is one ``python -m models.finetune`` and one ``python -m models.evaluate --exec --testbed``
subprocess; ``results.json`` collects train/valid/structure losses, BLEU, parse and pass rates, wall
and CPU seconds; ``--plot`` draws the loss curves. Finished arms are skipped on a rerun.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _run(cmd: list[str], log: Path) -> tuple[float, float]:
    """Run ``cmd`` (output to ``log``); (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        raise SystemExit(f"error: {' '.join(cmd[:4])} ... failed (exit {rc}); see {log}")
    return time.perf_counter() - t0, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def sampled_corpus(corpus: Path, out: Path, pairs: int) -> Path:
    """``out/corpus-n<pairs>``: a seeded sample (seed 0, the same for every arm) of the train split
    across all its packages, and the corpus's own valid split."""
    import random

    target = out / f"corpus-n{pairs}"
    if not (target / "train.jsonl").is_file():
        target.mkdir(parents=True, exist_ok=True)
        lines = (corpus / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        chosen = sorted(random.Random(0).sample(range(len(lines)), min(pairs, len(lines))))
        (target / "valid.jsonl").write_text((corpus / "valid.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
        (target / "train.jsonl").write_text("".join(lines[i] for i in chosen), encoding="utf-8")
    return target


def arm(args: argparse.Namespace, pairs: int, seed: int, alpha: float) -> dict[str, Any]:
    scale = f"-ab{args.sat_lr_scale:g}" if alpha and args.sat_lr_scale != 1.0 else ""
    name = f"n{pairs}-s{seed}-" + (f"sat{alpha:g}{scale}" if alpha else "plain")
    out = args.out / name
    done = out / "arm.json"
    if done.is_file():
        return json.loads(done.read_text())
    out.mkdir(parents=True, exist_ok=True)
    data = sampled_corpus(args.corpus, args.out, pairs)
    train = [sys.executable, "-m", "models.finetune", "--base", args.base, "--corpus", str(data),
             "--out", str(out / "run"), "--steps", str(args.steps), "--batch-size", str(args.batch_size),
             "--seq-len", str(args.seq_len), "--seed", str(seed),
             "--valid-pairs", str(args.valid_pairs), "--threads", "2", "--nice", "0", "--no-progress",
             "--no-cuda-variant", "--name", name, *(["--sat", "--sat-alpha", str(alpha), "--sat-lr-scale", str(args.sat_lr_scale)] if alpha else [])]
    train_wall, train_cpu = _run(train, out / "train.log")
    report = json.loads((out / "run" / "history.json").read_text())
    evaluate = [sys.executable, "-m", "models.evaluate", "--model", str(out / "run" / "package"),
                "--corpus", str(args.corpus), "--split", "valid", "--exec", "--testbed", "--nice", "0",
                "--no-progress", "--label", name, "--json", str(out / "eval.json")]
    eval_wall, eval_cpu = _run(evaluate, out / "eval.log")
    summary = json.loads((out / "eval.json").read_text())["summary"]
    history = report["history"]
    result = {
        "arm": name, "pairs": pairs, "seed": seed, "sat_alpha": alpha, "steps": report["steps"],
        "valid_loss": [v["loss"] for v in report["valid"]],
        "train_loss_last10": round(sum(h["loss"] for h in history[-10:]) / len(history[-10:]), 4),
        "structure_first_last": [history[0].get("structure"), history[-1].get("structure")],
        "exec_pass_rate": summary["exec_pass_rate"], "parse_rate": summary["valid"], "bleu": summary["bleu"],
        "train_wall_s": round(train_wall), "train_cpu_s": round(train_cpu), "eval_wall_s": round(eval_wall),
        "eval_cpu_s": round(eval_cpu), "step_s": round(report["seconds"] / max(report["steps"], 1), 2),
        "curve": [[h["step"], h["loss"], h.get("structure")] for h in history],
    }
    done.write_text(json.dumps(result, indent=1) + "\n")
    return result


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in results:
        steps = [c[0] for c in r["curve"]]
        k = 5  # moving average: single batches of 4 are noisy
        loss = [sum(c[1] for c in r["curve"][max(0, i - k + 1):i + 1]) / len(r["curve"][max(0, i - k + 1):i + 1])
                for i in range(len(steps))]
        ax.plot(steps, loss, label=r["arm"], linestyle="-" if r["sat_alpha"] else "--")
        if r["sat_alpha"]:
            bx.plot(steps, [c[2] for c in r["curve"]], label=r["arm"])
    ax.set(xlabel="step", ylabel="task loss (5-step mean)", title="body-token cross-entropy")
    bx.set(xlabel="step", ylabel="structure loss", title="SAT structure loss (layer 0)")
    ax.legend(fontsize=7)
    bx.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.finetune.ablation", description=__doc__)
    ap.add_argument("--base", default="default")
    ap.add_argument("--corpus", type=Path, default=Path(".cache/corpus"))
    ap.add_argument("--out", type=Path, default=Path(".cache/sat"))
    ap.add_argument("--pairs", default="256", help="comma-separated training-set sizes (seeded samples)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--alphas", default="0,1e-4", help="SAT weights; 0 is plain fine-tuning")
    ap.add_argument("--sat-lr-scale", type=float, default=1.0, help="SAT arms: learning rate multiple for a, b")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--valid-pairs", type=int, default=32)
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = [arm(args, int(n), int(s), float(a)) for n in args.pairs.split(",") for s in args.seeds.split(",")
               for a in args.alphas.split(",")]
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for r in results:
        print(json.dumps({k: v for k, v in r.items() if k != "curve"}))
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
