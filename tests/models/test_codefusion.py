"""CodeFusion: a tiny training run, export to a three-graph ``diffusion`` package validated against
PyTorch, and the runtime engine's loop (seeds, batch, steps, cancel, time budget, refusals).

Nothing here asserts what the model writes (STYLE point 13): shapes, parity with the PyTorch
reference sampler, determinism for a fixed seed, and the engine's control flow."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from codegen_lsp.engine import GenerationConfig
from codegen_lsp.engine.diffusion import DiffusionEngine, candidate_noise, step_times
from codegen_lsp.engine.kinds import load_engine
from codegen_lsp.engine.results import Cancelled
from codegen_lsp.modelpkg import IONameMismatch, ManifestInvalid, UnknownKind, load_package
from export.errors import LogitsMismatch
from models.codefusion import schedule
from models.codefusion.config import named
from models.codefusion.export import build_package, validate_graphs
from models.codefusion.sample import reference_sample
from models.codefusion.tokenizer import PAD_ID
from models.codefusion.train import load_model, train
from tests.fixture_corpus import CancelAfter, edited_package, write_corpus

FUNCS = [
    ('def add(a, b):\n    """Return the sum of a and b."""', "\n    total = a + b\n    return total"),
    ('def sub(a, b):\n    """Return a minus b, as a number."""', "\n    diff = a - b\n    return diff"),
    ('def mul(a, b):\n    """Return the product of a and b."""', "\n    prod = a * b\n    return prod"),
    ('def first(items):\n    """Return the first item or None."""', "\n    for item in items:\n        return item\n    return None"),
]
PROMPT = FUNCS[0][0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint dir, package) from the ``tiny`` config on a corpus of a few functions."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("codefusion")
    corpus = write_corpus(root, FUNCS, {"train": 40, "valid": 4}, {"package": "fixture"})
    ckpt = root / "ckpt"
    state = train(corpus, ckpt, named("tiny"), "tiny", log=lambda _m: None)
    assert state.phase == 3 and state.phase_steps == list(named("tiny").train.phase_steps)
    assert any("valid_loss" in h for h in state.history)
    again = train(corpus, ckpt, named("tiny"), "tiny", log=lambda _m: None)  # resumes: nothing left to do
    assert again.steps == state.steps
    return ckpt, build_package(ckpt, root / "pkg", name="tiny-codefusion", steps=8)


@pytest.fixture(scope="module")
def engine(tiny: tuple[Path, Path]) -> DiffusionEngine:
    return load_engine(tiny[1], device="cpu", threads=1)  # type: ignore[return-value]


class CountingSession:
    """Wraps an ORT session and counts ``run`` calls."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    def run(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner.run(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_package_graphs_and_validation(tiny: tuple[Path, Path]) -> None:
    pkg = load_package(tiny[1], verify_hashes=True)
    m = pkg.manifest
    assert (m.kind, m.architecture) == ("diffusion", "codefusion")
    (v,) = m.variants
    assert v.graph == "" and set(v.graphs) == {"encoder", "denoiser", "decoder"}
    assert v.validation["status"] == "passed"
    check = v.validation["engine_vs_torch"]
    assert check["tokens_identical"] + check["ties"] == check["tokens_compared"] > 0
    assert all(err <= 1e-2 for err in v.validation["max_abs_error"].values())
    spec = m.extra["diffusion"]
    cfg = named("tiny").model
    assert (spec["schedule"], spec["sampler"], spec["timesteps"], spec["default_steps"]) == ("sqrt", "ddim", cfg.timesteps, 8)
    assert len(spec["alphas_cumprod"]) == cfg.timesteps and spec["pad_id"] == PAD_ID == m.special_tokens.eos[0]
    assert spec["alphas_cumprod"] == pytest.approx(list(schedule.alphas_cumprod(cfg.timesteps)))


def test_schedule_and_steps() -> None:
    abar = schedule.alphas_cumprod(1200)
    assert abar.shape == (1200,) and np.all(np.diff(abar) < 0) and 0 < abar[-1] < abar[0] < 1
    assert schedule.step_times(1200, 5) == [1199, 899, 600, 300, 0] == step_times(1200, 5)
    assert schedule.step_times(10, 50) == list(range(9, -1, -1))


