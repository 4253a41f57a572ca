"""Tiny random models, one per registered architecture, plus a tiny real BPE tokenizer: enough to
export, validate and serve a genuine package in a few seconds (tests for export, engine, server).

Random models with the usual init (std 0.02) have near-flat logits (std ~0.17), where greedy
decoding hinges on tiny differences; raising every weight's std instead makes the network chaotic,
so int8 rounding flips greedy picks (std 0.1: 125/128 steps agree). The tiny models therefore keep
inner weights small (``TINY_INIT_STD = 0.05``) and scale only the tied embedding / lm_head table
(``TINY_EMBED_STD = 0.3``): logits spread ~2.5, the context still moves last-token logits by ~2
(so a broken KV cache is caught), int8 logits stay within ~0.1 and greedy agrees on 128/128 steps.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
)

TINY_INIT_STD = 0.05
TINY_EMBED_STD = 0.3
TINY_CONTEXT = 256
TINY_VOCAB = 384

_CORPUS = [
    'def add(a, b):\n    """Return a + b."""\n    return a + b\n',
    'def is_even(n: int) -> bool:\n    """True for even n."""\n    return n % 2 == 0\n',
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n"
    "        self.items.append(item)\n\n    def pop(self):\n        return self.items.pop()\n",
    "import os\n\n\ndef list_files(root: str) -> list[str]:\n    out = []\n    for name in os.listdir(root):\n"
    "        if name.endswith('.py'):\n            out.append(name)\n    return out\n",
    "for i in range(10):\n    if i % 3 == 0:\n        print(i)\n    else:\n        continue\n",
]

# Special tokens per family, in id order from 0: (tokens, bos, eos, add_bos).
_SPECIALS: dict[str, tuple[list[str], int | None, int, bool]] = {
    "gpt2": (["<|endoftext|>"], 0, 0, False),
    "llama": (["<s>", "</s>"], 0, 1, True),
    "qwen2": (["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, 0, False),
}


def tiny_tokenizer(arch: str, vocab_size: int = TINY_VOCAB) -> Tokenizer:
    """A byte-level BPE trained on a few Python snippets: it merges newline + indentation like the
    GPT-2 / Llama-3 / SmolLM tokenizers do. Llama's prepends ``<s>`` through its post-processor."""
    specials, bos, _eos, add_bos = _SPECIALS[arch]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    if add_bos and bos is not None:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{specials[bos]} $A", pair=f"{specials[bos]} $A $B", special_tokens=[(specials[bos], bos)]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def _gpt2(vocab: int, bos: int | None, eos: int) -> PreTrainedModel:
    return GPT2LMHeadModel(
        GPT2Config(
            vocab_size=vocab, n_embd=64, n_layer=2, n_head=4, n_positions=TINY_CONTEXT,
            bos_token_id=bos, eos_token_id=eos, initializer_range=TINY_INIT_STD,
        )
    )


def _llama(vocab: int, bos: int | None, eos: int) -> PreTrainedModel:
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=TINY_CONTEXT,
            bos_token_id=bos, eos_token_id=eos, tie_word_embeddings=True, initializer_range=TINY_INIT_STD,
        )
    )


def _qwen2(vocab: int, bos: int | None, eos: int) -> PreTrainedModel:
    return Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=TINY_CONTEXT,
            bos_token_id=bos, eos_token_id=eos, tie_word_embeddings=True, initializer_range=TINY_INIT_STD,
        )
    )


TINY_BUILDERS: dict[str, Callable[[int, int | None, int], PreTrainedModel]] = {
    "gpt2": _gpt2,
    "llama": _llama,
    "qwen2": _qwen2,
}
"""Tiny random model per registered spec name (``export.specs.SPECS``)."""


def build_tiny_model(arch: str, seed: int = 0) -> tuple[PreTrainedModel, Tokenizer]:
    """A tiny random fp32 model of ``arch`` and its tokenizer (vocab sizes agree)."""
    tok = tiny_tokenizer(arch)
    _specials, bos, eos, _ = _SPECIALS[arch]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = TINY_BUILDERS[arch](tok.get_vocab_size(), bos, eos)
        table = model.get_input_embeddings().weight  # tied: the lm_head too
        with torch.no_grad():
            torch.nn.init.normal_(table, 0.0, TINY_EMBED_STD)  # type: ignore[arg-type]
    return model.eval(), tok


def build_tiny_checkpoint(out_dir: Path, arch: str = "llama", seed: int = 0) -> Path:
    """Save a tiny model as an HF checkpoint directory (config, safetensors, tokenizer.json)."""
    model, tok = build_tiny_model(arch, seed)
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tok.save(str(out_dir / "tokenizer.json"))
    return out_dir


def state_sha256(model: torch.nn.Module) -> str:
    """Digest of a model's tensors (names and bytes, in state-dict order): provenance of weights
    that never lived in a file."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def build_tiny_package(out_dir: Path, arch: str = "llama", int8: bool = False, **options: Any) -> Path:
    """Export, validate and package a tiny random ``arch`` model into ``out_dir`` (a few seconds).
    ``int8`` makes the CPU variant ``cpu-int8`` instead of ``fp32``; ``options`` go to ``ExportOptions``
    (e.g. ``steps=8`` for an even faster build)."""
    from .package_writer import ExportOptions, Source, export_causal_lm

    out_dir = Path(out_dir)
    model, tok = build_tiny_model(arch)
    options.setdefault("threads", 1)
    opts = ExportOptions(out_dir=out_dir, name=f"tiny-random-{arch}", license="Apache-2.0",
                         weight_int8=int8, notes="tiny random model for tests", **options)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 64-wide model only pays thread overhead (5x slower on a busy box)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tok_path = Path(tmp) / "tokenizer.json"
            tok.save(str(tok_path))
            source = Source(Path(f"tiny-random-{arch}"), state_sha256(model))
            return export_causal_lm(model, tok_path, source, opts)
    finally:
        torch.set_num_threads(threads)
