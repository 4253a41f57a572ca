"""Corpus pairs -> causal-LM examples in the server's prompt format, with the loss on the body only.

An example is ``[bos?] + ids(prompt) + ids(target) + [end]``: prompt and target are tokenized
apart, exactly as the engine sees them (it encodes the prompt, then generates the target's tokens),
and ``end`` (``<|endoftext|>`` where the vocabulary has it) teaches the model to stop after the
body. Labels are -100 on the prompt (and on padding), so only body tokens are learned.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

IGNORE = -100


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]

    @property
    def body_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def read_pairs(corpus: Path, split: str) -> list[tuple[str, str]]:
    """(prompt, target) of every record of ``corpus/<split>.jsonl``, in file order."""
    out = []
    with open(corpus / f"{split}.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            out.append((rec["prompt"], rec["target"]))
    return out


def end_token(tokenizer: Tokenizer, eos_ids: list[int]) -> int:
    """The id that ends a body: ``<|endoftext|>`` if present (a document end, which the engine stops
    on), else the model's first eos."""
    eot = tokenizer.token_to_id("<|endoftext|>")
    if eot is not None:
        return int(eot)
    if not eos_ids:
        raise ValueError("the model has no eos token to end a body with")
    return eos_ids[0]


def encode_pair(tokenizer: Tokenizer, prompt: str, target: str, end: int, seq_len: int,
                bos: int | None = None) -> Example:
    """One example no longer than ``seq_len``: a long prompt keeps its tail (the signature and
    docstring end, next to the body), but never more than needed to leave half the window to the
    body; a long body is cut at the end (then it has no ``end`` token)."""
    p = tokenizer.encode(prompt, add_special_tokens=False).ids
    t = [*tokenizer.encode(target, add_special_tokens=False).ids, end]
    head = [bos] if bos is not None else []
    room = seq_len - len(head)
    keep_prompt = min(len(p), max(room - len(t), room // 2))
    p = p[len(p) - keep_prompt:]
    t = t[: room - len(p)]
    ids = head + p + t
    return Example(ids, [IGNORE] * (len(head) + len(p)) + t)


def collate(batch: list[Example], pad: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors; padding is masked out of attention and loss."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def batch_indices(n: int, batch_size: int, seed: int, start_step: int = 0) -> Iterator[list[int]]:
    """Batches of a fresh seeded shuffle per epoch; step ``k`` always gets the same batch, so a
    resumed run sees exactly what an uninterrupted one would."""
    per_epoch = max(1, n // batch_size)
    step = start_step
    while True:
        epoch, k = divmod(step, per_epoch)
        order = list(range(n))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        yield order[k * batch_size:(k + 1) * batch_size]
        step += 1
