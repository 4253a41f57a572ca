"""Named model and training configurations: ``tiny`` (CI, seconds), ``cpu`` (this machine, <= 60 min),
``paper`` (the paper's sizes, ~75M parameters; needs a GPU)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ModelConfig:
    """Sizes of E (encoder), N (denoiser), D (decoder), H (head) and L (code embedding)."""

    vocab_size: int = 4096
    """BPE vocabulary shared by the NL input and the code (set from the trained tokenizer)."""
    d_model: int = 256
    num_heads: int = 4
    ff_size: int = 1024
    encoder_layers: int = 3
    denoiser_layers: int = 4
    decoder_layers: int = 2
    encoder_length: int = 128
    """NL tokens E reads (the prompt's last ``encoder_length`` tokens)."""
    target_length: int = 128
    """Fixed length of the generated code, pad-filled after the body (paper: 128)."""
    timesteps: int = 1200
    """Diffusion steps T of the square-root schedule (paper: 1200)."""
    x0_clip: float = 4.0
    """Predicted x0 is clipped to [-x0_clip, x0_clip]: code embeddings have unit RMS per element,
    and an epsilon prediction divided by sqrt(alpha_bar) near t = T would otherwise explode."""
    dropout: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainConfig:
    """Optimisation and the three phases: unsupervised code generation, continuous paragraph
    denoising (CPD), fine-tuning on (signature + docstring -> body)."""

    batch_size: int = 32
    lr: float = 5e-4
    warmup_steps: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    phase_steps: tuple[int, int, int] = (1500, 2500, 6000)
    """Most steps of (generation pre-training, CPD pre-training, fine-tuning)."""
    phase_shares: tuple[float, float, float] = (0.15, 0.25, 0.60)
    """Share of ``--max-minutes`` each phase may use."""
    cpd_mask_rate: float = 0.5
    """Share of identifier/keyword tokens masked in E's input during CPD."""
    vocab_size: int = 4096
    """BPE vocabulary trained on the corpus (tokenizer.py)."""
    tokenizer_records: int | None = None
    """Train records the BPE is trained on (None: all)."""
    max_train_records: int | None = None
    valid_records: int = 128
    eval_every: int = 250
    checkpoint_seconds: float = 120.0
    log_every: int = 25
    seed: int = 0


@dataclass
class NamedConfig:
    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    note: str = ""


CONFIGS: dict[str, NamedConfig] = {
    "tiny": NamedConfig(
        ModelConfig(vocab_size=320, d_model=32, num_heads=2, ff_size=64, encoder_layers=1, denoiser_layers=1,
                    decoder_layers=1, encoder_length=32, target_length=24, timesteps=100),
        TrainConfig(batch_size=8, lr=2e-3, warmup_steps=5, phase_steps=(6, 6, 24), vocab_size=320,
                    valid_records=4, eval_every=12, log_every=4),
        "CI: trains in seconds; its output is noise, only shapes, parity and the engine loop are tested",
    ),
    "cpu": NamedConfig(
        ModelConfig(vocab_size=4096, d_model=128, num_heads=4, ff_size=512, encoder_layers=2, denoiser_layers=3,
                    decoder_layers=2, encoder_length=64, target_length=128, timesteps=1200),
        TrainConfig(batch_size=16, lr=1e-3, warmup_steps=50, phase_shares=(0.1, 0.15, 0.75), vocab_size=4096,
                    eval_every=150),
        "2 vCPUs, <= 60 minutes",
    ),
    "paper": NamedConfig(
        ModelConfig(vocab_size=4096, d_model=512, num_heads=8, ff_size=2048, encoder_layers=6, denoiser_layers=10,
                    decoder_layers=6, encoder_length=256, target_length=128, timesteps=1200, dropout=0.1),
        TrainConfig(batch_size=64, lr=5e-4, warmup_steps=2000, phase_steps=(50_000, 50_000, 100_000), vocab_size=4096),
        "the paper's sizes (E d=512 like CodeT5-small's encoder, N 10 layers, D 6 layers); needs a GPU",
    ),
}


def named(name: str) -> NamedConfig:
    if name not in CONFIGS:
        raise KeyError(f"unknown config '{name}' (have: {', '.join(CONFIGS)})")
    c = CONFIGS[name]
    return NamedConfig(ModelConfig(**asdict(c.model)), TrainConfig(**asdict(c.train)), c.note)
