"""A tiny Llama trained in seconds to write simple, valid bodies after a docstring.

Random tiny models emit noise that never parses, so tests of the whole path (engine -> grammar check
-> LSP edit -> editor buffer) need a model that actually writes code. This one learns a synthetic
corpus of one- and two-statement functions; it is small enough to build in a test fixture
(~2.5 M parameters, well under a minute on 2 cores) and behaves like a real package in every other
way (same exporter, same validation, same manifest).

    python -m models.tiny_coder --out .cache/tiny-coder
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM

VERSION = "2"  # bump to invalidate cached packages when the recipe changes

_NAMES = ["total", "count", "value", "item", "data", "text", "size", "score", "name", "result"]
_VERBS = ["compute", "get", "make", "find", "load", "build", "check", "parse", "merge", "scale"]
_BODIES = [
    ("Return the sum of {a} and {b}.", "return {a} + {b}"),
    ("Return {a} multiplied by {b}.", "return {a} * {b}"),
    ("Return True if {a} is greater than {b}.", "return {a} > {b}"),
    ("Return the larger of {a} and {b}.", "return max({a}, {b})"),
    ("Return the length of {a}.", "return len({a})"),
    ("Return {a} as a string.", "return str({a})"),
    ("Return a list with {a} and {b}.", "return [{a}, {b}]"),
    ("Return {a} unchanged if positive, else zero.", "if {a} > 0:\n        return {a}\n    return 0"),
    ("Add {b} to {a} and return it.", "{a} = {a} + {b}\n    return {a}"),
    ("Return the items of {a} in sorted order.", "return sorted({a})"),
]


def synthetic_corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.sample(_NAMES, 2)
        doc, body = rng.choice(_BODIES)
        fname = f"{rng.choice(_VERBS)}_{rng.choice(_NAMES)}"
        indent = rng.choice(["", "    "])
        text = f'def {fname}({a}, {b}):\n    """{doc.format(a=a, b=b)}"""\n    {body.format(a=a, b=b)}\n'
        if indent:  # methods too, so class bodies are familiar
            text = "class Box:\n" + "".join(indent + ln if ln else ln for ln in text.replace("(", "(self, ", 1).splitlines(True))
        out.append(text + "\n\n")
    return out


def train_tokenizer(corpus: list[str], vocab_size: int = 512) -> Tokenizer:
    """Byte-level BPE that merges newline + indentation, like the production tokenizers."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return tok


def train(steps: int = 300, seed: int = 0) -> tuple[LlamaForCausalLM, Tokenizer]:
    torch.manual_seed(seed)
    corpus = synthetic_corpus(seed=seed)
    tok = train_tokenizer(corpus)
    ids = [tok.encode(t).ids + [0] for t in corpus]
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=tok.get_vocab_size(), hidden_size=96, intermediate_size=256, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            bos_token_id=None, eos_token_id=0, tie_word_embeddings=True,
        )
    )
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    rng = random.Random(seed)
    model.train()
    for step in range(steps):
        batch = rng.sample(ids, 16)
        width = max(len(x) for x in batch)
        x = torch.tensor([s + [0] * (width - len(s)) for s in batch])
        labels = torch.tensor([s + [-100] * (width - len(s)) for s in batch])
        loss = model(input_ids=x, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"tiny-coder step {step} loss {loss.item():.3f}")
    return model.eval(), tok


def build_tiny_coder_package(out_dir: Path, steps: int = 300) -> Path:
    from export.package_writer import ExportOptions, Source, export_causal_lm
    from export.tiny import state_sha256

    t0 = time.perf_counter()
    model, tok = train(steps)
    opts = ExportOptions(out_dir=Path(out_dir), name="tiny-coder", license="Apache-2.0",
                         notes=f"tiny Llama trained on a synthetic corpus (recipe {VERSION}) for tests")
    with tempfile.TemporaryDirectory() as tmp:
        tok_path = Path(tmp) / "tokenizer.json"
        tok.save(str(tok_path))
        path = export_causal_lm(model, tok_path, Source(Path("tiny-coder"), state_sha256(model)), opts)
    print(f"tiny-coder package built in {time.perf_counter() - t0:.1f}s at {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.tiny_coder")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--steps", type=int, default=300)
    a = p.parse_args(argv)
    build_tiny_coder_package(a.out, a.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
