"""``python -m models.finetune --base default|HF_DIR|GGUF (--corpus DIR | --source REPO) --out DIR [...]``.

Writes into ``--out``: ``train_state.pt`` (resumable checkpoint), ``history.json`` (loss curve,
tokens, validation loss), the LoRA adapter in PEFT format (``adapter_config.json`` +
``adapter_model.safetensors``, plus ``training.json``), and ``package/`` (the merged model exported
to a validated model package) unless ``--no-export``. ``--source REPO`` first builds the corpus from
your own repository into ``--out/corpus``; ``--sat`` adds SAT's structure loss.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m models.finetune", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="default",
                    help="'default' (the product's default model), a catalog name (smollm2-135m-instruct: the "
                         "committed adapter's base), an HF checkpoint dir or a .gguf")
    data = ap.add_mutually_exclusive_group(required=True)
    data.add_argument("--corpus", type=Path, help="corpus dir with train/valid.jsonl (models.corpus)")
    data.add_argument("--source", type=Path, help="a repository of your own: build the corpus from its .py files")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--lora-rank", type=int, default=8)
    ap.add_argument("--lora-alpha", type=float, default=16.0)
    ap.add_argument("--lora-targets", default="", help="comma-separated module suffixes (default: attention)")
    ap.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    ap.add_argument("--steps", type=int, default=200, help="optimizer steps (the cosine schedule spans them)")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop training after this wall time")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=384)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-every", type=int, default=20)
    ap.add_argument("--valid-pairs", type=int, default=32)
    ap.add_argument("--max-train-pairs", type=int, default=None)
    ap.add_argument("--resume", action="store_true", help="continue from --out/train_state.pt")
    ap.add_argument("--threads", type=int, default=2, help="torch threads on CPU")
    ap.add_argument("--nice", type=int, default=10, help="niceness increment on CPU (shared machines)")
    ap.add_argument("--export", choices=("auto", "fused", "generic"), default="auto",
                    help="auto: fused (genai builder, like the default model) for llama/qwen2, else generic")
    ap.add_argument("--no-cuda-variant", action="store_true", help="fused: build cpu-int8 only")
    ap.add_argument("--int8", action="store_true", help="generic: cpu-int8 instead of fp32")
    ap.add_argument("--no-export", action="store_true", help="train (and save the adapter) only")
    ap.add_argument("--from-adapter", type=Path, default=None,
                    help="skip training: merge this saved PEFT adapter directory and export")
    ap.add_argument("--sat", action="store_true", help="add SAT's structure loss (attention vs AST distance)")
    ap.add_argument("--sat-alpha", type=float, default=1e-4, help="weight of the structure loss")
    ap.add_argument("--sat-layers", default="0", help="comma-separated attention layers (default: the first)")
    ap.add_argument("--sat-heads", default="", help="comma-separated heads of those layers (default: all)")
    ap.add_argument("--sat-lr-scale", type=float, default=1.0,
                    help="learning rate of SAT's learned a, b as a multiple of the schedule's")
    ap.add_argument("--keep-merged", action="store_true", help="keep the merged HF checkpoint in --out/merged")
    ap.add_argument("--name", default=None, help="package name (default: <base>-finetuned)")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise SystemExit(f"error: {flag} {text!r}: expected comma-separated integers") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError) as exc:  # bad input a user can meet: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    from export.lora import load_adapter, merge, save_adapter, save_merged
    from export.package_writer import prompt_convention, special_tokens
    from models.distributed import init
    from models.finetune.base import resolve_base
    from models.finetune.package import choose_path, export_fused, export_generic
    from models.finetune.sat import SATConfig
    from models.finetune.train import HISTORY_FILE, STATE_FILE, TrainConfig, TrainResult, summary, train

    dist = init()  # torchrun / accelerate launch: one process per rank, rank 0 writes the outputs
    rank = dist.rank
    out: Path = args.out
    if (out / STATE_FILE).is_file() and not args.resume and args.from_adapter is None:
        print(f"error: {out / STATE_FILE} exists; pass --resume or choose another --out", file=sys.stderr)
        return 2
    if args.full and args.from_adapter is not None:
        print("error: --from-adapter merges a LoRA adapter; it cannot be combined with --full", file=sys.stderr)
        return 2
    corpus: Path = args.corpus
    if args.source is not None and args.from_adapter is None:
        from models.finetune.source import build_source_corpus

        corpus = out / "corpus"
        counts = build_source_corpus(args.source, corpus)
        print(f"corpus from {args.source}: {counts['train']} train / {counts['valid']} valid pairs "
              f"({counts['files']} files, {counts['valid_files']} held out)", flush=True)
    if not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
        if args.nice:
            os.nice(args.nice)
    t0 = time.perf_counter()
    base = resolve_base(args.base)
    model = AutoModelForCausalLM.from_pretrained(str(base.checkpoint), dtype=torch.float32)
    tokenizer = Tokenizer.from_file(str(base.checkpoint / "tokenizer.json"))
    tokens = special_tokens(model, tokenizer, int(model.config.vocab_size))
    bos = tokens.bos if prompt_convention(tokenizer, tokens.bos).add_bos else None
    pad = tokens.pad if tokens.pad is not None else tokens.eos[0]
    sat = SATConfig(alpha=args.sat_alpha, layers=_ints(args.sat_layers, "--sat-layers"),
                    heads=_ints(args.sat_heads, "--sat-heads"), lr_scale=args.sat_lr_scale) if args.sat else None
    cfg = TrainConfig(
        full=args.full, lora_rank=args.lora_rank, lora_alpha=args.lora_alpha,
        lora_targets=tuple(t for t in args.lora_targets.split(",") if t), steps=args.steps,
        max_minutes=args.max_minutes, batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr,
        seed=args.seed, save_every=args.save_every, valid_pairs=args.valid_pairs,
        max_train_pairs=args.max_train_pairs, sat=sat,
    )
    lora: Any
    if args.from_adapter is not None:
        trained, lora, record = load_adapter(model, args.from_adapter)
        recorded = record.get("base_sha256")
        if recorded and base.source_sha256 and recorded != base.source_sha256:
            print(f"error: {args.from_adapter} was trained on weights {recorded[:12]}, --base {base.label} is "
                  f"{base.source_sha256[:12]}", file=sys.stderr)
            return 2
        result = TrainResult(steps=int(record.get("steps", 0)), tokens=int(record.get("tokens", 0)), body_tokens=0,
                             seconds=0.0, valid=list(record.get("valid", [])))
    else:
        print(f"base {base.label} ({base.checkpoint}); {'full' if cfg.full else f'LoRA rank {cfg.lora_rank}'}"
              f"{'; SAT' if sat else ''}; device {'cuda' if torch.cuda.is_available() else f'cpu x{torch.get_num_threads()}'}"
              f"; {dist.world} process(es)", flush=True)
        result, trained, lora = train(model, tokenizer, corpus, out, cfg, tokens.eos, bos, pad, resume=args.resume,
                                      progress=not args.no_progress and rank == 0)
        if rank != 0:
            return 0
        report = {"base": base.label, "base_sha256": base.source_sha256, "config": asdict(cfg), **summary(result)}
        (out / HISTORY_FILE).write_text(json.dumps({**report, "history": result.history}, indent=1) + "\n")
        print(f"trained {result.steps} steps, {result.tokens} tokens ({result.body_tokens} body) in "
              f"{result.seconds:.0f}s; valid loss {[v['loss'] for v in result.valid]}", flush=True)
    meta = {"base": base.label, "base_sha256": base.source_sha256, "steps": result.steps, "tokens": result.tokens,
            "valid": result.valid}
    if lora is not None:
        if args.from_adapter is None:
            adapter = save_adapter(trained, out, {**meta, "sat": asdict(sat) if sat else None})
            print(f"adapter {adapter} ({adapter.stat().st_size / 2**20:.2f} MiB)")
        model, layers = merge(trained)  # type: ignore[assignment]  # the same object, unwrapped
        print(f"merged {layers} LoRA layers")
    if args.no_export:
        return 0
    merged = save_merged(model, base.checkpoint, out / "merged")
    model_type = str(model.config.model_type)
    path = choose_path(model_type, args.export)
    name = args.name or f"{base.catalog or model_type}-finetuned"
    valid = result.valid
    mode = f"LoRA r={lora.rank}" if lora is not None else "full"
    notes = (f"fine-tuned from {base.label} by models.finetune ({mode}{', SAT' if sat else ''}, "
             f"{result.steps} steps, {result.tokens} tokens; valid loss "
             f"{valid[0]['loss'] if valid else '?'} -> {valid[-1]['loss'] if valid else '?'})")
    print(f"exporting ({path}) to {out / 'package'}", flush=True)
    if path == "fused":
        pkg = export_fused(model, merged, out / "package", name, base.license, notes,
                           cuda=not args.no_cuda_variant, extra={"finetune": meta})
    else:
        pkg = export_generic(model, merged, out / "package", name, base.license, notes, int8=args.int8)
    if not args.keep_merged:
        shutil.rmtree(merged, ignore_errors=True)
    print(f"wrote {pkg} in {time.perf_counter() - t0:.0f}s total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
