"""The char-RNN engine on a tiny package trained in a fixture: dispatch by kind, greedy parity with
the reference decoder, seeded sampling, batches of candidates, stop rules and cancellation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from codegen_lsp.engine import Cancelled, GenerationConfig, load_engine
from codegen_lsp.engine.char_rnn import CHARS_PER_TOKEN, CharRNNEngine
from codegen_lsp.modelpkg import IONameMismatch
from tests.fixture_corpus import write_corpus

FUNCS = [
    ('def add(a, b):\n    """Return the sum of a and b."""', "\n    total = a + b\n    return total"),
    ('def sub(a, b):\n    """Return a minus b, as a number."""', "\n    diff = a - b\n    return diff"),
    ('def mul(a, b):\n    """Return the product of a and b."""', "\n    prod = a * b\n    return prod"),
]
PROMPT = FUNCS[0][0]
NO_GUARDS = {"max_line_repeats": 0, "max_token_cycle_repeats": 0}


@pytest.fixture(scope="module")
def char_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A char-rnn package from a few seconds of training on three functions."""
    from models.char_rnn.export import build_package
    from models.char_rnn.train import TrainConfig, train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("char-rnn-engine")
    corpus = write_corpus(root, FUNCS, {"train": 240, "valid": 3}, {"package": "fixture"})
    cfg = TrainConfig(epochs=10, batch_size=8, seq_len=48, hidden_size=32, num_layers=2, lr=1e-2, log_every=1000)
    try:
        train(corpus, root / "tiny.pt", cfg, progress=False)
        return build_package(root / "tiny.pt", root / "pkg", name="tiny-char-rnn")
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def engine(char_pkg: Path) -> CharRNNEngine:
    eng = load_engine(char_pkg, device="cpu", threads=1)
    assert isinstance(eng, CharRNNEngine)
    return eng


def test_dispatch_and_info(engine: CharRNNEngine) -> None:
    assert engine.manifest.kind == "char-rnn"
    assert engine.info["graph"] == "char-rnn" and engine.info["provider"] == "cpu"
    assert engine.count_tokens(PROMPT) == len(PROMPT)  # one id per character
    assert engine.encode("a\u00e9") == [engine.symbols.index("a"), 0]  # unknown character -> id 0


def test_greedy_matches_reference_decoder(engine: CharRNNEngine, char_pkg: Path) -> None:
    import onnxruntime as ort

    from models.char_rnn.infer import greedy_ids

    m = engine.manifest
    cfg = GenerationConfig(max_new_tokens=10, **NO_GUARDS)
    first = engine.generate(PROMPT, cfg)
    again = engine.generate(PROMPT, cfg)
    g = first.generations[0]
    assert g.token_ids == again.generations[0].token_ids and g.text == again.generations[0].text
    sess = ort.InferenceSession(str(char_pkg / m.variants[0].graph), providers=["CPUExecutionProvider"])
    ref = greedy_ids(sess, engine.encode(PROMPT), 10 * CHARS_PER_TOKEN, m.num_layers, m.hidden_size,
                     m.special_tokens.eos[0])
    assert g.token_ids == [i for i in ref if i not in m.special_tokens.eos]
    assert g.text.startswith("\n    ")  # it learned the body's indentation
    assert first.prompt_tokens == len(PROMPT) and first.decode_tokens == len(g.token_ids) - 1 + (g.finish_reason == "eos")


def test_candidates_decode_as_one_batch(engine: CharRNNEngine) -> None:
    one = engine.generate(PROMPT, GenerationConfig(max_new_tokens=8, **NO_GUARDS)).generations[0]
    three = engine.generate(PROMPT, GenerationConfig(max_new_tokens=8, num_candidates=3, temperature=1e-4,
                                                     seed=0, **NO_GUARDS))
    assert [g.token_ids for g in three.generations] == [one.token_ids] * 3  # the first is greedy, the rest near it
    assert len(engine.generate(PROMPT, GenerationConfig(max_new_tokens=8, num_candidates=3)).generations) == 1


def test_seeded_sampling_is_reproducible(engine: CharRNNEngine) -> None:
    def run(seed: int) -> list[str]:
        cfg = GenerationConfig(max_new_tokens=12, num_candidates=3, temperature=1.5, seed=seed, **NO_GUARDS)
        return [g.text for g in engine.generate(PROMPT, cfg).generations]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_on_line_false_stops_the_candidate(engine: CharRNNEngine) -> None:
    seen: list[str] = []

    def on_line(index: int, text: str) -> bool:
        seen.append(text)
        return False

    g = engine.generate(PROMPT, GenerationConfig(max_new_tokens=20, **NO_GUARDS), on_line=on_line).generations[0]
    assert g.finish_reason == "stop" and seen == [g.text] and g.text.endswith("\n")


def test_length_limit_counts_characters(engine: CharRNNEngine) -> None:
    g = engine.generate(PROMPT, GenerationConfig(max_new_tokens=2, **NO_GUARDS)).generations[0]
    assert g.finish_reason in ("length", "eos")
    assert len(g.token_ids) <= 2 * CHARS_PER_TOKEN


class _CancelAfter:
    """is_set() turns true on its n-th call: cancels part-way without threads."""

    def __init__(self, n: int) -> None:
        self.calls, self.n = 0, n

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


def test_cancellation_returns_the_partial_result(engine: CharRNNEngine) -> None:
    with pytest.raises(Cancelled) as before:
        engine.generate(PROMPT, GenerationConfig(max_new_tokens=20), cancel=_CancelAfter(1))
    assert before.value.partial is None
    with pytest.raises(Cancelled) as during:
        engine.generate(PROMPT, GenerationConfig(max_new_tokens=20, num_candidates=2, **NO_GUARDS),
                        cancel=_CancelAfter(4))
    partial = during.value.partial
    assert partial is not None
    assert all(g.finish_reason == "cancelled" and len(g.token_ids) == 3 for g in partial.generations)


def test_state_names_are_checked(char_pkg: Path, tmp_path: Path) -> None:
    broken = tmp_path / "pkg"
    shutil.copytree(char_pkg, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["extra"]["state"]["inputs"] = ["h_in", "c_in"]
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IONameMismatch, match="h_in"):
        load_engine(broken, device="cpu", threads=1)


def test_bench_measures_a_char_rnn_package(char_pkg: Path) -> None:
    """`codegen-lsp bench` goes through the engine interface only, so every kind is measurable."""
    import io

    from codegen_lsp.engine.bench import run_bench

    report = io.StringIO()
    res = run_bench(char_pkg, threads=1, max_new_tokens=4, prompts=[PROMPT], baselines=True, out=report)
    run = res["engine"]["runs"][0]
    assert run["decode_tok_s"] > 0 and run["prompt_tokens"] == len(PROMPT)
    assert set(res) == {"info", "engine"}  # the decoder-LM baselines do not apply to this kind
    assert "tiny-char-rnn" in report.getvalue()

