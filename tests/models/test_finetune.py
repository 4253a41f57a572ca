"""Fine-tuning on tiny models: prompt masking, LoRA merge exactness, loss going down, resume equal
to an uninterrupted run, and the merged model exported to a package the engine serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from codegen_lsp.engine import GenerationConfig, load_engine
from codegen_lsp.modelpkg import load_package
from export.lora import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    AdapterKeyMismatch,
    LoRAConfig,
    adapter_state,
    attach,
    load_adapter,
    merge,
)
from export.tiny import build_tiny_checkpoint, build_tiny_model, tiny_tokenizer
from models.finetune.__main__ import main
from models.finetune.data import IGNORE, encode_pair
from models.finetune.train import TrainConfig, train
from tests.fixture_corpus import write_corpus

PAIRS = [
    ('def add(a, b):\n    """Return a + b."""', "\n    return a + b"),
    ('def is_even(n: int) -> bool:\n    """True for even n."""', "\n    return n % 2 == 0"),
    ('def push(self, item):\n    """Add item on top."""', "\n    self.items.append(item)"),
    ('def pop(self):\n    """Remove the top item."""', "\n    return self.items.pop()"),
]


@pytest.fixture(autouse=True)
def _threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path, PAIRS, {"train": 24, "valid": 4}, {"package": "fixture"})


def test_labels_mask_the_prompt() -> None:
    tok: Tokenizer = tiny_tokenizer("llama")
    prompt, target = PAIRS[0]
    p = tok.encode(prompt, add_special_tokens=False).ids
    t = tok.encode(target, add_special_tokens=False).ids
    ex = encode_pair(tok, prompt, target, end=1, seq_len=256, bos=0)
    assert ex.input_ids == [0, *p, *t, 1]
    assert ex.labels == [IGNORE] * (1 + len(p)) + [*t, 1]
    assert ex.body_tokens == len(t) + 1
    # A short window keeps the prompt's tail next to the body and cuts the body's end.
    short = encode_pair(tok, prompt, target * 10, end=1, seq_len=24)
    assert len(short.input_ids) == 24
    kept_prompt = short.labels.count(IGNORE)
    assert kept_prompt == 12 and short.input_ids[:kept_prompt] == p[-12:]
    assert short.labels[kept_prompt:] == short.input_ids[kept_prompt:]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_lora_starts_at_the_base_and_merges_exactly(arch: str) -> None:
    model, _ = build_tiny_model(arch)
    ids = torch.randint(0, 300, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = model(ids).logits
    keys = set(model.state_dict())
    targets = ("q_proj", "v_proj") if arch == "llama" else ("c_attn", "attn.c_proj")
    peft_model = attach(model, LoRAConfig(rank=4, alpha=8, targets=targets))
    assert len(adapter_state(peft_model)) == 8
    assert all(not p.requires_grad or "lora_" in n for n, p in peft_model.named_parameters())
    with torch.no_grad():
        assert torch.equal(peft_model(input_ids=ids).logits, base)  # B starts at zero
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
        adapted = peft_model(input_ids=ids).logits
    assert not torch.allclose(adapted, base, atol=1e-3)
    merged, layers = merge(peft_model)
    assert merged is model and layers == 4 and set(model.state_dict()) == keys
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, adapted, atol=1e-5, rtol=1e-5)


def test_resume_continues_exactly(tmp_path: Path, corpus: Path) -> None:
    torch.set_num_threads(1)
    tok = tiny_tokenizer("llama")
    cfg = TrainConfig(steps=6, batch_size=4, seq_len=64, lr=3e-3, warmup=2, save_every=100, valid_pairs=4)

    def run(out: Path, stop_after: int | None = None, resume: bool = False) -> dict[str, torch.Tensor]:
        model, _ = build_tiny_model("llama")
        _, trained, _ = train(model, tok, corpus, out, cfg, eos_ids=[1], bos=0, pad=1, resume=resume,
                              progress=False, stop_after=stop_after)
        return adapter_state(trained)

    straight = run(tmp_path / "a")
    run(tmp_path / "b", stop_after=3)
    state = torch.load(tmp_path / "b" / "train_state.pt", weights_only=False)
    assert state["result"]["steps"] == 3
    resumed = run(tmp_path / "b", resume=True)
    assert straight.keys() == resumed.keys()
    for k in straight:
        torch.testing.assert_close(resumed[k], straight[k], atol=1e-6, rtol=1e-5)
    history = json.loads(json.dumps(torch.load(tmp_path / "b" / "train_state.pt", weights_only=False)["result"]))
    assert [h["step"] for h in history["history"]] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(("arch", "full"), [("gpt2", False), ("llama", False), ("gpt2", True)])
def test_cli_trains_merges_and_exports(tmp_path: Path, corpus: Path, arch: str, full: bool) -> None:
    ckpt = build_tiny_checkpoint(tmp_path / "ckpt", arch)
    out = tmp_path / "run"
    args = ["--base", str(ckpt), "--corpus", str(corpus), "--out", str(out), "--steps", "10", "--batch-size", "4",
            "--seq-len", "64", "--lr", "3e-3", "--valid-pairs", "4", "--threads", "1", "--nice", "0",
            "--export", "generic", "--no-progress", "--lora-rank", "4", *(["--full"] if full else [])]
    assert main(args) == 0
    report = json.loads((out / "history.json").read_text())
    assert report["steps"] == 10 and report["tokens"] > report["body_tokens"] > 0
    losses = [h["loss"] for h in report["history"]]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    assert report["valid"][-1]["loss"] < report["valid"][0]["loss"]
    assert not (out / "merged").exists()
    if full:
        assert not (out / ADAPTER_WEIGHTS).exists()
    else:
        assert (out / ADAPTER_WEIGHTS).stat().st_size < 100_000 and (out / ADAPTER_CONFIG).is_file()
    assert main(args) == 2  # an existing run is never overwritten without --resume
    pkg = load_package(out / "package", verify_hashes=True)
    assert pkg.manifest.architecture == arch and "fine-tuned" in pkg.manifest.provenance.notes
    assert pkg.manifest.variants[0].validation["status"] == "passed"
    engine = load_engine(out / "package", device="cpu", threads=1)
    result = engine.generate(PAIRS[0][0], GenerationConfig(max_new_tokens=8))
    assert len(result.generations) == 1 and result.generations[0].finish_reason in ("eos", "length", "repetition")
    if not full:  # the saved adapter alone rebuilds the same model
        again = tmp_path / "again"
        assert main([*args[:4], "--out", str(again), "--from-adapter", str(out), *args[6:]]) == 0
        rebuilt = load_engine(again / "package", device="cpu", threads=1)
        cfg = GenerationConfig(max_new_tokens=8)
        assert rebuilt.generate(PAIRS[1][0], cfg).generations[0].token_ids == \
            engine.generate(PAIRS[1][0], cfg).generations[0].token_ids


@pytest.mark.slow  # the onnxruntime-genai builder runs in a subprocess (~10 s)
def test_fused_export_like_the_default_model(tmp_path: Path, corpus: Path) -> None:
    ckpt = build_tiny_checkpoint(tmp_path / "ckpt", "llama")
    out = tmp_path / "run"
    assert main(["--base", str(ckpt), "--corpus", str(corpus), "--out", str(out), "--steps", "3", "--seq-len", "64",
                 "--valid-pairs", "2", "--threads", "1", "--nice", "0", "--no-progress", "--export", "fused",
                 "--no-cuda-variant"]) == 0
    pkg = load_package(out / "package", verify_hashes=True)
    (variant,) = pkg.manifest.variants
    assert (variant.name, variant.builder, variant.validation["status"]) == ("cpu-int8", "onnxruntime-genai", "passed")
    assert variant.io.past_present_share_buffer and pkg.manifest.extra["finetune"]["steps"] == 3
    engine = load_engine(out / "package", device="cpu", threads=1)
    assert engine.generate(PAIRS[0][0], GenerationConfig(max_new_tokens=4)).generations


def test_a_saved_adapter_loads_with_peft_and_refuses_foreign_keys(tmp_path: Path) -> None:
    from peft import PeftModel
    from safetensors.torch import load_file, save_file

    from export.lora import save_adapter

    model, _ = build_tiny_model("qwen2")
    peft_model = attach(model, LoRAConfig(rank=4, alpha=8, targets=("q_proj", "v_proj")), seed=3)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    save_adapter(peft_model, tmp_path, {"base_sha256": "x"})
    ids = torch.randint(0, 300, (1, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = peft_model(input_ids=ids).logits
        # The ecosystem's own loader reads the directory as is.
        loaded = PeftModel.from_pretrained(build_tiny_model("qwen2")[0], str(tmp_path))
        ours = load_adapter(build_tiny_model("qwen2")[0], tmp_path)[0]
        torch.testing.assert_close(loaded(input_ids=ids).logits, ours(input_ids=ids).logits, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(loaded(input_ids=ids).logits, expected, atol=1e-2, rtol=1e-2)  # fp16 file
    state = load_file(str(tmp_path / ADAPTER_WEIGHTS))
    state["base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"] = torch.zeros(4, 64, dtype=torch.float16)
    save_file(state, str(tmp_path / ADAPTER_WEIGHTS))
    with pytest.raises(AdapterKeyMismatch, match=r"0 missing .* 1 unexpected .*mlp\.up_proj"):
        load_adapter(build_tiny_model("qwen2")[0], tmp_path)
    del state["base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"]
    del state["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"]
    save_file(state, str(tmp_path / ADAPTER_WEIGHTS))
    with pytest.raises(AdapterKeyMismatch, match=r"1 missing .*layers\.1\.self_attn\.v_proj"):
        load_adapter(build_tiny_model("qwen2")[0], tmp_path)
