"""Long prompts are prefilled in chunks: cancel and the time budget are honoured between chunks, the
result is the same as one call, and the measured speed sizes interactive prompts."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen_lsp.engine import Cancelled, GenerationConfig, load_engine
from codegen_lsp.engine.generate import PREFILL_CHUNK
from tests.engine.test_generate import CountingCancel
from tests.scripted_rules import RULES

LONG = "# " + "x" * 1000 + "\n" + RULES[0].after  # ~1,050 byte tokens: five chunks


def test_chunked_prefill_gives_the_same_text(scripted_pkg: Path) -> None:
    engine = load_engine(scripted_pkg, device="cpu", prefix_cache_entries=0)
    out = engine.generate(LONG, GenerationConfig(max_new_tokens=64))
    assert out.prompt_tokens > 4 * PREFILL_CHUNK and out.prefilled_tokens == out.prompt_tokens
    assert out.generations[0].text == RULES[0].write[0]
    assert engine.prefill_tok_s is not None and engine.prompt_budget(4.0) >= 128


def test_cancel_is_honoured_between_prefill_chunks(scripted_pkg: Path) -> None:
    engine = load_engine(scripted_pkg, device="cpu", prefix_cache_entries=0)
    cancel = CountingCancel(after=1)  # the check before prefill passes; the one before chunk 2 cancels
    with pytest.raises(Cancelled):
        engine.generate(LONG, GenerationConfig(max_new_tokens=64), cancel=cancel)
    assert cancel.checks == 2


def test_a_spent_time_budget_stops_prefill_after_one_chunk(scripted_pkg: Path) -> None:
    engine = load_engine(scripted_pkg, device="cpu", prefix_cache_entries=0)
    out = engine.generate(LONG, GenerationConfig(max_new_tokens=64, time_budget_s=0.0))
    assert out.prefilled_tokens == PREFILL_CHUNK
    assert [(g.text, g.finish_reason) for g in out.generations] == [("", "time")]
