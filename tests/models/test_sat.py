"""SAT (structure-aware fine-tuning): AST distances on hand-checked bodies, the attention probe
against eager attention, the structure loss, and a training smoke on tiny GPT-2, Llama and Qwen2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from export.tiny import build_tiny_model
from models.finetune.ast_distance import body_leaves, leaf_distances, token_distances, token_leaves
from models.finetune.sat import AttentionProbe, SATConfig, StructureLoss
from models.finetune.train import TrainConfig, train

BODY = "\n    if x:\n        return f(x)\n    return 0"


def test_leaf_distances_of_a_hand_checked_body() -> None:
    spans, paths = body_leaves(BODY)
    leaves = [BODY[s:e] for s, e in spans]
    assert leaves == ["if", "x", ":", "return", "f", "(", "x", ")", "return", "0"]
    d = leaf_distances(paths)
    assert d.shape == (10, 10) and np.array_equal(d, d.T) and not d.diagonal().any()
    # if_statement > {if, x, :}: siblings are 2 apart.
    assert d[0, 2] == 2 and d[0, 1] == 2
    # if -> if_statement -> block -> return_statement -> return
    assert d[0, 3] == 4
    # f -> call -> argument_list -> x
    assert d[4, 6] == 3
    # the condition's x and the argument x meet at the if_statement: 1 up, 5 down
    assert d[1, 6] == 6
    # inner return -> return_statement -> block -> if_statement -> outer block -> return_statement -> return
    assert d[3, 8] == 6
    assert d[0, 9] == 4  # if and 0 meet at the function's block


def test_subtokens_map_to_leaves_and_whitespace_is_masked() -> None:
    body = "\n    return a + b"
    spans, _ = body_leaves(body)
    # "\n    " | " return" (leading space) | " a" | " +" | " b" ; a token across two leaves takes the first
    offsets = [(0, 4), (4, 11), (11, 13), (13, 15), (15, 17)]
    assert token_leaves(spans, offsets, body).tolist() == [-1, 0, 1, 2, 3]
    assert token_leaves(spans, [(11, 15)], body).tolist() == [1]


def test_token_distances_mask_unmapped_tokens() -> None:
    _, tok = build_tiny_model("gpt2")
    body = "\n    return a + b"
    n = len(tok.encode(body, add_special_tokens=False).ids) + 1  # + the end token
    d = token_distances(tok, body, n)
    mapped = ~np.isnan(d).all(1)
    assert not mapped[-1] and mapped.sum() >= 2  # the end token has no leaf
    ok = np.flatnonzero(mapped)
    assert np.isnan(d[-1]).all() and np.isnan(d[:, -1]).all()
    assert not np.isnan(d[np.ix_(ok, ok)]).any() and (d[np.ix_(ok, ok)] >= 0).all()


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2"])
def test_probe_matches_eager_attention(arch: str) -> None:
    model, _ = build_tiny_model(arch)
    model.eval()
    assert model.config._attn_implementation == "sdpa"  # the probe recomputes what sdpa never stores
    ids = torch.randint(3, 300, (2, 10), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 7:] = 0
    probe = AttentionProbe(model, (0, 1))
    probe.key_mask = mask
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask)
    model.set_attn_implementation("eager")
    with torch.no_grad():
        eager = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    probe.close()
    for layer in (0, 1):
        torch.testing.assert_close(probe.probs[layer][0], eager[layer][0], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(probe.probs[layer][1, :, :7, :7], eager[layer][1, :, :7, :7], atol=1e-6, rtol=1e-5)


def test_probe_refuses_a_layer_the_model_lacks() -> None:
    model, _ = build_tiny_model("llama")
    with pytest.raises(ValueError, match=r"--sat-layers \[5\]: the model has 2 layers"):
        AttentionProbe(model, (5,))


def test_structure_loss_is_zero_on_its_own_target_and_positive_elsewhere() -> None:
    n = 6
    dist = np.abs(np.subtract.outer(np.arange(n), np.arange(n))).astype(np.float32)
    dist[5] = dist[:, 5] = np.nan  # an unmapped token
    loss = StructureLoss()
    lower = torch.ones(n, n).tril()
    target = torch.nan_to_num(torch.as_tensor(dist), nan=0.0) * lower  # a = 1, b = 0 at the start
    probs = torch.zeros(1, 2, n + 2, n + 2)
    probs[0, :, 2:, 2:] = target  # the body starts at position 2
    assert float(loss(probs, [(2, dist)])) == pytest.approx(0.0, abs=1e-6)
    probs[0, 1, 2:, 2:] = lower / lower.sum(1, keepdim=True)
    value = loss(probs, [(2, dist)])
    assert float(value) > 1e-3
    value.backward()
    assert loss.affine.weight.grad is not None and float(loss.affine.weight.grad.abs()) > 0


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    bodies = ["\n    if x:\n        return f(x)\n    return 0", "\n    total = 0\n    for v in items:\n"
              "        total += v\n    return total", "\n    return [a for a in xs if a]"]
    root = tmp_path / "corpus"
    root.mkdir()
    for split, n in (("train", 8), ("valid", 2)):
        with open(root / f"{split}.jsonl", "w") as fh:
            for i in range(n):
                fh.write(json.dumps({"prompt": f'def g{i}(x, items, xs):\n    """Do thing {i}."""',
                                     "target": bodies[i % 3]}) + "\n")
    return root


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2"])
def test_sat_trains_every_family(tmp_path: Path, corpus: Path, arch: str) -> None:
    torch.set_num_threads(1)
    model, tok = build_tiny_model(arch)
    eos = tok.token_to_id("<|endoftext|>") if arch != "llama" else 1
    cfg = TrainConfig(steps=3, batch_size=4, seq_len=64, lr=3e-3, warmup=1, valid_pairs=2,
                      sat=SATConfig(alpha=0.5, layers=(0,)))
    result, trained, _ = train(model, tok, corpus, tmp_path / "run", cfg, eos_ids=[eos], bos=None, pad=eos,
                               progress=False)
    structure = [h["structure"] for h in result.history]
    assert len(structure) == 3 and all(math.isfinite(s) and s > 0 for s in structure)
    state = torch.load(tmp_path / "run" / "train_state.pt", weights_only=False)
    assert set(state["sat"]) == {"affine.weight", "affine.bias"}
    assert not any(type(m).__name__ == "AttentionProbe" for m in trained.modules())


def test_sat_lr_scale_speeds_up_only_a_and_b(tmp_path: Path, corpus: Path) -> None:
    """``lr_scale`` multiplies the learning rate of SAT's a, b alone: the same run moves them ~100x
    farther from their identity start, and the LoRA weights train at the schedule's rate."""
    torch.set_num_threads(1)
    moved, lrs = {}, {}
    for scale in (1.0, 100.0):
        model, tok = build_tiny_model("llama")
        cfg = TrainConfig(steps=3, batch_size=4, seq_len=64, lr=1e-3, warmup=1, valid_pairs=2,
                          sat=SATConfig(alpha=0.5, layers=(0,), lr_scale=scale))
        result, _, _ = train(model, tok, corpus, tmp_path / f"run{scale:g}", cfg, eos_ids=[1], bos=None, pad=1,
                             progress=False)
        state = torch.load(tmp_path / f"run{scale:g}" / "train_state.pt", weights_only=False)
        moved[scale] = abs(float(state["sat"]["affine.weight"]) - 1.0)
        lrs[scale] = [g["lr"] for g in state["optimizer"]["param_groups"]]
        assert [h["lr"] for h in result.history][-1] == pytest.approx(lrs[scale][0])
    assert moved[1.0] > 0 and moved[100.0] > 20 * moved[1.0], moved
    assert lrs[100.0][0] == pytest.approx(lrs[1.0][0]) and lrs[100.0][1] == pytest.approx(100 * lrs[1.0][1])


def test_structure_gradient_reaches_only_the_probed_layer_and_below() -> None:
    from export.lora import LoRAConfig, attach
    from models.finetune.sat import SATObjective

    model, tok = build_tiny_model("qwen2")
    peft_model = attach(model, LoRAConfig(rank=2, alpha=4, targets=("q_proj", "k_proj")))
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    body = "\n    total = 0\n    for v in items:\n        total += v\n    return total"
    ids = tok.encode(body, add_special_tokens=False).ids
    sat = SATObjective(peft_model, SATConfig(layers=(0,)), tok, [body], [[-100, -100, *ids]])
    x = torch.tensor([[5, 6, *ids]])
    sat.watch(torch.ones_like(x))
    peft_model(input_ids=x)
    sat([0]).backward()
    sat.close()
    grads = {n: p.grad for n, p in peft_model.named_parameters() if "lora_" in n}
    assert all(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "layers.0." in n)
    assert all(g is None for n, g in grads.items() if "layers.1." in n)