def test_engine_matches_reference_sampler(tiny: tuple[Path, Path], engine: DiffusionEngine) -> None:
    model, _ = load_model(tiny[0])
    res = engine.generate(PROMPT, GenerationConfig(num_candidates=2, seed=7, max_new_tokens=1000))
    ref = reference_sample(model, engine.encode(PROMPT), candidate_noise(7, 2, (engine.target_length, engine.d_model)),
                           engine.steps)
    for i, g in enumerate(res.generations):
        want = [int(t) for t in ref.tokens[i]]
        want = want[: want.index(PAD_ID)] if PAD_ID in want else want
        assert g.token_ids == want


def test_deterministic_for_a_seed_and_batch_of_candidates(engine: DiffusionEngine) -> None:
    cfg = GenerationConfig(num_candidates=4, seed=3)
    a = engine.generate(PROMPT, cfg)
    b = engine.generate(PROMPT, cfg)
    assert len(a.generations) == 4
    assert [g.token_ids for g in a.generations] == [g.token_ids for g in b.generations]
    assert [g.score for g in a.generations] == [g.score for g in b.generations]
    assert all(g.score <= 0 and g.finish_reason in ("eos", "length", "stop") for g in a.generations)
    assert a.decode_tokens == engine.steps * 4 and a.generations[0].timings["steps"] == engine.steps
    # candidate i's noise depends on (seed, i) only: more candidates never change the first ones
    shape = (engine.target_length, engine.d_model)
    assert np.array_equal(candidate_noise(3, 1, shape)[0], candidate_noise(3, 4, shape)[0])
    assert not np.array_equal(candidate_noise(3, 2, shape)[0], candidate_noise(3, 2, shape)[1])
    assert not np.array_equal(candidate_noise(None, 1, shape), candidate_noise(None, 1, shape))


def test_fewer_steps_run_fewer_denoiser_calls(tiny: tuple[Path, Path]) -> None:
    for steps in (1, 3, 8):
        eng: DiffusionEngine = load_engine(tiny[1], device="cpu", threads=1, steps=steps)  # type: ignore[assignment]
        counting = {g: CountingSession(s) for g, s in eng.sessions.items()}
        eng.sessions = counting  # type: ignore[assignment]
        res = eng.generate(PROMPT, GenerationConfig(num_candidates=2, seed=0))
        assert (counting["encoder"].calls, counting["denoiser"].calls, counting["decoder"].calls) == (1, steps, 1)
        assert eng.info["steps"] == steps and res.decode_tokens == 2 * steps


def test_cancel_and_time_budget(engine: DiffusionEngine) -> None:
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(Cancelled):
        engine.generate(PROMPT, GenerationConfig(seed=0), cancel=cancelled)

    token = CancelAfter(2)
    with pytest.raises(Cancelled) as info:
        engine.generate(PROMPT, GenerationConfig(num_candidates=3, seed=0), cancel=token)
    partial = info.value.partial
    assert partial is not None and [g.finish_reason for g in partial.generations] == ["cancelled"] * 3
    assert partial.decode_tokens == 2 * 3

    res = engine.generate(PROMPT, GenerationConfig(num_candidates=2, seed=0, time_budget_s=0.0))
    assert [g.finish_reason for g in res.generations] == ["time", "time"]
    assert res.decode_tokens == 0


def test_on_line_and_cut_at_pad(engine: DiffusionEngine) -> None:
    """The candidate logic on a hand-made argmax: cut at the first pad, on_line per line."""
    ids = engine.tokenizer.encode("\n    x = 1\n    return x", add_special_tokens=False).ids
    lc, v = engine.target_length, engine.manifest.vocab_size
    tokens = np.array((ids + [PAD_ID] * lc)[:lc])
    logp = np.full((lc, v), -5.0, np.float32)
    logp[np.arange(lc), tokens] = -0.5
    cfg = GenerationConfig()
    g = engine._candidate(0, tokens, logp, cfg, None, None)
    assert (g.text, g.finish_reason) == ("\n    x = 1\n    return x", "eos") and g.score == pytest.approx(-0.5)
    seen: list[str] = []

    def on_line(_i: int, text: str) -> bool:
        seen.append(text)
        return len(seen) < 2

    g = engine._candidate(0, tokens, logp, cfg, None, on_line)
    assert g.finish_reason == "stop" and g.text == seen[-1] and g.text.startswith("\n    x = 1\n")
    g = engine._candidate(0, tokens, logp, GenerationConfig(max_new_tokens=2), None, None)
    assert g.finish_reason == "length" and g.token_ids == ids[:2]
    g = engine._candidate(0, tokens, logp, cfg, "time", None)
    assert g.finish_reason == "time"


