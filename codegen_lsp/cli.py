"""`codegen-lsp` command line: serve, generate, bench, check, models, stats."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import BinaryIO

from . import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="codegen-lsp", description="Local Python body generation over LSP.")
    p.add_argument("--version", action="version", version=f"codegen-lsp {__version__}")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-file", help="log here instead of stderr")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the language server (stdio unless --tcp)")
    s.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP for debugging")
    s.add_argument("--stdio", action="store_true", help="stdio transport (the default; accepted for clients)")

    g = sub.add_parser("generate", help="fill stubbed functions in files or directories")
    g.add_argument("paths", nargs="+", metavar="PATH")
    g.add_argument("--function", action="append", help="only this function (name or Class.method); repeatable")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write bodies into the files (atomically)")
    mode.add_argument("--json", action="store_true", help="print one JSON object per site")
    mode.add_argument("--dry-run", action="store_true", help="list sites without loading a model")
    g.add_argument("--candidates", type=int, default=1, help="bodies to sample per site (best one is used)")
    g.add_argument("--max-tokens", type=int, default=384,
                   help="most tokens per body (default 384; the editor's maxTokens is 160, bounded by its 4 s "
                        "budget anyway): at 160, a fifth of real functions stayed unfinished (docs/testbed.md)")
    g.add_argument("--time-budget", type=float, default=60.0, metavar="SECONDS",
                   help="stop decoding a site after this long (default 60; the editor's default is 4)")
    g.add_argument("--allow-partial", action="store_true",
                   help="also apply bodies whose decoding was stopped by the time budget or token limit")
    g.add_argument("--temperature", type=float, default=0.2)
    g.add_argument("--model", help="model package directory or catalog name (default: the embedded default model)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    g.add_argument("--backend", default="local", choices=["local", "openai"],
                   help="write bodies with the local model (default) or an OpenAI-compatible server (docs/team.md)")
    g.add_argument("--endpoint", metavar="URL", help="the server for --backend openai, e.g. http://gpu-box:8000/v1")
    g.add_argument("--api-key-env", metavar="NAME", help="environment variable that holds the endpoint's API key")
    g.add_argument("--remote-model", metavar="NAME", help="model to request from the endpoint (default: its first)")
    g.add_argument("--steps", type=int, default=0,
                   help="refinement steps for diffusion packages (default: the package's; fewer is faster)")
    g.add_argument("--workspace-context", default="off", choices=["off", "definitions", "retrieval", "all"],
                   help="add code from the workspace to prompts (see the workspaceContext setting)")
    g.add_argument("--context-share", type=float, default=None, metavar="F",
                   help="share of the prompt budget workspace context may take (the contextShare setting)")
    g.add_argument("--context-items", type=int, default=None, metavar="N",
                   help="most retrieved definitions in a prompt (the contextItems setting)")
    g.add_argument("--retriever", metavar="PKG", help="a retriever package to combine with BM25 (docs/retrieval.md)")
    g.add_argument("--workspace", metavar="DIR",
                   help="the workspace root to index (default: the git root above the first PATH, else its folder)")

    b = sub.add_parser("bench", help="print engine speed figures with baselines")
    b.add_argument("--model", help="model package directory")
    b.add_argument("--threads", type=int, help="intra-op threads (default: physical cores)")
    b.add_argument("--new-tokens", type=int, default=128)
    b.add_argument("--no-baselines", action="store_true", help="skip onnxruntime-genai/PyTorch/llama.cpp")
    b.add_argument("--hf-checkpoint", help="HF checkpoint for the PyTorch baseline")
    b.add_argument("--gguf", help="GGUF for the PyTorch (dequantized) and llama.cpp baselines "
                   "(default: the default model's cached GGUF)")
    b.add_argument("--json", help="also write the figures to this JSON file")

    c = sub.add_parser("check", help="verify a model package (sizes and hashes) and print its manifest summary")
    c.add_argument("--model", help="model package directory")

    st = sub.add_parser("stats", help="print local acceptance statistics (never sent anywhere)")
    st.add_argument("--json", action="store_true", help="print the raw counts as JSON")
    st.add_argument("--reset", action="store_true", help="delete the recorded statistics")

    from .models_cmd import add_parser

    add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .features.log import setup_logging

    setup_logging(args.log_level, args.log_file)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a user gets one line; --log-level debug adds the traceback
        log = logging.getLogger("codegen_lsp")
        log.debug("unexpected failure", exc_info=True)
        log.error("%s failed: %s: %s (run with --log-level debug for details)", args.command,
                  type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args)
    if args.command == "generate":
        from .generate_cmd import run_generate

        return run_generate(args)
    if args.command == "bench":
        return _bench(args)
    if args.command == "check":
        return _check(args)
    if args.command == "stats":
        return _stats(args)
    if args.command == "models":
        from .models_cmd import run_models

        return run_models(args)
    return 2


def claim_stdout() -> BinaryIO:
    """Keep the protocol stream private: move the real stdout to a new descriptor for the server and
    point fd 1 (and ``sys.stdout``) at stderr for good. Whatever else writes to stdout — a C
    library's load errors, ``onnxruntime.preload_dlls()``, a stray print — lands on stderr, and the
    engine's own fd juggling during provider probes can never swallow a protocol message."""
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol_fd, "wb")


def _serve(args: argparse.Namespace) -> int:
    from .server import create_server

    srv = create_server()
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        srv.start_tcp(host or "127.0.0.1", int(port))
    else:
        out = claim_stdout()
        srv.start_io(stdin=sys.stdin.buffer, stdout=out)
    return 0


def _bench(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .engine.bench import run_bench
    from .modelpkg import resolve_model_dir
    from .modelpkg.catalog import DEFAULT_NAME
    from .modelpkg.locate import data_home

    gguf = args.gguf
    if gguf is None and not args.model:
        cached = sorted((data_home() / "cache" / DEFAULT_NAME).glob("*.gguf"))
        gguf = str(cached[0]) if cached else None
    res = run_bench(resolve_model_dir(args.model), threads=args.threads, max_new_tokens=args.new_tokens,
                    baselines=not args.no_baselines, hf_checkpoint=args.hf_checkpoint, gguf=gguf)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str))
    return 0


def _stats(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from .stats import format_report, load_stats, stats_path

    path = stats_path()
    if args.reset:
        path.unlink(missing_ok=True)
        sys.stdout.write(f"deleted {path}\n")
        return 0
    try:
        stats = load_stats(path)
    except ValueError as exc:
        logging.getLogger("codegen_lsp").error("%s", exc)
        return 1
    if args.json:
        sys.stdout.write(json.dumps({k: asdict(v) for k, v in stats.items()}, indent=2) + "\n")
    else:
        sys.stdout.write(format_report(stats, path))
    return 0


def _check(args: argparse.Namespace) -> int:
    from .modelpkg import ModelPackageError, load_package, resolve_model_dir

    path = resolve_model_dir(args.model)
    try:
        pkg = load_package(path, verify_hashes=True)
    except ModelPackageError as exc:
        logging.getLogger("codegen_lsp").error("%s", exc)
        return 1
    m = pkg.manifest
    out = sys.stdout
    out.write(f"{path}: {m.name} ({m.kind}, {m.architecture}), {m.num_layers} layers, vocab {m.vocab_size}\n")
    for v in m.variants:
        out.write(f"  {v.name}: {v.provider} {v.dtype} {v.quantization.method} validation={v.validation.get('status')}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
