"""``python -m models.codefusion train|export|sample|steps|measure``.

train    --corpus DIR --out DIR [--config tiny|cpu|paper] [--max-minutes M]   (re-run to resume)
export   --ckpt DIR --out PKG                                                 (validated package)
sample   --pkg PKG --prompt TEXT [--steps N] [--candidates N]                 (through the engine)
steps    --pkg PKG --corpus DIR [--png docs/codefusion-steps.png]             (edit distance vs steps)
measure  --pkg PKG --corpus DIR --json OUT                                    (top-1 vs best-of-5, diversity, latency)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.codefusion", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train (or resume) on a corpus built by models.corpus")
    t.add_argument("--corpus", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True, help="checkpoint directory; resumed when it holds one")
    t.add_argument("--config", default="cpu", help="tiny | cpu | paper")
    t.add_argument("--max-minutes", type=float, default=None)
    t.add_argument("--max-train-records", type=int, default=None)
    t.add_argument("--threads", type=int, default=1,
                   help="torch threads (a shared machine: 1; 2 threads ran 4x slower under load)")
    e = sub.add_parser("export", help="checkpoint -> validated diffusion model package")
    e.add_argument("--ckpt", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--name", default=None)
    e.add_argument("--steps", type=int, default=None, help="default denoising steps in the manifest")
    s = sub.add_parser("sample", help="bodies for a prompt through the runtime engine")
    s.add_argument("--pkg", type=Path, required=True)
    s.add_argument("--prompt", required=True)
    s.add_argument("--steps", type=int, default=None)
    s.add_argument("--candidates", type=int, default=1)
    s.add_argument("--seed", type=int, default=0)
    st = sub.add_parser("steps", help="edit distance to the reference vs denoising steps (PNG + JSON)")
    st.add_argument("--pkg", type=Path, required=True)
    st.add_argument("--corpus", type=Path, required=True)
    st.add_argument("--split", default="test")
    st.add_argument("--limit", type=int, default=100)
    st.add_argument("--steps", default="1,2,5,10,20,50,100,200")
    st.add_argument("--png", type=Path, default=Path("docs/codefusion-steps.png"))
    st.add_argument("--json", type=Path, default=None)
    st.add_argument("--threads", type=int, default=None)
    me = sub.add_parser("measure", help="top-1 vs best-of-N (BLEU, parse, doctests), diversity, latency")
    me.add_argument("--pkg", type=Path, required=True)
    me.add_argument("--corpus", type=Path, required=True)
    me.add_argument("--split", default="test")
    me.add_argument("--limit", type=int, default=200)
    me.add_argument("--exec", action="store_true", help="the doctest pairs (valid split + testbed) instead")
    me.add_argument("--candidates", type=int, default=5)
    me.add_argument("--steps", type=int, default=None)
    me.add_argument("--json", type=Path, required=True)
    me.add_argument("--label", default="CodeFusion")
    args = ap.parse_args(argv)

    if args.cmd == "train":
        import torch

        from models.codefusion.config import named
        from models.codefusion.train import cpu_minutes, train

        torch.set_num_threads(args.threads)
        cfg = named(args.config)
        if args.max_train_records is not None:
            cfg.train.max_train_records = args.max_train_records
        t0 = time.monotonic()
        state = train(args.corpus, args.out, cfg, args.config, args.max_minutes)
        print(json.dumps({"steps": state.steps, "phase_steps": state.phase_steps,
                          "phase_seconds": [round(x) for x in state.phase_seconds],
                          "wall_s": round(time.monotonic() - t0), "cpu_minutes": round(cpu_minutes(), 1),
                          "last": state.history[-2:]}, indent=1))
    elif args.cmd == "export":
        import torch

        from models.codefusion.export import build_package

        torch.set_num_threads(1)
        out = build_package(args.ckpt, args.out, name=args.name, steps=args.steps)
        print(json.dumps(json.loads((out / "manifest.json").read_text())["variants"][0]["validation"], indent=1))
    elif args.cmd == "sample":
        from codegen_lsp.engine import GenerationConfig
        from codegen_lsp.engine.kinds import load_engine

        engine = load_engine(args.pkg, device="cpu", steps=args.steps)
        prompt = args.prompt.encode().decode("unicode_escape")
        res = engine.generate(prompt, GenerationConfig(num_candidates=args.candidates, seed=args.seed))
        for g in res.generations:
            print(f"--- {g.finish_reason} score {g.score:.3f}\n{prompt}{g.text}")
    elif args.cmd == "steps":
        from models.codefusion.measure import steps_curve

        steps_curve(args.pkg, args.corpus, args.split, args.limit, [int(x) for x in args.steps.split(",")],
                    args.png, args.json, args.threads)
    else:
        from models.codefusion.measure import measure

        measure(args.pkg, args.corpus, args.split, args.limit, args.exec, args.candidates, args.steps,
                args.json, args.label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
