"""The TRANX-style model: a BiLSTM over the prompt's tokens, an LSTM decoder fed with the previous
action, the previous attentional vector, the parent's attentional vector (parent feeding) and the
frontier field; heads for grammar rules, primitive tokens from a vocabulary, and a pointer that
copies a prompt token (a gate mixes the two)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

MASKED = -1e4
"""Logit of an action the grammar forbids (finite, so that KL terms stay defined)."""


@dataclass
class ModelConfig:
    src_vocab: int
    num_rules: int
    """Constructors + reduce + hole."""
    tok_vocab: int
    num_actions: int
    """Action-embedding rows: rules, tokens, START."""
    num_fields: int
    embed: int = 128
    hidden: int = 256
    action_embed: int = 128
    field_embed: int = 64
    dropout: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.src_vocab, cfg.embed)
        self.lstm = nn.LSTM(cfg.embed, cfg.hidden // 2, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """src [B, S] -> memory [B, S, H]; ``lengths`` packs right-padded rows (training)."""
        x = self.drop(self.embed(src))
        if lengths is None:
            return self.lstm(x)[0]
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])[0]


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        h = cfg.hidden
        self.action_embed = nn.Embedding(cfg.num_actions, cfg.action_embed)
        self.field_embed = nn.Embedding(cfg.num_fields, cfg.field_embed)
        self.cell = nn.LSTMCell(cfg.action_embed + 2 * h + cfg.field_embed, h)
        self.init = nn.Linear(h, h)
        self.att_key = nn.Linear(h, h, bias=False)
        self.copy_key = nn.Linear(h, h, bias=False)
        self.combine = nn.Linear(2 * h, h, bias=False)
        self.rule_head = nn.Linear(h, cfg.num_rules)
        self.tok_head = nn.Linear(h, cfg.tok_vocab)
        self.gate = nn.Linear(h, 1)
        self.drop = nn.Dropout(cfg.dropout)

    def prepare(self, memory: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """memory [B, S, H], mask [B, S] (1 on tokens) -> attention keys, copy keys, h0, c0."""
        mean = (memory * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        h0 = torch.tanh(self.init(mean))
        return self.att_key(memory), self.copy_key(memory), h0, torch.zeros_like(h0)

    def step(self, prev_action: torch.Tensor, prev_att: torch.Tensor, parent_att: torch.Tensor,
             field: torch.Tensor, h: torch.Tensor, c: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor,
             bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One action: ids [B], vectors [B, H], memory/keys [B, S, H], bias [B, S] (0 / MASKED)
        -> h, c, attentional vector [B, H]."""
        x = torch.cat([self.action_embed(prev_action), prev_att, parent_att, self.field_embed(field)], -1)
        h, c = self.cell(x, (h, c))
        scores = torch.einsum("bsh,bh->bs", keys, h)
        if bias is not None:
            scores = scores + bias
        ctx = torch.einsum("bs,bsh->bh", torch.softmax(scores, -1), memory)
        att = self.drop(torch.tanh(self.combine(torch.cat([h, ctx], -1))))
        return h, c, att

    def heads(self, att: torch.Tensor, copy_keys: torch.Tensor,
              bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """att [B, (T,) H] -> rule logits [.., R], log p(generate token) [.., V], log p(copy position) [.., S]."""
        gate = self.gate(att)
        gen = F.logsigmoid(gate) + torch.log_softmax(self.tok_head(att), -1)
        if att.dim() == 2:
            scores = torch.einsum("bh,bsh->bs", att, copy_keys)
        else:
            scores = torch.einsum("bth,bsh->bts", att, copy_keys)
        if bias is not None:
            scores = scores + (bias if att.dim() == 2 else bias[:, None, :])
        return self.rule_head(att), gen, F.logsigmoid(-gate) + torch.log_softmax(scores, -1)


class TreeDecoder(nn.Module):
    """One peer: encoder + decoder for one traversal order."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def teacher_forced(self, src: torch.Tensor, lengths: torch.Tensor, prev: torch.Tensor, field: torch.Tensor,
                       parent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gold actions in: src [B, S], prev/field/parent [B, T] -> rule logits [B, T, R],
        generate log-probs [B, T, V], copy log-probs [B, T, S]. The parent's vector is fed
        detached (a buffer, not a graph through every earlier step)."""
        b, t = prev.shape
        mask = (torch.arange(src.shape[1])[None, :] < lengths[:, None]).float()
        bias = (1.0 - mask) * MASKED
        memory = self.encoder(src, lengths)
        keys, copy_keys, h, c = self.decoder.prepare(memory, mask)
        hidden = h.shape[-1]
        history = torch.zeros(b, t + 1, hidden)  # row 0: the root's "parent"
        att = torch.zeros(b, hidden)
        rows = torch.arange(b)
        outs = []
        for s in range(t):
            parent_att = history[rows, parent[:, s] + 1]
            h, c, att = self.decoder.step(prev[:, s], att, parent_att, field[:, s], h, c, memory, keys, bias)
            history[:, s + 1] = att.detach()
            outs.append(att)
        return self.decoder.heads(torch.stack(outs, 1), copy_keys, bias)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
