"""``python -m models.char_rnn train|export|sample``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.char_rnn", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train (or resume) on a corpus built by models.corpus")
    t.add_argument("--corpus", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True, help="checkpoint file; resumed when it exists")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--max-minutes", type=float, default=None)
    t.add_argument("--max-train-chars", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=50)
    t.add_argument("--seq-len", type=int, default=100)
    t.add_argument("--threads", type=int, default=1, help="torch threads (shared machines: 1)")
    t.add_argument("--no-progress", action="store_true")
    e = sub.add_parser("export", help="checkpoint -> validated char-rnn model package")
    e.add_argument("--ckpt", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("sample", help="greedy body for a prompt through the exported package")
    s.add_argument("--pkg", type=Path, required=True)
    s.add_argument("--prompt", required=True)
    s.add_argument("--max-chars", type=int, default=300)
    args = ap.parse_args(argv)

    if args.cmd == "train":
        from models.char_rnn.train import TrainConfig, train

        torch.set_num_threads(args.threads)
        cfg = TrainConfig(epochs=args.epochs, max_minutes=args.max_minutes, max_train_chars=args.max_train_chars,
                          batch_size=args.batch_size, seq_len=args.seq_len)
        state = train(args.corpus, args.out, cfg, progress=not args.no_progress)
        print(json.dumps(state.history[-5:], indent=1))
    elif args.cmd == "export":
        from models.char_rnn.export import build_package

        torch.set_num_threads(1)
        out = build_package(args.ckpt, args.out)
        print(json.loads((out / "manifest.json").read_text())["variants"][0]["validation"])
    else:
        from models.char_rnn.infer import complete

        prompt = args.prompt.encode().decode("unicode_escape")  # lets a shell argument hold \n
        print(prompt + complete(args.pkg, prompt, args.max_chars))
    return 0


if __name__ == "__main__":
    sys.exit(main())
