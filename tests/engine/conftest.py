"""Tiny real packages for the engine tests: export/tiny.py's standard graph plus, in the same
package, a fused GroupQueryAttention variant built by export/fused.py from the same weights."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from codegen_lsp.modelpkg import IONames, Quantization, Variant

FUSED = "cpu-int8-gqa"


def add_fused_variant(pkg: Path, arch: str = "llama") -> None:
    """Build the genai fused graph of the tiny model's weights into ``pkg/<FUSED>`` and register it
    (appended after the standard variant, so the package's default CPU variant stays standard)."""
    from export.fused import build_fused
    from export.package_writer import add_variants
    from export.tiny import build_tiny_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = build_tiny_checkpoint(Path(tmp) / "ckpt", arch)
        built = build_fused(ckpt, pkg / FUSED, precision="int8", max_length=256)
    for extra in ("genai_config.json", "tokenizer.json", "tokenizer_config.json"):
        (pkg / FUSED / extra).unlink(missing_ok=True)
    io = replace(IONames(position_ids=None), past_present_share_buffer=True, logits_last_only=True)
    variant = Variant(
        name=FUSED, provider="cpu", graph=f"{FUSED}/model.onnx",
        external_data=[f"{FUSED}/{p.name}" for p in built.external_data], builder="onnxruntime-genai",
        quantization=Quantization(method="matmulnbits", bits=8, block_size=32, accuracy_level=4), io=io,
    )
    import json

    from codegen_lsp.modelpkg import MANIFEST_FILE, Manifest
    from codegen_lsp.modelpkg.manifest import from_dict

    manifest = from_dict(Manifest, json.loads((pkg / MANIFEST_FILE).read_text()))
    standard = manifest.variants
    add_variants(pkg, [variant])
    # add_variants puts new variants first; keep the standard graph as the default CPU variant.
    manifest = from_dict(Manifest, json.loads((pkg / MANIFEST_FILE).read_text()))
    manifest.variants = [*standard, *(v for v in manifest.variants if v.name == FUSED)]
    from codegen_lsp.modelpkg import write_manifest

    write_manifest(pkg, manifest)


@pytest.fixture(scope="session")
def tiny_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama package with variants ``fp32`` (standard) and ``cpu-int8-gqa`` (fused)."""
    from export.tiny import build_tiny_package

    pkg = build_tiny_package(tmp_path_factory.mktemp("tiny") / "llama", arch="llama", steps=4)
    add_fused_variant(pkg)
    return pkg
