"""The analysis + engine glue on a real tiny model package: live typing, caching, missing model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from codegen_lsp.analysis.document import Document
from codegen_lsp.analysis.grammar import rank_with_refusals
from codegen_lsp.analysis.sites import site_at
from codegen_lsp.config import Settings
from codegen_lsp.engine import load_engine
from codegen_lsp.generation import BodyGenerator, ModelUnavailable, no_body_message
from codegen_lsp.modelpkg import ManifestInvalid
from export.scripted import Rule, build_scripted_package

TYPED = 'def get_total(total, value):\n    """Return the sum of total and value."""\n    return total +\n'


def test_live_site_continues_what_was_typed(scripted_pkg: Path) -> None:
    doc = Document.from_text(TYPED)
    site = site_at(doc, 2, 18)
    assert site is not None and site.kind == "live"
    gen = BodyGenerator(Settings(model_path=str(scripted_pkg), candidates=3, temperature=0.7))
    result = gen.bodies(doc, site)
    assert result.candidates
    for cand in result.candidates:
        assert cand.body.startswith("    return total +") and len(cand.body) > len("    return total +")


def test_results_are_cached_per_document_version(scripted_pkg: Path) -> None:
    doc = Document.from_text(TYPED.replace("    return total +\n", "    pass\n"), version=3)
    site = site_at(doc, 1, 0)
    assert site is not None
    gen = BodyGenerator(Settings(model_path=str(scripted_pkg)))
    first = gen.bodies(doc, site, key="file:///a.py")
    again = gen.bodies(doc, site, key="file:///a.py")
    assert not first.from_cache and again.from_cache and again.candidates == first.candidates
    doc.version = 4
    assert not gen.bodies(doc, site, key="file:///a.py").from_cache


def test_missing_model_raises_the_same_clear_error_each_time(tmp_path: Path) -> None:
    gen = BodyGenerator(Settings(model_path=str(tmp_path / "none")))
    doc = Document.from_text(TYPED)
    site = site_at(doc, 2, 18)
    assert site is not None
    with pytest.raises(ModelUnavailable, match="does not exist") as first:
        gen.bodies(doc, site)
    with pytest.raises(ModelUnavailable) as second:
        gen.bodies(doc, site)
    assert str(first.value) == str(second.value)


def test_no_body_message_counts_and_groups_reasons() -> None:
    assert no_body_message("f", []) == "f: no valid body — the model wrote nothing"
    assert no_body_message("C.m", ["line 1: invalid syntax", "empty body", "line 1: invalid syntax"]) == (
        "C.m: no valid body — 3 candidates refused: line 1: invalid syntax (x2); empty body")


def test_refusal_reasons_come_from_the_grammar_check() -> None:
    doc = Document.from_text('def f(x):\n    """Doc."""\n    pass\n')
    site = site_at(doc, 0, 0)
    assert site is not None
    ranked, refused = rank_with_refusals(doc, site, [("\n    return (x", -1.0), ("\n    return x", -2.0),
                                                     ("\n    pass", -0.5), ("", -0.1)])
    assert [c.body for c in ranked] == ["    return x"]
    assert refused[0].startswith("line 1: ") and "never closed" in refused[0]
    assert refused[1:] == ["trivial body", "empty body"]


FIM = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
FIM_DOC = 'def area(w, h):\n    """Area of a w by h rectangle."""\n    pass\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n'


def test_fim_prompt_carries_the_code_after_the_function(tmp_path: Path) -> None:
    # The scripted model writes the body only after exactly this FIM layout: markers, the code
    # before the body, the code after the function as the suffix.
    after = ('Area of a w by h rectangle."""<|fim_suffix|>\n\n\ndef perimeter(w, h):\n'
             '    return 2 * (w + h)\n<|fim_middle|>')
    pkg = build_scripted_package(tmp_path / "fim", [Rule(after, ["\n    return w * h"])], fim=FIM)
    doc = Document.from_text(FIM_DOC)
    site = site_at(doc, 0, 0)
    assert site is not None
    result = BodyGenerator(Settings(model_path=str(pkg), candidates=1)).bodies(doc, site)
    assert [c.body for c in result.candidates] == ["    return w * h"]


def test_fim_markers_that_are_not_single_tokens_are_refused_at_load(tmp_path: Path) -> None:
    pkg = build_scripted_package(tmp_path / "fim", [Rule("#" * 48, ["\n"])], fim=FIM)
    data = json.loads((pkg / "manifest.json").read_text())
    data["prompt"]["fim_middle"] = "<fim-middle-typo>"
    (pkg / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestInvalid, match="prompt.fim_middle '<fim-middle-typo>' is not one token"):
        load_engine(pkg, device="cpu")