def test_encode_keeps_the_prompt_tail(engine: DiffusionEngine) -> None:
    long = PROMPT + "\n" + "# filler words here\n" * 50
    ids = engine.encode(long)
    assert len(ids) == engine.encoder_length and engine.count_tokens(long) > engine.encoder_length
    assert ids == engine.tokenizer.encode(long, add_special_tokens=False).ids[-engine.encoder_length:]
    assert engine.prompt_budget(4.0) is None


def test_serves_through_body_generator(tiny: tuple[Path, Path]) -> None:
    from codegen_lsp.analysis.document import Document
    from codegen_lsp.analysis.sites import find_sites
    from codegen_lsp.config import Settings
    from codegen_lsp.generation import BodyGenerator

    settings, _ = Settings(model_path=str(tiny[1]), device="cpu", candidates=3, max_tokens=64,
                           time_budget_ms=30000).validated()
    gen = BodyGenerator(settings)
    doc = Document.from_text(PROMPT + "\n")
    (site,) = find_sites(doc)
    res = gen.bodies(doc, site)
    assert len(res.raw) == 3  # three noise seeds; each body then went through the grammar check
    assert gen.engine is not None and gen.engine.manifest.kind == "diffusion"


def test_the_steps_setting_reaches_the_engine_and_a_bad_one_is_refused(tiny: tuple[Path, Path]) -> None:
    from dataclasses import replace

    from codegen_lsp.config import Settings
    from codegen_lsp.generation import BodyGenerator, ModelUnavailable

    settings, _ = Settings(model_path=str(tiny[1]), device="cpu", steps=3).validated()
    gen = BodyGenerator(settings)
    assert gen.ensure_engine().info["steps"] == 3
    gen.reset(replace(settings, steps=0))  # a changed setting loads again, with the package default
    assert gen.ensure_engine().info["steps"] != 3
    gen.reset(replace(settings, steps=1000))  # more than the package's T
    with pytest.raises(ModelUnavailable, match="steps must be in 1..100"):
        gen.ensure_engine()


def test_unknown_things_refused(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        named("huge")
    for steps in (0, 10_000):
        with pytest.raises(ValueError):
            load_engine(tiny[1], device="cpu", threads=1, steps=steps)

    def broken(edit: Any, name: str) -> Path:
        return edited_package(tiny[1], tmp_path / name, edit)

    with pytest.raises(ManifestInvalid, match="sampler"):
        load_engine(broken(lambda d: d["extra"]["diffusion"].update(sampler="ddpm"), "sampler"), device="cpu")
    with pytest.raises(ManifestInvalid, match="schedule"):
        load_engine(broken(lambda d: d["extra"]["diffusion"].update(schedule="cosine"), "schedule"), device="cpu")
    with pytest.raises(ManifestInvalid, match="missing"):
        load_engine(broken(lambda d: d["variants"][0]["graphs"].pop("denoiser"), "graph"), device="cpu")
    with pytest.raises(ManifestInvalid):
        load_engine(broken(lambda d: d["extra"].pop("diffusion"), "spec"), device="cpu")
    with pytest.raises(UnknownKind):
        load_engine(broken(lambda d: d.update(kind="diffusion-v9"), "kind"), device="cpu")

    def rename_output(d: dict[str, Any]) -> None:  # the manifest promises an output the graph lacks
        graphs = d["extra"]["diffusion"].setdefault("graphs", {})
        graphs.setdefault("denoiser", {})["outputs"] = ["noise"]
    with pytest.raises(IONameMismatch, match="graph 'denoiser'.*noise"):
        load_engine(broken(rename_output, "io"), device="cpu")


def test_broken_graph_caught(tiny: tuple[Path, Path]) -> None:
    model, _ = load_model(tiny[0])
    with torch.no_grad():
        model.denoiser.out.bias.add_(0.5)  # the exported graph no longer matches this model
    with pytest.raises(LogitsMismatch, match="denoiser"):
        validate_graphs(model, tiny[1])


@pytest.mark.slow  # starts the real server process
async def test_language_server_serves_a_diffusion_package(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """The real ``codegen-lsp serve`` over stdio with the tiny package: inline completion answers
    (whatever the tiny model writes; every offered body parses)."""
    from tests.lsp._support import inline_parses_through_the_server

    await inline_parses_through_the_server(tiny[1], tmp_path, "diffusion engine ready")
