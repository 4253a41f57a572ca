"""What ``Engine.generate`` returns, and the exception it raises when cancelled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["eos", "stop", "length", "time", "repetition", "cancelled"]


@dataclass
class Generation:
    """One candidate continuation of the prompt."""

    text: str
    """The decoded continuation (prompt excluded, EOS excluded)."""
    token_ids: list[int]
    score: float
    """Mean log-probability of ``token_ids`` under the model (higher is more confident)."""
    finish_reason: FinishReason
    """``eos`` end-of-sequence token; ``stop`` the on_line callback returned False; ``length``
    max_new_tokens; ``time`` time budget; ``repetition`` the repetition guard; ``cancelled``."""
    timings: dict[str, float] = field(default_factory=dict)
    """``finished_s``: seconds from the start of the call until this candidate ended."""


@dataclass
class GenerationResult:
    """All candidates of one call plus where the time went."""

    generations: list[Generation]
    prompt_tokens: int
    """Tokens in the (possibly left-trimmed) prompt."""
    prefix_cache_hit_tokens: int
    """Prompt tokens whose KV state came from the prefix cache instead of a prefill."""
    time_to_first_token_s: float
    """From the call until the first token was chosen (tokenization + prefill + first sample)."""
    prefill_s: float
    decode_s: float
    decode_tokens: int
    """Tokens produced by decode steps over all candidates (batch rows x steps, finished rows excluded)."""
    prefilled_tokens: int = 0
    """Prompt tokens actually run through the model (prompt_tokens - prefix_cache_hit_tokens)."""
    trimmed_tokens: int = 0
    """Tokens cut from the start of the prompt to fit the context length."""

    @property
    def decode_tokens_per_s(self) -> float:
        return self.decode_tokens / self.decode_s if self.decode_s > 0 else 0.0


class Cancelled(Exception):
    """The request was cancelled; ``partial`` holds what had been generated (finish ``cancelled``)."""

    def __init__(self, partial: GenerationResult | None = None) -> None:
        super().__init__("generation cancelled")
        self.partial = partial
