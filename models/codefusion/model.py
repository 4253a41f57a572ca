"""CodeFusion's networks (Singh et al., 2023): encoder E over the NL tokens, denoiser N that predicts
the noise in the code embeddings x_t with cross-attention to E, decoder D that turns the denoised
embeddings into hidden states, head H (linear, argmax per position), and the code embedding L that
gives the training targets x0 = L(y).

Attention is written with plain matmuls so the three exported graphs hold only ops every ONNX
Runtime build runs. Shapes: B batch, S NL length, Lc code (target) length, d model width, V vocab.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.codefusion.config import ModelConfig


class Attention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        # x [B, Tq, d], ctx [B, Tk, d], bias [B, 1, 1, Tk] additive (0 or -1e9) or None
        b, tq, d = x.shape
        h = self.heads
        q = self.q(x).view(b, tq, h, d // h).transpose(1, 2)  # [B, h, Tq, dh]
        k, v = self.kv(ctx).view(b, -1, 2, h, d // h).permute(2, 0, 3, 1, 4)  # each [B, h, Tk, dh]
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d // h)  # [B, h, Tq, Tk]
        if bias is not None:
            att = att + bias
        y = att.softmax(-1) @ v  # [B, h, Tq, dh]
        return self.out(y.transpose(1, 2).reshape(b, tq, d))


class Block(nn.Module):
    """Pre-LN transformer layer: self-attention, optional cross-attention, feed-forward."""

    def __init__(self, cfg: ModelConfig, cross: bool) -> None:
        super().__init__()
        d = cfg.d_model
        self.ln1 = nn.LayerNorm(d)
        self.self_att = Attention(d, cfg.num_heads)
        self.ln2 = nn.LayerNorm(d) if cross else None
        self.cross_att = Attention(d, cfg.num_heads) if cross else None
        self.ln3 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, cfg.ff_size), nn.GELU(), nn.Linear(cfg.ff_size, d))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, self_bias: torch.Tensor | None, ctx: torch.Tensor | None = None,
                ctx_bias: torch.Tensor | None = None) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.drop(self.self_att(h, h, self_bias))
        if self.cross_att is not None and self.ln2 is not None:
            x = x + self.drop(self.cross_att(self.ln2(x), ctx, ctx_bias))
        return x + self.drop(self.ff(self.ln3(x)))


def mask_bias(mask: torch.Tensor) -> torch.Tensor:
    """[B, T] 1/0 mask -> [B, 1, 1, T] additive bias."""
    return ((1.0 - mask.to(torch.float32)) * -1e9)[:, None, None, :]


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the (float) timestep: t [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(10000.0) / half))
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class Encoder(nn.Module):
    """E: NL token ids [B, S] (+ mask) -> states [B, S, d]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.encoder_length, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg, cross=False) for _ in range(cfg.encoder_layers))
        self.ln = nn.LayerNorm(cfg.d_model)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.tok(ids) + self.pos(pos)[None]  # [B, S, d]
        bias = mask_bias(mask)
        for layer in self.layers:
            x = layer(x, bias)
        return self.ln(x)


class Denoiser(nn.Module):
    """N: noisy code embeddings x_t [B, Lc, d], timestep t [B], E's states -> predicted noise [B, Lc, d]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.pos = nn.Embedding(cfg.target_length, d)
        self.time = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.layers = nn.ModuleList(Block(cfg, cross=True) for _ in range(cfg.denoiser_layers))
        self.ln = nn.LayerNorm(d)
        self.out = nn.Linear(d, d)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, enc: torch.Tensor, enc_mask: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(x_t.shape[1], device=x_t.device)
        temb = self.time(timestep_features(t, x_t.shape[-1]))  # [B, d]
        x = x_t + self.pos(pos)[None] + temb[:, None, :]
        bias = mask_bias(enc_mask)
        for layer in self.layers:
            x = layer(x, None, enc, bias)
        return self.out(self.ln(x))


class Decoder(nn.Module):
    """D: denoised embeddings x0 [B, Lc, d], E's states -> hidden states [B, Lc, d]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.pos = nn.Embedding(cfg.target_length, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg, cross=True) for _ in range(cfg.decoder_layers))
        self.ln = nn.LayerNorm(cfg.d_model)

    def forward(self, x0: torch.Tensor, enc: torch.Tensor, enc_mask: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(x0.shape[1], device=x0.device)
        x = x0 + self.pos(pos)[None]
        bias = mask_bias(enc_mask)
        for layer in self.layers:
            x = layer(x, None, enc, bias)
        return self.ln(x)


class CodeFusion(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)  # E
        self.denoiser = Denoiser(cfg)  # N
        self.decoder = Decoder(cfg)  # D
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)  # H
        self.code_embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)  # L
        nn.init.normal_(self.code_embedding.weight, std=1.0)

    def embed_code(self, y: torch.Tensor) -> torch.Tensor:
        """L(y): [B, Lc] ids -> [B, Lc, d], each vector scaled to norm sqrt(d) (unit RMS per element,
        the scale of the Gaussian noise; a free norm would let L shrink towards the trivial x0 = 0)."""
        e = self.code_embedding(y)
        return F.normalize(e, dim=-1) * math.sqrt(self.cfg.d_model)

    def logits(self, x0: torch.Tensor, enc: torch.Tensor, enc_mask: torch.Tensor) -> torch.Tensor:
        """H(D(x0)): [B, Lc, V]."""
        return self.head(self.decoder(x0, enc, enc_mask))


def count_parameters(model: CodeFusion) -> dict[str, int]:
    m = model
    parts: dict[str, nn.Module] = {"encoder": m.encoder, "denoiser": m.denoiser, "decoder": m.decoder,
                                   "head": m.head, "code_embedding": m.code_embedding}
    out = {k: int(sum(p.numel() for p in v.parameters())) for k, v in parts.items()}
    out["total"] = sum(out.values())
    return out
