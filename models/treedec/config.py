"""Named configurations: ``tiny`` (CI, seconds), ``cpu`` (this machine, <= ~15 min per order),
``gpu`` (a larger model for a GPU when one is lent; not run here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class TrainConfig:
    embed: int = 128
    hidden: int = 256
    action_embed: int = 128
    field_embed: int = 64
    dropout: float = 0.2
    src_vocab: int = 5000
    """Word-level source vocabulary (the prompt's def + docstring)."""
    tok_vocab: int = 3000
    """Primitive tokens (identifiers, literals) the generator can write; others only by copying."""
    max_src: int = 64
    max_actions: int = 160
    """Training pairs whose body needs more actions are left out; also the engine's step limit."""
    batch_size: int = 32
    lr: float = 1e-3
    grad_clip: float = 5.0
    kl_weight: float = 0.5
    """lambda of the mutual-learning term (the paper used 0.25-0.75 by dataset)."""
    max_steps: int = 100_000
    max_train_records: int | None = None
    valid_records: int = 200
    eval_every: int = 200
    log_every: int = 25
    checkpoint_seconds: float = 120.0
    seed: int = 0
    device: str = "cpu"


@dataclass
class NamedConfig:
    train: TrainConfig = field(default_factory=TrainConfig)
    note: str = ""


CONFIGS: dict[str, NamedConfig] = {
    "tiny": NamedConfig(TrainConfig(embed=16, hidden=32, action_embed=16, field_embed=8, dropout=0.0, src_vocab=200,
                                    tok_vocab=100, max_src=24, max_actions=60, batch_size=8, lr=3e-3, max_steps=12,
                                    valid_records=4, eval_every=6, log_every=3),
                        "CI: trains in seconds; only shapes, parity and the engine are tested"),
    "cpu": NamedConfig(TrainConfig(), "2 vCPUs, <= ~15 minutes per order"),
    "gpu": NamedConfig(TrainConfig(embed=256, hidden=512, action_embed=128, field_embed=64, dropout=0.3,
                                   src_vocab=20000, tok_vocab=10000, max_src=128, max_actions=320, batch_size=64,
                                   device="cuda"),
                       "for a GPU (not run: no GPU was lent in this session)"),
}


def named(name: str) -> NamedConfig:
    if name not in CONFIGS:
        raise KeyError(f"unknown config '{name}' (have: {', '.join(CONFIGS)})")
    return NamedConfig(TrainConfig(**asdict(CONFIGS[name].train)), CONFIGS[name].note)
