"""Corpus records -> fixed-length id tensors: NL (the prompt's last ``encoder_length`` tokens, right
padded with a mask) and code (the target's first ``target_length`` tokens, pad-filled)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

from models.codefusion.tokenizer import MASK_ID, PAD_ID, encode


def read_records(corpus: Path, split: str, limit: int | None = None, seed: int = 0) -> list[dict[str, str]]:
    """``prompt``/``target`` of a split, shuffled with ``seed`` when ``limit`` takes a sample."""
    with open(corpus / f"{split}.jsonl", encoding="utf-8") as fh:
        recs = [{"prompt": r["prompt"], "target": r["target"]} for r in map(json.loads, fh)]
    if limit is not None and limit < len(recs):
        random.Random(seed).shuffle(recs)
        recs = recs[:limit]
    return recs


def nl_ids(tok: Tokenizer, prompt: str, length: int) -> list[int]:
    """The prompt's last ``length`` tokens: E sees the end of the docstring, as the engine feeds it."""
    return encode(tok, prompt)[-length:]


def code_ids(tok: Tokenizer, target: str, length: int) -> list[int]:
    ids = encode(tok, target)[:length]
    return ids + [PAD_ID] * (length - len(ids))


@dataclass
class Tensors:
    nl: torch.Tensor
    """[N, S] int64, padded with PAD_ID after the tokens."""
    nl_mask: torch.Tensor
    """[N, S] float32, 1 on tokens."""
    code: torch.Tensor
    """[N, Lc] int64, PAD_ID after the body."""

    def __len__(self) -> int:
        return self.code.shape[0]


def tensors(tok: Tokenizer, records: list[dict[str, str]], enc_len: int, code_len: int) -> Tensors:
    nl = torch.full((len(records), enc_len), PAD_ID, dtype=torch.int64)
    mask = torch.zeros((len(records), enc_len), dtype=torch.float32)
    code = torch.empty((len(records), code_len), dtype=torch.int64)
    prompts = tok.encode_batch([r["prompt"] for r in records], add_special_tokens=False)
    targets = tok.encode_batch([r["target"] for r in records], add_special_tokens=False)
    for i, (p, t) in enumerate(zip(prompts, targets, strict=True)):
        ids = p.ids[-enc_len:] or [PAD_ID]
        nl[i, : len(ids)] = torch.tensor(ids)
        mask[i, : len(ids)] = 1.0
        body = t.ids[:code_len]
        code[i] = torch.tensor(body + [PAD_ID] * (code_len - len(body)))
    return Tensors(nl, mask, code)


def cpd_input(code: torch.Tensor, word_ids: torch.Tensor, rate: float, enc_len: int,
              gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Continuous paragraph denoising: E sees the code with a share ``rate`` of its identifier and
    keyword tokens replaced by ``<mask>``. code [B, Lc] -> (ids [B, S], mask [B, S])."""
    is_word = torch.isin(code, word_ids)
    drop = is_word & (torch.rand(code.shape, generator=gen) < rate)
    masked = torch.where(drop, torch.full_like(code, MASK_ID), code)
    b, lc = code.shape
    ids = torch.full((b, enc_len), PAD_ID, dtype=torch.int64)
    n = min(lc, enc_len)
    ids[:, :n] = masked[:, :n]
    mask = (code[:, :n] != PAD_ID).to(torch.float32)
    full = torch.zeros((b, enc_len), dtype=torch.float32)
    full[:, :n] = mask
    full[:, 0] = 1.0  # an all-pad row would give attention nothing to look at
    return ids, full
