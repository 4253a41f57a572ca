"""Sampling, detokenization and repetition rules, on their own (real tokenizer, numpy logits)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from codegen_lsp.engine import GenerationConfig
from codegen_lsp.engine.prefix_cache import PrefixCache
from codegen_lsp.engine.sampling import Sampler, log_softmax
from codegen_lsp.engine.stops import Detokenizer, repeated_line_cut, token_cycle


def test_top_k_one_and_tiny_top_p_are_greedy() -> None:
    logits = np.random.default_rng(0).normal(size=(4, 500)).astype(np.float32)
    want = logits.argmax(-1)
    for cfg in (GenerationConfig(temperature=1.0, top_k=1, seed=3), GenerationConfig(temperature=1.0, top_p=1e-6, seed=3)):
        tokens, logp = Sampler(cfg, 4).sample(logits, [[] for _ in range(4)])
        assert (tokens == want).all()
        assert np.allclose(logp, log_softmax(logits)[np.arange(4), want])


def test_top_p_needing_more_than_the_probe_is_exact() -> None:
    logits = np.zeros((2, 1000), dtype=np.float32)  # flat: top-p 0.5 keeps 500 tokens
    seen = set()
    s = Sampler(GenerationConfig(temperature=1.0, top_p=0.5, seed=0), 2)
    for _ in range(400):
        tokens = s.sample(logits, [[], []])[0]
        assert tokens[0] == 0  # row 0 is the greedy candidate (argmax: the first of equals)
        seen.add(int(tokens[1]))
    assert len(seen) > 64 and max(seen) < 500  # stable sort keeps the lowest ids on ties


def test_no_repeat_ngram_and_repetition_penalty() -> None:
    logits = np.full((1, 10), 0.1, dtype=np.float32)
    logits[0, 3] = 5.0
    cfg = GenerationConfig(no_repeat_ngram_size=2)
    s = Sampler(cfg, 1)
    hist = [3, 3]
    s.observe(0, hist)  # bigram (3, 3) seen: 3 after 3 is banned
    assert s.sample(logits, [hist])[0][0] != 3
    pen = Sampler(GenerationConfig(repetition_penalty=100.0), 1)
    assert pen.sample(logits, [[3]])[0][0] != 3


def test_line_repeat_cut() -> None:
    text = "    x = 1\n    y = 2\n    y = 2\n    y = 2\n"
    cut = repeated_line_cut(text, max_repeats=2, block_lines=4)
    assert cut is not None and text[:cut] == "    x = 1\n    y = 2\n"
    block = "    a()\n    b()\n"
    assert repeated_line_cut("def f():\n" + block * 3, 2, 4) == len("def f():\n" + block)
    assert repeated_line_cut(block * 2 + "    a()", 2, 4) is None  # last line incomplete
    assert repeated_line_cut("    y = 2\n\n    y = 2\n\n    y = 2\n", 2, 4) is not None  # blank lines skipped
    assert repeated_line_cut(text, 0, 4) is None


def test_token_cycle() -> None:
    assert token_cycle([1, 2] * 8, 8)
    assert not token_cycle([1, 2] * 7 + [3], 8)
    assert token_cycle([5] * 16, 8) and not token_cycle([5] * 15, 8)
    assert not token_cycle([1, 2] * 8, 0)


def test_detokenizer_multibyte_and_prefix(tiny_pkg: Path) -> None:
    tok = Tokenizer.from_file(str(tiny_pkg / "tokenizer.json"))
    prompt = tok.encode("def f():\n    return", add_special_tokens=False).ids
    text = ' "日本語 🙂 héllo"\n'
    ids = tok.encode(text, add_special_tokens=False).ids
    d = Detokenizer(tok, prompt)
    partial = [d.text(ids[:k]) for k in range(len(ids) + 1)]
    assert all("\ufffd" not in p for p in partial)
    assert all(text.startswith(p) for p in partial)
    assert d.text(ids, final=True) == text
    assert d.has_newline(ids[-1]) or any(d.has_newline(t) for t in ids)


def test_prefix_cache_lru_and_min_length() -> None:
    kv = [(np.zeros((1, 1, 6, 2)), np.zeros((1, 1, 6, 2)))]
    cache = PrefixCache(max_entries=2, min_hit_tokens=2)
    cache.store([1, 2, 3, 4, 5, 6], kv)
    hit = cache.lookup([1, 2, 3, 9])
    assert hit is not None and hit.length == 3 and hit.kv[0][0].shape[2] == 3
    assert cache.lookup([1, 9]) is None  # 1 common token < min_hit_tokens
    hit = cache.lookup([1, 2, 3, 4, 5, 6])
    assert hit is not None and hit.length == 5  # leaves one token to run
    cache.store([7, 7, 7], kv)
    cache.store([8, 8, 8], kv)
    assert len(cache) == 2 and cache.lookup([1, 2, 3, 4]) is None  # evicted


def test_prefix_cache_is_bounded_by_bytes() -> None:
    def kv(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(np.zeros((1, 1, n, 64), np.float32), np.zeros((1, 1, n, 64), np.float32))]  # 512 B per position

    cache = PrefixCache(max_entries=10, max_bytes=5 * 1024)
    for first in (1, 2, 3):
        cache.store([first, 9, 9, 9, 9], kv(4))  # 2 KiB each: only two fit
    assert len(cache) == 2 and cache.nbytes == 4 * 1024
    assert cache.lookup([1, 9, 9, 9, 9, 5]) is None and cache.lookup([3, 9, 9, 9, 9, 5]) is not None
    cache.store([7] * 20, kv(20))  # 10 KiB: larger than the whole bound, not kept
    assert len(cache) == 2
