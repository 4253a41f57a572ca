"""Corpus split -> one id stream -> char-rnn style batches (B parallel strips, truncated BPTT)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from models.char_rnn.alphabet import EOS_ID, Alphabet
from models.prompt_format import PromptTarget, training_text


def split_texts(corpus: Path, split: str, seed: int = 0, max_chars: int | None = None) -> list[str]:
    """Training texts (prompt + target) of one split, shuffled with ``seed`` so that a ``max_chars``
    prefix samples every package rather than the alphabetically first ones."""
    texts = []
    with open(corpus / f"{split}.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            texts.append(training_text(PromptTarget(rec["prompt"], rec["target"])))
    random.Random(seed).shuffle(texts)
    if max_chars is not None:
        total, keep = 0, 0
        for keep, t in enumerate(texts, 1):  # noqa: B007
            total += len(t) + 1
            if total >= max_chars:
                break
        texts = texts[:keep]
    return texts


def encode_stream(texts: list[str], alphabet: Alphabet) -> np.ndarray:
    """Each function followed by the end-of-text id, so the model learns where a body stops.
    uint8 keeps a large corpus small in memory (the alphabet has at most 256 ids)."""
    ids: list[int] = []
    for t in texts:
        ids.extend(alphabet.encode(t))
        ids.append(EOS_ID)
    return np.asarray(ids, dtype=np.uint8)


def windows(stream: np.ndarray, batch: int, seq_len: int, start: int = 0) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield (index, inputs [B, T], targets [B, T]) windows from window ``start`` on."""
    length = (len(stream) - 1) // batch
    data = torch.from_numpy(stream[: batch * length + 1].astype(np.int64))
    x = data[:-1].view(batch, length)
    y = data[1:].view(batch, length)
    for i, t in enumerate(range(0, length - 1, seq_len)):
        if i >= start:
            yield i, x[:, t : t + seq_len], y[:, t : t + seq_len]


def num_windows(stream: np.ndarray, batch: int, seq_len: int) -> int:
    length = (len(stream) - 1) // batch
    return len(range(0, length - 1, seq_len))
