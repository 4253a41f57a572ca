"""The scripted test model: a real package whose text is exact, the same for every build, thread
count and candidate batch, and whose script is refused when it cannot be compiled."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen_lsp.engine import GenerationConfig, load_engine
from codegen_lsp.modelpkg import load_package
from export.scripted import Rule, ScriptError, build_scripted_package

HEADER = 'def get_total(total, value):\n    """Return the sum of total and value."""'
RULES = [
    Rule(HEADER, ["\n    return total + value"]),
    Rule('def pick(a, b):\n    """Return one of a and b, either will do."""', ["\n    return a", "\n    return b"]),
]


def test_package_loads_and_builds_identically(tmp_path: Path) -> None:
    a = build_scripted_package(tmp_path / "a", RULES)
    b = build_scripted_package(tmp_path / "b", RULES)
    pkg = load_package(a, verify_hashes=True)
    assert pkg.manifest.kind == "causal-lm" and pkg.manifest.variants[0].validation["replayed_rules"] == 2
    assert (a / "cpu-fp32" / "model.onnx").read_bytes() == (b / "cpu-fp32" / "model.onnx").read_bytes()


@pytest.mark.parametrize("threads", [1, 2])
def test_text_is_exact_for_any_thread_count(tmp_path: Path, threads: int) -> None:
    engine = load_engine(build_scripted_package(tmp_path / "pkg", RULES), device="cpu", threads=threads)
    out = engine.generate("import os\n\n\n" + HEADER, GenerationConfig(max_new_tokens=64, num_candidates=3,
                                                                      temperature=0.9, seed=5))
    assert [g.text for g in out.generations] == ["\n    return total + value"] * 3
    assert {g.finish_reason for g in out.generations} == {"eos"}
    assert {g.score for g in out.generations} == {0.0}  # log p = 0 exactly: one possible token


def test_branches_greedy_takes_the_first_and_unknown_prompts_end(tmp_path: Path) -> None:
    engine = load_engine(build_scripted_package(tmp_path / "pkg", RULES), device="cpu")
    greedy = engine.generate(RULES[1].after, GenerationConfig(max_new_tokens=32))
    assert greedy.generations[0].text == "\n    return a"  # 'a' has the lower byte id
    sampled = engine.generate(RULES[1].after, GenerationConfig(max_new_tokens=32, num_candidates=8,
                                                               temperature=1.0, seed=0))
    assert {g.text for g in sampled.generations} == {"\n    return a", "\n    return b"}
    unknown = engine.generate("def nothing_scripted_here():\n    pass", GenerationConfig(max_new_tokens=8))
    assert unknown.generations[0].text == "" and unknown.generations[0].finish_reason == "eos"


def test_scripts_that_cannot_compile_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="at least 48"):
        build_scripted_package(tmp_path / "short", [Rule("def f():", ["\n    return 1"])])
    clash = [Rule("# first prompt, padded to the window length.....\n" + HEADER, ["\n    return total + value"]),
             Rule("# second prompt, padded to the window length....\n" + HEADER, ["\n    return total - value"])]
    with pytest.raises(ScriptError, match="differently"):
        build_scripted_package(tmp_path / "clash", clash)
    with pytest.raises(ScriptError, match="nothing to write"):
        build_scripted_package(tmp_path / "empty", [Rule(HEADER, [])])


@pytest.mark.parametrize(("edit", "where", "message"), [
    (lambda m: m["special_tokens"].update(eos=[]), "load", "eos is empty"),
    (lambda m: m["special_tokens"].update(eos=[9999]), "load", "outside the vocabulary"),
    (lambda m: m.update(kind="transformer-xl"), "engine", "kind 'transformer-xl' has no engine"),
    (lambda m: m.update(vocab_size=300), "engine", "vocab_size is 300 but the graph's logits has 257"),
    (lambda m: m["variants"][0].update(graph=""), "load", "names no graph"),
    (lambda m: m["prompt"].update(file_sep="<|file_sep|>"), "engine", "prompt.file_sep '<|file_sep|>' is not one token"),
    (lambda m: (m["variants"][0].update(graphs={"encoder": "e.onnx"}), m.update(format_version=1)), "load",
     "needs format_version 2"),
])
def test_bad_manifests_are_refused_at_load(tmp_path: Path, edit, where: str, message: str) -> None:  # type: ignore[no-untyped-def]
    import json

    from codegen_lsp.modelpkg import ManifestInvalid, UnknownKind

    pkg = build_scripted_package(tmp_path / "pkg", RULES)
    data = json.loads((pkg / "manifest.json").read_text())
    edit(data)
    (pkg / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(UnknownKind if "has no engine" in message else ManifestInvalid, match=message):
        if where == "load":
            load_package(pkg)
        else:
            load_engine(pkg, device="cpu")