def test_a_failed_load_is_retried_once_the_package_changes(tmp_path: Path, scripted_pkg: Path) -> None:
    target = tmp_path / "pkg"
    gen = BodyGenerator(Settings(model_path=str(target)))
    with pytest.raises(ModelUnavailable, match="does not exist"):
        gen.ensure_engine()
    shutil.copytree(scripted_pkg, target)  # e.g. `make model` finished meanwhile
    assert gen.ensure_engine().manifest.name == "scripted"


def test_reset_never_waits_for_a_load_and_the_stale_load_is_discarded(
    tmp_path: Path, scripted_pkg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from codegen_lsp import generation

    other = build_scripted_package(tmp_path / "other", [Rule("#" * 48, ["\n"])], name="other")
    started, release = threading.Event(), threading.Event()
    real = generation.load_engine

    def slow_load(*args, **kwargs):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(10)  # the real load, held back so the reset lands in the middle of it
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "load_engine", slow_load)
    gen = BodyGenerator(Settings(model_path=str(scripted_pkg)))
    loaded: list[str] = []
    worker = threading.Thread(target=lambda: loaded.append(gen.ensure_engine().manifest.name))
    worker.start()
    assert started.wait(10)
    t0 = time.perf_counter()
    gen.reset(Settings(model_path=str(other)))  # what didChangeConfiguration does on the event loop
    assert time.perf_counter() - t0 < 0.5
    release.set()
    worker.join(30)
    assert loaded == ["other"]  # the load for the old settings was thrown away


def test_the_result_cache_is_bounded_by_the_bytes_it_pins(scripted_pkg: Path) -> None:
    gen = BodyGenerator(Settings(model_path=str(scripted_pkg), result_cache_mb=1))
    filler = "# " + "x" * 400_000 + "\n"  # each version pins a 400 kB snapshot
    for version in range(5):
        doc = Document.from_text(filler + TYPED.replace("    return total +\n", "    pass\n"), version=version)
        site = site_at(doc, 2, 0)
        assert site is not None
        gen.bodies(doc, site, key="file:///big.py")
    assert len(gen._cache) == 2  # 2 x 400 kB fit in 1 MiB, 3 do not


def test_the_users_notes_above_a_stub_stay_and_reach_the_prompt(tmp_path: Path) -> None:
    notes = '    """Area of a w by h rectangle."""\n    # multiply; the caller rounds\n'
    source = "def area(w, h):\n" + notes + "    pass\n"
    # The scripted model writes the body only when the notes are at the end of the prompt.
    pkg = build_scripted_package(tmp_path / "notes", [Rule("def area(w, h):\n" + notes.rstrip("\n"),
                                                          ["\n    return w * h"])])
    doc = Document.from_text(source)
    site = site_at(doc, 0, 0)
    assert site is not None and site.kind == "stub"
    result = BodyGenerator(Settings(model_path=str(pkg), candidates=1)).bodies(doc, site)
    assert [c.body for c in result.candidates] == ["    return w * h"]
    from codegen_lsp.analysis.grammar import splice

    assert splice(doc, site, result.candidates[0].body) == "def area(w, h):\n" + notes + "    return w * h\n"


def test_the_users_comments_after_a_stub_item_are_kept_in_the_prompt_and_the_body(tmp_path: Path) -> None:
    doc_line = '    """Area of a w by h rectangle."""\n'
    source = ("def area(w, h):\n" + doc_line + "    pass  # TODO\n    # both are floats\n"
              "    # and positive\n")
    # The scripted model writes only when both comments end the prompt, as the user wrote them.
    pkg = build_scripted_package(tmp_path / "after", [Rule(
        "def area(w, h):\n" + doc_line + "    # both are floats\n    # and positive", ["\n    return w * h"])])
    doc = Document.from_text(source)
    site = site_at(doc, 0, 0)
    assert site is not None and site.kind == "stub"
    assert site.kept_comments == ("# both are floats", "# and positive")
    result = BodyGenerator(Settings(model_path=str(pkg), candidates=1)).bodies(doc, site)
    body = "    # both are floats\n    # and positive\n    return w * h"
    assert [c.body for c in result.candidates] == [body]
    from codegen_lsp.analysis.grammar import splice

    assert splice(doc, site, result.candidates[0].body) == "def area(w, h):\n" + doc_line + body + "\n"
