"""Command line of the exporter: ``python -m export causal-lm ...`` and ``python -m export default-model``."""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ExportError

USAGE_EXAMPLES = """examples:
  python -m export causal-lm --checkpoint ./SmolLM2-135M --out pkg/ --weight-int8 --license Apache-2.0
  python -m export causal-lm --gguf model.Q8_0.gguf --out pkg/ --dtype fp16
  python -m export default-model [its own options]
  python -m export models list | install NAME [--force] | verify [NAME]
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Export models to validated codegen-lsp model packages.",
        epilog=USAGE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    lm = sub.add_parser("causal-lm", help="export a Hugging Face causal LM (checkpoint directory or GGUF file)")
    src = lm.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="HF checkpoint directory (config.json, weights, tokenizer)")
    src.add_argument("--gguf", type=Path, help="GGUF file (weights dequantized to fp32 first)")
    lm.add_argument("--out", type=Path, required=True, help="package directory to write")
    lm.add_argument("--dtype", choices=("fp32", "fp16"), default="fp32",
                    help="fp16 adds a cuda-fp16 variant next to the CPU one")
    lm.add_argument("--weight-int8", action="store_true",
                    help="CPU variant cpu-int8 (MatMulNBits, 8 bits, block 32, accuracy level 4) instead of fp32")
    lm.add_argument("--keep-fp32", action="store_true", help="with --weight-int8, also keep the fp32 variant")
    lm.add_argument("--name", help="package name (default: the source's name)")
    lm.add_argument("--license", default="unknown", help="SPDX id of the weights' licence, e.g. Apache-2.0")
    lm.add_argument("--steps", type=int, default=32, help="greedy steps validated per prompt (default 32)")
    lm.add_argument("--fim", nargs=3, metavar=("PREFIX", "SUFFIX", "MIDDLE"),
                    help="declare a fill-in-the-middle prompt with these marker tokens, e.g. "
                         "'<fim_prefix>' '<fim_suffix>' '<fim_middle>' (StarCoder)")
    lm.add_argument("--threads", type=int, default=0,
                    help="torch and ONNX Runtime threads for export and validation (default: all cores)")
    sub.add_parser("default-model", add_help=False, help="build the embedded default model package")
    sub.add_parser("models", add_help=False, help="the model catalog: list, install NAME, verify [NAME]")
    return parser


def load_checkpoint(path: Path, workdir: Path) -> tuple[Any, Path]:
    """An fp32 HF causal LM and its tokenizer.json (written from the fast tokenizer if the checkpoint
    ships only the older files)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (path / "config.json").is_file():
        raise ExportError(f"{path}: not a Hugging Face checkpoint directory (no config.json)")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer_json = path / "tokenizer.json"
    if not tokenizer_json.is_file():
        tokenizer_json = workdir / "tokenizer.json"
        AutoTokenizer.from_pretrained(path).backend_tokenizer.save(str(tokenizer_json))
    return model, tokenizer_json


def load_gguf(path: Path) -> tuple[Any, Path]:
    """Delegate to ``export.gguf.load_gguf`` (dequantizes into a clean fp32 transformers model)."""
    try:
        gguf = importlib.import_module("export.gguf")
    except ModuleNotFoundError as exc:
        raise ExportError(f"GGUF import is unavailable: {exc}") from exc
    model, tokenizer_json = gguf.load_gguf(path)
    return model, Path(tokenizer_json)


def causal_lm(args: argparse.Namespace) -> Path:
    from .package_writer import ExportOptions, Source, export_causal_lm

    source_path: Path = args.checkpoint or args.gguf
    if not source_path.exists():
        raise ExportError(f"{source_path}: no such file or directory")
    import torch

    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.gguf:
            model, tokenizer_json = load_gguf(args.gguf)
        else:
            model, tokenizer_json = load_checkpoint(args.checkpoint, Path(tmp))
        print(f"loaded {source_path} in {time.perf_counter() - t0:.1f}s")
        options = ExportOptions(
            out_dir=args.out,
            name=args.name or source_path.stem,
            license=args.license,
            dtype=args.dtype,
            weight_int8=args.weight_int8,
            keep_fp32=args.keep_fp32,
            steps=args.steps,
            threads=args.threads,
            fim=tuple(args.fim) if args.fim else None,
        )
        try:
            out = export_causal_lm(model, tokenizer_json, Source.of(source_path), options)
        finally:
            torch.set_num_threads(threads)
    print(f"wrote {out} in {time.perf_counter() - t0:.1f}s")
    return out


def default_model(argv: Sequence[str]) -> int:
    """Hand over to ``export.default_model.main`` (owned by the default-model builder)."""
    try:
        module = importlib.import_module("export.default_model")
    except ModuleNotFoundError as exc:
        if exc.name != "export.default_model":
            raise
        print("error: export/default_model.py is not available in this checkout", file=sys.stderr)
        return 2
    return int(module.main(list(argv)) or 0)


def models(argv: Sequence[str]) -> int:
    """``models install`` builds here (see export/catalog.py); list and verify are the runtime's."""
    import subprocess

    from codegen_lsp.models_cmd import add_parser, run_models

    parser = argparse.ArgumentParser(prog="python -m export")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["models", *argv])
    if args.models_command != "install":
        return run_models(args)
    from codegen_lsp.modelpkg import ModelPackageError

    from .catalog import install

    try:
        install(args.name, force=args.force)
    except (ExportError, ModelPackageError, subprocess.CalledProcessError, OSError) as exc:
        print(f"install {args.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["default-model"]:
        return default_model(argv[1:])
    if argv[:1] == ["models"]:
        return models(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        causal_lm(args)
    except ExportError as exc:
        print(f"export failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
