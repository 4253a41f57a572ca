"""Engine.generate on real tiny packages, both graph styles (standard growing past, fused GQA)."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from codegen_lsp.engine import Cancelled, Engine, EngineOptions, GenerationConfig, load_engine
from codegen_lsp.engine.providers import ProviderChoice
from codegen_lsp.modelpkg import load_package

from .conftest import FUSED

VARIANTS = ["fp32", FUSED]
PROMPT = 'def add(a, b):\n    """Return a + b."""'
GREEDY = GenerationConfig(max_new_tokens=24, max_line_repeats=0, max_token_cycle_repeats=0)
# Tiny random models have very peaked logits; a high temperature makes sampling actually vary.
SAMPLED = replace(GREEDY, temperature=4.0, seed=0)


@pytest.fixture(scope="module", params=VARIANTS)
def engine(request: pytest.FixtureRequest, tiny_pkg: Path) -> Engine:
    return load_engine(tiny_pkg, device="cpu", variant=request.param)


def test_info_names_the_graph_style(engine: Engine) -> None:
    info = engine.info
    assert info["provider"] == "cpu" and info["model"] == "tiny-random-llama"
    assert info["graph"] == ("shared-buffer" if info["variant"] == FUSED else "growing")
    assert engine.count_tokens("def f():") == len(engine.tokenizer.encode("def f():", add_special_tokens=False).ids)


def test_greedy_is_deterministic(engine: Engine) -> None:
    a = engine.generate(PROMPT, GREEDY)
    b = engine.generate(PROMPT, GREEDY)
    assert a.generations[0].token_ids == b.generations[0].token_ids
    assert a.generations[0].text == b.generations[0].text
    assert a.prompt_tokens > 0 and a.time_to_first_token_s > 0


def test_seeded_sampling_reproducible_and_seed_dependent(engine: Engine) -> None:
    def run(seed: int) -> list[list[int]]:
        cfg = replace(SAMPLED, top_p=0.95, top_k=50, seed=seed, num_candidates=2)
        return [g.token_ids for g in engine.generate(PROMPT, cfg).generations]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_first_candidate_is_greedy_and_greedy_is_decoded_once(engine: Engine) -> None:
    prompts = [PROMPT, "import os\n", "class Stack:"]
    for p in prompts:
        single = engine.generate(p, GREEDY).generations[0]
        batch = engine.generate(p, replace(SAMPLED, num_candidates=3, seed=3)).generations
        assert len(batch) == 3 and batch[0].token_ids == single.token_ids  # row 0 of a sampled batch
        assert batch[0].finish_reason == single.finish_reason
        assert batch[0].score == pytest.approx(single.score, abs=1e-4)
        greedy3 = engine.generate(p, replace(GREEDY, num_candidates=3))
        assert [g.token_ids for g in greedy3.generations] == [single.token_ids]  # identical: decoded once


def test_max_tokens_stops_with_length(engine: Engine) -> None:
    g = engine.generate("import os\n", replace(GREEDY, max_new_tokens=5)).generations[0]
    assert (len(g.token_ids), g.finish_reason) in [(5, "length")] or g.finish_reason == "eos"


def test_eos_stops_and_is_excluded(tiny_pkg: Path) -> None:
    pkg = load_package(tiny_pkg)
    base = Engine(pkg, ProviderChoice("cpu", "test"), EngineOptions(variant=FUSED))
    two = replace(SAMPLED, num_candidates=2)  # candidate 0 is greedy; candidate 1 is sampled
    ids = base.generate("class Stack:", two).generations[1].token_ids
    k = next(i for i in range(2, len(ids)) if ids[i] not in ids[:i])
    tokens = replace(pkg.manifest.special_tokens, eos=[ids[k]])
    custom = replace(pkg, manifest=replace(pkg.manifest, special_tokens=tokens))
    g = Engine(custom, ProviderChoice("cpu", "test"), EngineOptions(variant=FUSED)).generate("class Stack:", two).generations[1]
    assert g.finish_reason == "eos" and g.token_ids == ids[:k]


def _prompt_with_newline(engine: Engine) -> tuple[str, list[int]]:
    detok_newline = [p for p in ("import os\n", "class Stack:", PROMPT, "x = 1\n", "for i in range(3):")]
    for p in detok_newline:
        ids = engine.generate(p, replace(GREEDY, max_new_tokens=100)).generations[0].token_ids
        if any("\n" in engine.tokenizer.decode([t]) for t in ids):
            return p, ids
    raise AssertionError("no prompt gives a newline")


def test_on_line_false_stops_candidate(engine: Engine) -> None:
    prompt, ids = _prompt_with_newline(engine)
    calls: list[tuple[int, str]] = []

    def on_line(i: int, text: str) -> bool:
        calls.append((i, text))
        return False

    # Near-zero temperature: both candidates follow the greedy path, as two rows of one batch.
    cfg = replace(SAMPLED, temperature=1e-4, seed=0, max_new_tokens=100, num_candidates=2)
    gens = engine.generate(prompt, cfg, on_line=on_line).generations
    first_nl = next(i for i, t in enumerate(ids) if "\n" in engine.tokenizer.decode([t]))
    for g in gens:
        assert g.finish_reason == "stop"
        assert g.token_ids == ids[: first_nl + 1]
        assert "\n" in g.text
    assert sorted(i for i, _ in calls) == [0, 1]
    assert calls[0][1] == gens[0].text


def test_time_budget(engine: Engine) -> None:
    g = engine.generate(PROMPT, replace(GREEDY, max_new_tokens=100, time_budget_s=0.0)).generations[0]
    assert g.finish_reason == "time" and len(g.token_ids) <= 1


class CountingCancel:
    """Set after ``after`` checks: a caller-side flag, like a threading.Event set mid-decode."""

    def __init__(self, after: int) -> None:
        self.after, self.checks = after, 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks > self.after


def test_cancel_mid_decode_stops_within_one_step(engine: Engine) -> None:
    cancel = CountingCancel(after=6)  # 1 check before prefill, then 1 per step
    with pytest.raises(Cancelled) as info:
        engine.generate(PROMPT, replace(GREEDY, max_new_tokens=100, num_candidates=2), cancel=cancel)
    partial = info.value.partial
    assert partial is not None and cancel.checks == 7
    for g in partial.generations:
        assert g.finish_reason == "cancelled" and len(g.token_ids) == 6


def test_cancel_before_start(engine: Engine) -> None:
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        engine.generate(PROMPT, GREEDY, cancel=ev)


def test_cancel_from_another_thread(engine: Engine) -> None:
    ev = threading.Event()
    seen = threading.Event()

    def on_line(_i: int, _text: str) -> bool:
        seen.set()
        ev.set()  # what a server thread does when a newer request arrives
        return True

    prompt, _ = _prompt_with_newline(engine)
    with pytest.raises(Cancelled):
        engine.generate(prompt, replace(GREEDY, max_new_tokens=200), on_line=on_line, cancel=ev)
    assert seen.is_set()


@pytest.mark.parametrize("variant", VARIANTS)
def test_prefix_cache_same_output_fewer_prefilled_tokens(tiny_pkg: Path, variant: str) -> None:
    cached = load_engine(tiny_pkg, device="cpu", variant=variant)
    plain = load_engine(tiny_pkg, device="cpu", variant=variant, prefix_cache_entries=0)
    first = PROMPT + "\n    total = a\n"
    second = first + "    total = total + b\n    return"
    for e in (cached, plain):
        e.generate(first, GREEDY)
    a = cached.generate(second, replace(GREEDY, num_candidates=2))
    b = plain.generate(second, replace(GREEDY, num_candidates=2))
    assert [g.token_ids for g in a.generations] == [g.token_ids for g in b.generations]
    assert b.prefix_cache_hit_tokens == 0 and b.prefilled_tokens == b.prompt_tokens
    assert a.prefix_cache_hit_tokens >= cached.count_tokens(first) - 2
    assert a.prefilled_tokens == a.prompt_tokens - a.prefix_cache_hit_tokens < b.prefilled_tokens
    # The identical prompt again: everything but the last token comes from the cache.
    c = cached.generate(second, GREEDY)
    assert c.prefilled_tokens == 1 and c.generations[0].token_ids == b.generations[0].token_ids


def test_one_generate_at_a_time(engine: Engine) -> None:
    want = engine.generate(PROMPT, GREEDY).generations[0].token_ids
    results: list[list[int]] = []

    def worker() -> None:
        results.append(engine.generate(PROMPT, GREEDY).generations[0].token_ids)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [want] * 3


def test_long_prompt_is_trimmed_to_context(engine: Engine) -> None:
    r = engine.generate("x = 1\n" * 400, replace(GREEDY, max_new_tokens=8))
    assert r.trimmed_tokens > 0
    assert r.prompt_tokens + 8 <= engine.manifest.context_length
