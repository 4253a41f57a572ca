"""``python -m export causal-lm`` end to end on a tiny checkpoint directory, in process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from codegen_lsp.modelpkg import Variant, load_package
from export.cli import main
from export.package_writer import Source, add_variants
from export.tiny import build_tiny_checkpoint, tiny_tokenizer


def test_checkpoint_to_package_with_all_variants(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = build_tiny_checkpoint(tmp_path / "ckpt", "llama")
    out = tmp_path / "pkg"
    argv = ["causal-lm", "--checkpoint", str(ckpt), "--out", str(out), "--weight-int8", "--keep-fp32",
            "--dtype", "fp16", "--name", "tiny", "--license", "MIT", "--steps", "8", "--threads", "1"]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    pkg = load_package(out, verify_hashes=True)
    m = pkg.manifest
    assert [v.name for v in m.variants] == ["cpu-int8", "fp32", "cuda-fp16"]
    assert pkg.variant("cpu").name == "cpu-int8"  # the first CPU variant is the one the engine picks
    fp16 = pkg.variant("cuda")
    assert fp16.dtype == "fp16" and fp16.validation["status"] in ("passed", "skipped")
    assert all(v.validation["steps"] == 8 for v in m.variants if v.validation["status"] == "passed")
    assert (m.name, m.provenance.license) == ("tiny", "MIT")
    assert m.provenance.source == str(ckpt) and m.provenance.source_sha256 == Source.of(ckpt).sha256
    assert not list(out.glob(".staging-*"))


def test_int8_replaces_fp32_and_keeps_other_builders_variants(tmp_path: Path) -> None:
    ckpt = build_tiny_checkpoint(tmp_path / "ckpt", "gpt2")
    out = tmp_path / "pkg"
    assert main(["causal-lm", "--checkpoint", str(ckpt), "--out", str(out), "--steps", "4", "--threads", "1"]) == 0
    # another builder (e.g. the fused GQA path) adds a variant to the same package
    (out / "extra").mkdir()
    shutil.copyfile(out / "fp32" / "model.onnx", out / "extra" / "model.onnx")
    add_variants(out, [Variant(name="extra", provider="cuda", graph="extra/model.onnx", builder="test")])
    assert main(["causal-lm", "--checkpoint", str(ckpt), "--out", str(out), "--steps", "4", "--weight-int8", "--threads", "1"]) == 0
    m = load_package(out, verify_hashes=True).manifest
    assert [v.name for v in m.variants] == ["cpu-int8", "extra"]
    assert not (out / "fp32").exists()


def test_unsupported_architecture_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tok = tiny_tokenizer("gpt2")
    config = GPTNeoXConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=64)
    ckpt = tmp_path / "neox"
    GPTNeoXForCausalLM(config).save_pretrained(ckpt)
    tok.save(str(ckpt / "tokenizer.json"))
    assert main(["causal-lm", "--checkpoint", str(ckpt), "--out", str(tmp_path / "pkg"), "--threads", "1"]) == 1
    assert "UnsupportedArchitecture" in capsys.readouterr().err
    assert not (tmp_path / "pkg" / "manifest.json").exists()


def test_missing_source_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["causal-lm", "--gguf", str(tmp_path / "none.gguf"), "--out", str(tmp_path / "p")]) == 1
    assert "no such file" in capsys.readouterr().err
