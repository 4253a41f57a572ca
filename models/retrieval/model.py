"""Dual encoders for code search (Husain et al. 2019, "CodeSearchNet Challenge", section 4): one
encoder for the docstring query and a separate one for the code, each mapping a token sequence to a
vector; a dot product scores a pair.

``nbow``: neural bag of words, token embeddings pooled by a learned weighted mean (CodeSearchNet's
``weighted_mean``: weight = sigmoid(w . e) per token). ``rnn``: token embeddings -> bidirectional GRU
-> the same weighted-mean pooling over the GRU states.

The two encoders have separate weights, as in CodeSearchNet, but by default the code encoder's token
embeddings start as a copy of the query encoder's: a word of the docstring then already points the
same way as the same word in an identifier, the lexical match BM25 relies on. CodeSearchNet had ~400k
Python pairs to learn that alignment from; our corpus has 20k, and with independent random starts
NBoW reached half of BM25's MRR before overfitting (docs/retrieval.md).

Both end with L2 normalisation: the runtime stores unit vectors and ranks by their dot product, so
training scores pairs the same way, with a learned temperature (``logit_scale``) in the softmax.
Padding never changes a vector: pooling is masked, and the backward GRU reads each sequence reversed
within its own length (a gather), so padding always trails what either direction reads. That keeps a
text's vector independent of its batch, and the graphs free of packed sequences.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.retrieval.tokenizer import PAD_ID


@dataclass
class RetrievalConfig:
    """Shape of both encoders (query and code have the same shape, not the same weights)."""

    arch: str
    """``nbow`` or ``rnn``."""
    vocab_size: int
    embed_dim: int = 128
    hidden_size: int = 64
    """GRU units per direction (``rnn``); the vector is then 2 * hidden_size wide."""
    num_layers: int = 1
    """Stacked bidirectional GRU layers (``rnn``)."""
    dropout: float = 0.1
    shared_init: bool = True
    """Start the code encoder's token embeddings as a copy of the query encoder's (then trained apart)."""

    @property
    def output_dim(self) -> int:
        return self.embed_dim if self.arch == "nbow" else 2 * self.hidden_size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def weighted_mean(states: torch.Tensor, scorer: nn.Linear, mask: torch.Tensor) -> torch.Tensor:
    """states [B, T, D], mask [B, T] float -> [B, D]: sum_t w_t s_t / sum_t w_t, w_t = sigmoid(scorer(s_t))."""
    w = torch.sigmoid(scorer(states)).squeeze(-1) * mask  # [B, T]
    return (w.unsqueeze(-1) * states).sum(1) / (w.sum(1, keepdim=True) + 1e-6)


def token_embedding(cfg: RetrievalConfig) -> nn.Embedding:
    """Embeddings start small (std 0.1, not 1): the vectors are normalised, so a step of Adam moves a
    direction by lr / scale; with std 1 the loss stayed at chance for the first epochs."""
    embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=PAD_ID)
    nn.init.normal_(embed.weight, std=0.1)
    with torch.no_grad():
        embed.weight[PAD_ID].zero_()
    return embed


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x [B, T, D], lengths [B] -> each row's first ``length`` positions reversed, padding left where
    it is. Its own inverse."""
    t = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # [1, T]
    n = lengths.unsqueeze(1)  # [B, 1]
    idx = torch.where(t < n, n - 1 - t, t)  # [B, T]
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[2]))


class NBoWEncoder(nn.Module):
    def __init__(self, cfg: RetrievalConfig) -> None:
        super().__init__()
        self.embed = token_embedding(cfg)
        self.scorer = nn.Linear(cfg.embed_dim, 1)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        e = self.dropout(self.embed(input_ids))  # [B, T, E]
        return weighted_mean(e, self.scorer, mask)  # [B, E]


class BiGRUEncoder(nn.Module):
    def __init__(self, cfg: RetrievalConfig) -> None:
        super().__init__()
        self.embed = token_embedding(cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fwd = nn.ModuleList()
        self.bwd = nn.ModuleList()
        for i in range(cfg.num_layers):
            d_in = cfg.embed_dim if i == 0 else 2 * cfg.hidden_size
            self.fwd.append(nn.GRU(d_in, cfg.hidden_size, batch_first=True))
            self.bwd.append(nn.GRU(d_in, cfg.hidden_size, batch_first=True))
        self.scorer = nn.Linear(2 * cfg.hidden_size, 1)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1).to(torch.int64)  # [B]
        x = self.dropout(self.embed(input_ids))  # [B, T, E]
        for fwd, bwd in zip(self.fwd, self.bwd, strict=True):
            f, _ = fwd(x)  # [B, T, H]; positions < length never see the trailing padding
            b, _ = bwd(reverse_within_length(x, lengths))
            x = torch.cat([f, reverse_within_length(b, lengths)], dim=-1)  # [B, T, 2H]
        return weighted_mean(self.dropout(x), self.scorer, mask)  # [B, 2H]


class DualEncoder(nn.Module):
    """``query_encoder`` for docstrings, ``code_encoder`` for code; ``encode`` returns unit vectors."""

    def __init__(self, cfg: RetrievalConfig) -> None:
        super().__init__()
        self.cfg = cfg
        make = {"nbow": NBoWEncoder, "rnn": BiGRUEncoder}[cfg.arch]
        self.query_encoder = make(cfg)
        self.code_encoder = make(cfg)
        if cfg.shared_init:
            with torch.no_grad():
                self.code_encoder.embed.weight.copy_(self.query_encoder.embed.weight)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(20.0)))

    def encode(self, which: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids, attention_mask [B, T] int64 -> [B, d] float32, L2-normalised (zero for an empty text)."""
        enc = self.query_encoder if which == "query" else self.code_encoder
        return F.normalize(enc(input_ids, attention_mask.to(torch.float32)), dim=-1, eps=1e-12)

    def loss(self, q_ids: torch.Tensor, q_mask: torch.Tensor, c_ids: torch.Tensor, c_mask: torch.Tensor) -> torch.Tensor:
        """CodeSearchNet equation 1: for query i, a softmax over its dot products with every code of
        the batch, the i-th being the right one (the other codes are the negatives)."""
        q = self.encode("query", q_ids, q_mask)  # [B, d]
        c = self.encode("code", c_ids, c_mask)  # [B, d]
        logits = self.logit_scale.clamp(max=math.log(100.0)).exp() * q @ c.T  # [B, B]
        return F.cross_entropy(logits, torch.arange(len(q), device=q.device))


class EncoderGraph(nn.Module):
    """One side of the model as an exportable module: (input_ids, attention_mask) -> embedding."""

    def __init__(self, model: DualEncoder, which: str) -> None:
        super().__init__()
        self.model = model
        self.which = which

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.encode(self.which, input_ids, attention_mask)


def pad_batch(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask [B, max(1, longest)] int64, as the runtime engine builds them."""
    width = max(1, max((len(s) for s in seqs), default=1))
    ids = torch.full((len(seqs), width), PAD_ID, dtype=torch.int64)
    mask = torch.zeros((len(seqs), width), dtype=torch.int64)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.int64)
        mask[i, :len(s)] = 1
    return ids, mask


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
