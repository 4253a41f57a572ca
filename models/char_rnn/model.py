"""The char-RNN model: one-hot characters -> 2-layer LSTM -> linear logits, with greedy generation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class CharRNNConfig:
    """Shape of the network; defaults follow char-rnn (Karpathy 2015)."""

    vocab_size: int
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.0

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


class CharRNN(nn.Module):
    """Stateful LSTM language model over characters. State tensors are [layers, batch, hidden]."""

    def __init__(self, cfg: CharRNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(
            cfg.vocab_size, cfg.hidden_size, cfg.num_layers, batch_first=True, dropout=cfg.dropout
        )
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size)

    def init_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (self.cfg.num_layers, batch, self.cfg.hidden_size)
        return torch.zeros(shape), torch.zeros(shape)

    def forward(
        self, input_ids: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # input_ids [B, T] int64 -> one-hot [B, T, V]: the input encoding of the original char-rnn
        x = F.one_hot(input_ids, self.cfg.vocab_size).to(torch.float32)
        y, (hn, cn) = self.lstm(x, (h0, c0))  # y [B, T, H]
        return self.head(y), hn, cn  # logits [B, T, V]

    @torch.no_grad()
    def greedy(self, prompt_ids: list[int], max_new: int, eos_id: int | None = None) -> list[int]:
        """Argmax continuation of one prompt, feeding back one character at a time."""
        h, c = self.init_state(1)
        logits, h, c = self(torch.tensor([prompt_ids]), h, c)
        out: list[int] = []
        for _ in range(max_new):
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            if nxt == eos_id:
                break
            logits, h, c = self(torch.tensor([[nxt]]), h, c)
        return out
