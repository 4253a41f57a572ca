"""Prompts: context selection, trimming to the budget, and the end-of-prompt boundary."""

from __future__ import annotations

import pytest
from analysis_markers import DATA, load
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen_lsp.analysis.document import Document
from codegen_lsp.analysis.prompt import build_prompt
from codegen_lsp.analysis.sites import FunctionSite, find_sites


def words(text: str) -> int:
    """A stand-in tokenizer: whitespace-separated words (the real one is the engine's)."""
    return len(text.split())


def site_named(doc: Document, qualname: str) -> FunctionSite:
    return next(s for s in find_sites(doc) if s.qualname == qualname)


def shapes() -> Document:
    return Document.from_text(load("prompt_shapes.py").text)


def test_method_prompt_matches_golden_file() -> None:
    doc = shapes()
    prompt = build_prompt(doc, site_named(doc, "Circle.area"), words, 1000)
    assert prompt.text == (DATA / "prompt_shapes.expected.txt").read_text(encoding="utf-8")
    assert not prompt.dropped and not prompt.over_budget


def test_prompt_ends_right_after_the_docstring_quotes() -> None:
    doc = shapes()
    prompt = build_prompt(doc, site_named(doc, "describe"), words, 1000)
    assert prompt.text.endswith('def describe(shape: Circle) -> str:  # site: describe empty\n'
                                '    """One line describing the shape."""')
    assert "class Circle:" in prompt.text and "import math" in prompt.text
    newline = build_prompt(doc, site_named(doc, "describe"), words, 1000, end_before_newline=False)
    assert newline.text == prompt.text + "\n"


@pytest.mark.parametrize("budget", [0, 20, 40, 60, 80, 120])
def test_budget_trims_context_never_the_function(budget: int) -> None:
    doc = shapes()
    prompt = build_prompt(doc, site_named(doc, "Circle.area"), words, budget)
    required = '@dataclass\nclass Circle:\n'
    target = '    def area(self) -> float:  # site: Circle.area stub\n        """Return the area, rounded."""'
    assert prompt.text.endswith(target) and prompt.text.startswith(required) or required in prompt.text
    assert prompt.tokens == words(prompt.text)
    assert prompt.over_budget == (prompt.tokens > budget)
    if not prompt.over_budget:
        assert prompt.tokens <= budget
    if prompt.over_budget:  # only when the scopes and the function alone exceed the budget
        assert prompt.text == required + target


def test_trimming_order_imports_first_definitions_shrink_before_dropping() -> None:
    doc = shapes()
    site = site_named(doc, "Circle.area")
    full = build_prompt(doc, site, words, 1000)
    bare = build_prompt(doc, site, words, 0)
    for budget in range(bare.tokens, full.tokens + 1):
        prompt = build_prompt(doc, site, words, budget)
        assert prompt.tokens <= budget
        if any(label.startswith(("member", "def", "assignment")) for label in prompt.included):
            assert prompt.included.count("import") == 3  # imports are the last to go
    mid = build_prompt(doc, site, words, full.tokens - 4)
    assert "def:rounded (signature)" in mid.included
    assert "def rounded(value: float) -> float: ..." in mid.text


def test_nested_function_keeps_the_enclosing_headers() -> None:
    doc = Document.from_text(load("sites_basic.py").text)
    prompt = build_prompt(doc, site_named(doc, "outer.<locals>.inner"), words, 1000)
    assert prompt.text.endswith('def outer(values):\n    """Has a nested helper."""\n'
                                '    def inner(v):  # site: outer.<locals>.inner empty\n        """Square v."""')
    deep = build_prompt(doc, site_named(doc, "Shape.Inner.deep"), words, 1000)
    assert "class Shape:\n" in deep.text and "    class Inner:\n        def deep(self):" in deep.text


def test_crlf_and_tabs_are_kept_apart() -> None:
    doc = Document.from_text(load("sites_tabs.py").text.replace("\n", "\r\n"))
    prompt = build_prompt(doc, site_named(doc, "Tabs.method"), words, 1000)
    assert "\r" not in prompt.text
    assert prompt.text.endswith('\n\tdef method(self, x):  # site: Tabs.method stub\n\t\t"""Tab indented."""')
    assert prompt.text.startswith("class Tabs:\n\tdef done(self):\n")  # the stub tab_top is left out


def test_broken_document_falls_back_to_indentation_for_scopes() -> None:
    doc = Document.from_text(load("broken_string.py").text)
    prompt = build_prompt(doc, site_named(doc, "inside_the_damage"), words, 1000)
    assert prompt.text.endswith('"""A site the tree could not see."""')
    doc = Document.from_text(load("broken_brackets.py").text)
    prompt = build_prompt(doc, site_named(doc, "Holder.after_broken"), words, 1000)
    assert prompt.text.endswith('class Holder:\n    def after_broken(self):  # site: Holder.after_broken stub\n'
                                '        """After the broken method."""')


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 400), st.sampled_from(["sites_basic.py", "prompt_shapes.py", "sites_unicode.py"]))
def test_every_site_prompt_respects_the_budget(budget: int, name: str) -> None:
    doc = Document.from_text(load(name).text)
    for site in find_sites(doc):
        prompt = build_prompt(doc, site, words, budget)
        assert site.signature.split("\n")[0] in prompt.text
        end = doc.offset_at(*site.docstring_end)
        quotes = doc.data[end - 3:end].decode()
        assert prompt.text.endswith(site.docstring + quotes)
        assert prompt.tokens <= budget or prompt.over_budget


def test_other_stub_functions_are_left_out_of_the_context() -> None:
    doc = Document.from_text(
        'import re\n\n\ndef done(x):\n    """Done."""\n    return x\n\n\n'
        'def todo_a(x):\n    """A."""\n    pass\n\n\ndef todo_b(x):\n    """B."""\n    ...\n'
    )
    prompt = build_prompt(doc, site_named(doc, "todo_b"), words, 1000)
    assert "def done" in prompt.text and "import re" in prompt.text
    assert "todo_a" not in prompt.text and "pass" not in prompt.text
