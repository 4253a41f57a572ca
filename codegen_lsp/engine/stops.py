"""Per-candidate stop rules that look at the generated text: incremental detokenization and the
repetition guard (line blocks repeating back-to-back, short token cycles)."""

from __future__ import annotations

from tokenizers import Tokenizer

from .config import GenerationConfig

_CONTEXT_TOKENS = 4
_MAX_CYCLE = 8
_MIN_CYCLE_SPAN = 16


class Detokenizer:
    """Decodes a candidate's tokens to text correctly for every tokenizer family.

    Decoding the continuation alone can drop a leading space (Metaspace/SentencePiece) or split a
    multi-byte character; so it decodes a few prompt tokens plus the continuation and removes the
    prompt part, and holds back a trailing U+FFFD (an incomplete UTF-8 sequence) until it completes.
    """

    def __init__(self, tokenizer: Tokenizer, prompt_ids: list[int]) -> None:
        self.tokenizer = tokenizer
        self.context = list(prompt_ids[-_CONTEXT_TOKENS:])
        self._context_text = tokenizer.decode(self.context, skip_special_tokens=False) if self.context else ""
        self._newline: dict[int, bool] = {}

    def text(self, ids: list[int], final: bool = False) -> str:
        full = self.tokenizer.decode(self.context + list(ids), skip_special_tokens=False)
        if full.startswith(self._context_text):
            out = full[len(self._context_text) :]
        else:  # a merge across the boundary changed the context's text: fall back to the ids alone
            out = self.tokenizer.decode(list(ids), skip_special_tokens=False)
        if not final:
            out = out.rstrip("\ufffd")
        return out

    def has_newline(self, token: int) -> bool:
        """Whether the token's text contains a newline (cached per id)."""
        hit = self._newline.get(token)
        if hit is None:
            hit = "\n" in self.tokenizer.decode([token], skip_special_tokens=False)
            self._newline[token] = hit
        return hit


def repeated_line_cut(text: str, max_repeats: int, block_lines: int) -> int | None:
    """If the complete non-blank lines of ``text`` end with ``max_repeats`` + 1 back-to-back copies
    of a block of 1..block_lines lines, the offset just after the first copy (where to cut), else None."""
    if max_repeats <= 0:
        return None
    lines = text.split("\n")[:-1]  # complete lines only
    # Positions of complete non-blank lines, with their end offsets in ``text``.
    ends: list[int] = []
    keys: list[str] = []
    offset = 0
    for line in lines:
        offset += len(line) + 1
        if line.strip():
            keys.append(line.rstrip())
            ends.append(offset)
    copies = max_repeats + 1
    for b in range(1, block_lines + 1):
        need = b * copies
        if len(keys) < need:
            break
        tail = keys[-need:]
        block = tail[-b:]
        if all(tail[i * b : (i + 1) * b] == block for i in range(copies)):
            first_copy_end = len(keys) - need + b - 1
            return ends[first_copy_end]
    return None


def token_cycle(ids: list[int], min_repeats: int) -> bool:
    """True when ``ids`` ends with a cycle of 1..8 tokens repeated ``min_repeats`` times in a row
    and spanning at least 16 tokens."""
    if min_repeats <= 0:
        return False
    for period in range(1, _MAX_CYCLE + 1):
        span = max(period * min_repeats, _MIN_CYCLE_SPAN)
        if len(ids) < span:
            continue
        tail = ids[-span:]
        if all(tail[i] == tail[i - period] for i in range(period, span)):
            return True
    return False


class RepetitionGuard:
    """Applies the GenerationConfig repetition limits to one candidate."""

    def __init__(self, config: GenerationConfig) -> None:
        self.config = config

    def cut_after_line(self, text: str) -> int | None:
        return repeated_line_cut(text, self.config.max_line_repeats, self.config.repeat_block_lines)

    def cycling(self, ids: list[int]) -> bool:
        return token_cycle(ids, self.config.max_token_cycle_repeats)
