"""Merged fine-tuned weights -> a validated model package, through the existing exporters.

``fused``: onnxruntime-genai's builder, exactly as the default model is built (``export/fused.py``:
packed QKV, GroupQueryAttention, last-position logits; ``cpu-int8`` and ``cuda-fp16``), so a
fine-tuned SmolLM2 is a drop-in replacement of the default package. ``generic``: the torch.onnx
exporter (``export/package_writer.export_causal_lm``), for every architecture in ``export/specs.py``.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch

from codegen_lsp.modelpkg import (
    Manifest,
    Provenance,
    SpecialTokens,
    Variant,
    check_io_names,
    file_entries,
    load_package,
    write_manifest,
)

ExportPath = Literal["auto", "fused", "generic"]
FUSED_ARCHITECTURES = {"llama", "qwen2"}
"""Model types the genai builder handles that ``export/specs.py`` also registers."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def save_merged(model: torch.nn.Module, base_checkpoint: Path, out: Path) -> Path:
    """An HF checkpoint of the merged fp32 model, with the base's tokenizer files."""
    if out.exists():
        shutil.rmtree(out)
    model.to("cpu").float().save_pretrained(str(out), safe_serialization=True)  # type: ignore[operator]
    for name in TOKENIZER_FILES:
        if (base_checkpoint / name).is_file():
            shutil.copyfile(base_checkpoint / name, out / name)
    return out


def choose_path(model_type: str, path: ExportPath) -> Literal["fused", "generic"]:
    if path == "auto":
        return "fused" if model_type in FUSED_ARCHITECTURES else "generic"
    return path


def export_generic(model: Any, checkpoint: Path, out: Path, name: str, license: str, notes: str,
                   int8: bool, steps: int = 16) -> Path:
    from export.package_writer import ExportOptions, Source, export_causal_lm

    options = ExportOptions(out_dir=out, name=name, license=license, weight_int8=int8, steps=steps,
                            threads=torch.get_num_threads(), notes=notes)
    return export_causal_lm(model.to("cpu").float().eval(), checkpoint / "tokenizer.json", Source.of(checkpoint),
                            options)


def export_fused(model: Any, checkpoint: Path, out: Path, name: str, license: str, notes: str,
                 cuda: bool = True, extra: dict[str, Any] | None = None) -> Path:
    """The default model's recipe (``export/default_model.build_package``) on a checkpoint directory."""
    from tokenizers import Tokenizer

    from export.default_model import END_OF_TEXT
    from export.fused import (
        DEFAULT_MAX_LENGTH,
        GENAI_CONFIG,
        build_fused,
        fused_variant,
        graph_io_names,
        validate_fused,
    )
    from export.package_writer import exporter_version, prompt_convention, prompt_ids, special_tokens
    from export.specs import spec_for_config
    from export.validate import PROMPTS

    model = model.to("cpu").float().eval()
    spec = spec_for_config(model.config)
    shape = spec.read_shape(model.config)
    tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    tokens = special_tokens(model, tokenizer, shape.vocab_size)
    eot = tokenizer.token_to_id(END_OF_TEXT)
    if eot is not None and eot not in tokens.eos:
        tokens.eos.append(eot)
    convention = prompt_convention(tokenizer, tokens.bos)
    # Raw code prompts take a bos only where the tokenizer itself would add one.
    tokens = SpecialTokens(eos=tokens.eos, bos=tokens.bos if convention.add_bos else None, pad=tokens.pad)
    prompts = prompt_ids(tokenizer, PROMPTS, convention, tokens.bos, DEFAULT_MAX_LENGTH)
    plan: list[tuple[str, Literal["int8", "fp16"], Literal["cpu", "cuda"]]] = [("cpu-int8", "int8", "cpu")]
    if cuda:
        plan.append(("cuda-fp16", "fp16", "cuda"))
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        variants: list[Variant] = []
        dims = (shape.num_layers, shape.num_kv_heads, shape.head_size)
        for vname, precision, provider in plan:
            build = build_fused(checkpoint, stage / vname, precision, provider)
            variant = fused_variant(build, vname, stage)
            variant.validation = validate_fused(build, model, prompts, dims)
            print(f"  {vname}: validation {variant.validation.get('status')}, greedy "
                  f"{variant.validation.get('greedy_steps_matched')}/{variant.validation.get('greedy_steps_total')}")
            variants.append(variant)
        shutil.copyfile(checkpoint / "tokenizer.json", stage / "tokenizer.json")
        manifest = Manifest(
            name=name, kind="causal-lm", architecture=spec.name, tokenizer="tokenizer.json",
            num_layers=shape.num_layers, num_attention_heads=shape.num_heads, num_kv_heads=shape.num_kv_heads,
            head_size=shape.head_size, hidden_size=shape.hidden_size, vocab_size=shape.vocab_size,
            context_length=min(shape.context_length, DEFAULT_MAX_LENGTH), special_tokens=tokens, prompt=convention,
            provenance=Provenance(
                source=str(checkpoint), source_sha256=None, license=license, exporter_version=exporter_version(),
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"), notes=notes,
            ),
            variants=variants, files=[], extra={"trained_context_length": shape.context_length, **(extra or {})},
        )
        for v in variants:
            check_io_names(stage, manifest, v, *graph_io_names(stage / v.graph))
        listed = ["tokenizer.json"] + [p for v in variants for p in (v.graph, *v.external_data)]
        listed += [f"{v.name}/{GENAI_CONFIG}" for v in variants]
        manifest.files = file_entries(stage, listed)
        write_manifest(stage, manifest)
        load_package(stage, verify_hashes=True)
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out
