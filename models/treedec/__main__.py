"""``python -m models.treedec train|export|coverage|sample``.

train     --corpus DIR --out DIR [--order preorder|bfs|mutual] [--config tiny|cpu|gpu] [--max-minutes M]
export    --ckpt DIR --out PKG [--decoder preorder|bfs]          (validated tree-decoder package)
coverage  --corpus DIR [--json OUT]                               (bodies the grammar expresses, round trip)
sample    --pkg PKG --prompt TEXT [--candidates N]                (through the runtime engine)
measure   --pkg PKG --corpus DIR [--limit N] [--json OUT]         (raw parse rate, exact match, BLEU, latency)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.treedec", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train (or resume) on a corpus built by models.corpus")
    t.add_argument("--corpus", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True, help="checkpoint directory; resumed when it holds one")
    t.add_argument("--order", default="mutual", help="preorder | bfs | mutual (both peers, mutual learning)")
    t.add_argument("--config", default="cpu", help="tiny | cpu | gpu")
    t.add_argument("--max-minutes", type=float, default=None)
    t.add_argument("--kl-weight", type=float, default=None, help="lambda of the mutual-learning KL terms")
    t.add_argument("--max-train-records", type=int, default=None)
    t.add_argument("--data-cache", type=Path, default=None, help="pickle of the prepared examples (shared by runs)")
    t.add_argument("--threads", type=int, default=1)
    e = sub.add_parser("export", help="checkpoint -> validated tree-decoder model package")
    e.add_argument("--ckpt", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--decoder", default=None, help="which peer of a mutual checkpoint (default: preorder)")
    e.add_argument("--name", default=None)
    c = sub.add_parser("coverage", help="share of corpus bodies the grammar expresses and round-trips")
    c.add_argument("--corpus", type=Path, required=True)
    c.add_argument("--json", type=Path, default=None)
    s = sub.add_parser("sample", help="bodies for a prompt through the runtime engine")
    s.add_argument("--pkg", type=Path, required=True)
    s.add_argument("--prompt", required=True)
    s.add_argument("--candidates", type=int, default=3)
    me = sub.add_parser("measure", help="raw engine output on held-out pairs: parse rate, exact match, BLEU")
    me.add_argument("--pkg", type=Path, required=True)
    me.add_argument("--corpus", type=Path, required=True)
    me.add_argument("--split", default="test")
    me.add_argument("--limit", type=int, default=200)
    me.add_argument("--candidates", type=int, default=5)
    me.add_argument("--threads", type=int, default=None)
    me.add_argument("--json", type=Path, default=None)
    me.add_argument("--label", default="tree decoder")
    args = ap.parse_args(argv)

    try:
        return _run(args)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "train":
        import torch

        from models.treedec.config import named
        from models.treedec.train import cpu_minutes, train

        torch.set_num_threads(args.threads)
        cfg = named(args.config)
        if args.max_train_records is not None:
            cfg.train.max_train_records = args.max_train_records
        if args.kl_weight is not None:
            cfg.train.kl_weight = args.kl_weight
        if cfg.train.device != "cpu" and not torch.cuda.is_available():
            raise ValueError(f"config '{args.config}' needs {cfg.train.device}, which this machine lacks")
        t0 = time.monotonic()
        state = train(args.corpus, args.out, cfg, args.config, args.order, args.max_minutes, args.data_cache)
        print(json.dumps({"steps": state["steps"], "epochs": state["epochs"], "seconds": round(state["seconds"]),
                          "wall_s": round(time.monotonic() - t0), "cpu_minutes": round(cpu_minutes(), 1),
                          "last": state["history"][-1:]}, indent=1))
    elif args.cmd == "export":
        import torch

        from models.treedec.export import build_package

        torch.set_num_threads(1)
        out = build_package(args.ckpt, args.out, decoder=args.decoder, name=args.name)
        print(json.dumps(json.loads((out / "manifest.json").read_text())["variants"][0]["validation"], indent=1))
    elif args.cmd == "coverage":
        from models.treedec.coverage import coverage

        report = coverage(args.corpus)
        print(json.dumps(report, indent=1))
        if args.json:
            args.json.write_text(json.dumps(report, indent=1) + "\n")
    elif args.cmd == "measure":
        from models.treedec.measure import measure

        report = measure(args.pkg, args.corpus, args.split, args.limit, args.candidates, args.json, args.label,
                         args.threads)
        print(json.dumps(report, indent=1))
    else:
        from codegen_lsp.engine import GenerationConfig
        from codegen_lsp.engine.kinds import load_engine

        engine = load_engine(args.pkg, device="cpu")
        prompt = args.prompt.encode().decode("unicode_escape")
        res = engine.generate(prompt, GenerationConfig(num_candidates=args.candidates))
        for g in res.generations:
            print(f"--- {g.finish_reason} score {g.score:.3f}\n{prompt}{g.text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
