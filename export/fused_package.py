"""Checkpoint directory -> validated fused package: the one recipe behind the embedded default model
(``default_model.py``) and fine-tuned packages (``models/finetune``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from codegen_lsp.engine.session import KVDims
from codegen_lsp.modelpkg import (
    Manifest,
    Provenance,
    SpecialTokens,
    Variant,
    check_io_names,
    file_entries,
    write_manifest,
)

from .fused import (
    DEFAULT_MAX_LENGTH,
    GENAI_CONFIG,
    FusedBuild,
    Precision,
    build_fused,
    fused_variant,
    graph_io_names,
    validate_fused,
)
from .package_writer import TOKENIZER_FILE, causal_lm_manifest

END_OF_TEXT = "<|endoftext|>"

Plan = Sequence[tuple[str, Precision, Literal["cpu", "cuda"]]]
Step = Callable[..., Any]
"""``step(label, fn, *args)`` runs one timed build step; the default just calls ``fn(*args)``."""


def _call(_label: str, fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def report(name: str, r: dict[str, Any]) -> None:
    """One line per validated variant."""
    if r.get("status") != "passed":
        print(f"  {name}: validation {r.get('status')}: {r.get('reason', '')}", flush=True)
        return
    print(f"  {name}: logits max |err| prefill {r['max_abs_err_prefill']:.3g}, decode {r['max_abs_err_decode']:.3g}; "
          f"greedy {r['greedy_steps_matched']} + {r['greedy_ties']} ties / {r['greedy_steps_total']} "
          f"on {r['provider']}{' (' + r['note'] + ')' if r.get('note') else ''}", flush=True)


def build_fused_package(
    model: Any,
    checkpoint: Path,
    stage: Path,
    *,
    name: str,
    provenance: Provenance,
    plan: Plan,
    extra: dict[str, Any] | None = None,
    allow_bos: bool = True,
    step: Step = _call,
    on_variant: Callable[[Variant, FusedBuild, Any, KVDims], None] | None = None,
    builder_options: dict[str, Sequence[str]] | None = None,
    context_cap: int = DEFAULT_MAX_LENGTH,
    extra_files: Callable[[], list[str]] | None = None,
    fim: tuple[str, str, str] | None = None,
    embed_fp16: Sequence[str] = (),
) -> Manifest:
    """Build every variant of ``plan`` from ``checkpoint`` into ``stage``, validate each against the
    fp32 PyTorch ``model``, and write the manifest there. ``allow_bos=False`` never prepends a bos
    (raw code prompts); otherwise only where the tokenizer itself would add one. ``builder_options``:
    extra onnxruntime-genai builder options per variant name; ``context_cap``: the most positions the
    manifest records; ``extra_files`` writes more files into ``stage`` and returns their names;
    ``embed_fp16``: variants whose unquantized embedding table is stored as fp16."""
    import shutil

    from tokenizers import Tokenizer

    from .package_writer import exporter_version, prompt_convention, prompt_ids, special_tokens, with_fim
    from .specs import spec_for_config
    from .validate import PROMPTS

    spec = spec_for_config(model.config)
    shape = spec.read_shape(model.config)
    tokenizer = Tokenizer.from_file(str(checkpoint / TOKENIZER_FILE))
    tokens = special_tokens(model, tokenizer, shape.vocab_size)
    eot = tokenizer.token_to_id(END_OF_TEXT)
    if eot is not None and eot not in tokens.eos:
        tokens.eos.append(eot)
    convention = with_fim(prompt_convention(tokenizer, tokens.bos if allow_bos else None), fim)
    tokens = SpecialTokens(eos=tokens.eos, bos=tokens.bos if convention.add_bos else None, pad=tokens.pad)
    prompts = prompt_ids(tokenizer, PROMPTS, convention, tokens.bos, DEFAULT_MAX_LENGTH)
    dims = KVDims(shape.num_layers, shape.num_kv_heads, shape.head_size, shape.vocab_size)
    variants: list[Variant] = []
    for vname, precision, provider in plan:
        opts = tuple((builder_options or {}).get(vname, ()))
        build = step(f"build {vname}", build_fused, checkpoint, stage / vname, precision, provider,
                     context_cap, 4, None, opts, vname in embed_fp16)
        variant = fused_variant(build, vname, stage)
        variant.validation = step(f"validate {vname}", validate_fused, build, model, prompts, dims)
        report(vname, variant.validation)
        if on_variant is not None:
            on_variant(variant, build, tokenizer, dims)
        variants.append(variant)
    shutil.copyfile(checkpoint / TOKENIZER_FILE, stage / TOKENIZER_FILE)
    if not provenance.exporter_version:
        provenance.exporter_version = exporter_version()
    manifest = causal_lm_manifest(name, spec, shape, tokens, convention, provenance, variants, context_cap, extra)
    for v in variants:
        check_io_names(stage, manifest, v, *graph_io_names(stage / v.graph))
    listed = [TOKENIZER_FILE] + [p for v in variants for p in (v.graph, *v.external_data)]
    listed += [f"{v.name}/{GENAI_CONFIG}" for v in variants]  # for onnxruntime-genai's Generator
    listed += extra_files() if extra_files is not None else []
    manifest.files = file_entries(stage, listed)
    write_manifest(stage, manifest)
    return manifest
