"""``python -m models.retrieval train|evaluate|export``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ARCH_DEFAULTS = {
    "nbow": {"batch_size": 512, "lr": 2e-3},
    "rnn": {"batch_size": 256, "lr": 5e-3},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.retrieval", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train (or resume) a dual encoder on a corpus built by models.corpus")
    t.add_argument("--corpus", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True, help="checkpoint file; resumed when it exists")
    t.add_argument("--model", choices=sorted(ARCH_DEFAULTS), default="nbow")
    t.add_argument("--max-minutes", type=float, default=None)
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--patience", type=int, default=5)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--vocab-size", type=int, default=8192)
    t.add_argument("--embed-dim", type=int, default=128)
    t.add_argument("--hidden-size", type=int, default=64, help="GRU units per direction (rnn)")
    t.add_argument("--threads", type=int, default=1, help="torch threads (shared machines: 1)")
    e = sub.add_parser("evaluate", help="MRR, 1 query vs 999 distractors, on a split")
    e.add_argument("--corpus", type=Path, required=True)
    e.add_argument("--split", default="test")
    g = e.add_mutually_exclusive_group(required=True)
    g.add_argument("--pkg", type=Path, help="a retriever package (run through the runtime engine)")
    g.add_argument("--bm25", action="store_true", help="BM25 over code tokens (codegen_lsp.workspace.bm25)")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--fuse", type=float, default=None, metavar="W",
                   help="with --pkg: rank by z(bm25) + W * z(package score), per query")
    x = sub.add_parser("export", help="checkpoint -> validated retriever package")
    x.add_argument("--ckpt", type=Path, required=True)
    x.add_argument("--out", type=Path, required=True)
    x.add_argument("--name", default=None)
    args = ap.parse_args(argv)

    if args.cmd == "train":
        from models.retrieval.train import TrainConfig, train

        torch.set_num_threads(args.threads)
        d = ARCH_DEFAULTS[args.model]
        cfg = TrainConfig(arch=args.model, vocab_size=args.vocab_size, embed_dim=args.embed_dim,
                          hidden_size=args.hidden_size, batch_size=args.batch_size or d["batch_size"],
                          lr=args.lr or d["lr"], epochs=args.epochs, patience=args.patience,
                          max_minutes=args.max_minutes)
        state = train(args.corpus, args.out, cfg)
        print(json.dumps({"epoch": state.epoch, "steps": state.steps, "best_valid_mrr": state.best_mrr,
                          "best_epoch": state.best_epoch, "done": state.done, "seconds": round(state.seconds, 1)}))
    elif args.cmd == "evaluate":
        from models.retrieval.evaluate import evaluate

        print(json.dumps(evaluate(args.corpus, args.split, pkg=args.pkg, bm25=args.bm25, threads=args.threads,
                                  fuse=args.fuse)))
    else:
        from models.retrieval.export import build_package, package_bytes

        torch.set_num_threads(1)
        out = build_package(args.ckpt, args.out, args.name)
        manifest = json.loads((out / "manifest.json").read_text())
        print(json.dumps({"validation": manifest["variants"][0]["validation"], "bytes": package_bytes(out),
                          "parameters": manifest["extra"]["retriever"]["parameters"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
