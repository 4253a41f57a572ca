"""Grammar check: stop rule, body normalization, validation in context, ranking, and the
incremental viability check used during decoding."""

from __future__ import annotations

import ast

import pytest
from analysis_markers import load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codegen_lsp.analysis.document import Document
from codegen_lsp.analysis.grammar import (
    IncrementalBodyCheck,
    body_edit,
    check_body,
    continuation_complete,
    normalize_continuation,
    rank_candidates,
    splice,
)
from codegen_lsp.analysis.sites import FunctionSite, find_sites

VALID_FIXTURES = ["sites_basic.py", "sites_tabs.py", "sites_unicode.py", "prompt_shapes.py"]


def site_named(doc: Document, qualname: str) -> FunctionSite:
    return next(s for s in find_sites(doc) if s.qualname == qualname)


@pytest.fixture
def shapes() -> tuple[Document, FunctionSite]:
    doc = Document.from_text(load("prompt_shapes.py").text)
    return doc, site_named(doc, "Circle.area")


def test_stop_rule_and_normalization(shapes: tuple[Document, FunctionSite]) -> None:
    _, site = shapes
    raw = "\n        r = self.radius\n\n        return math.pi * r * r\n\n    def next(self):\n"
    assert continuation_complete(site, raw)
    assert not continuation_complete(site, raw.split("\n    def")[0])
    assert not continuation_complete(site, "\n        x = 1\n    ")  # indentation not settled yet
    body = normalize_continuation(site, raw)
    assert body == "        r = self.radius\n\n        return math.pi * r * r"
    assert normalize_continuation(site, body) == body  # idempotent on bodies
    assert normalize_continuation(site, "\r\n        return 1  \r\n") == "        return 1"


def test_check_accepts_and_splices(shapes: tuple[Document, FunctionSite]) -> None:
    doc, site = shapes
    verdict = check_body(doc, site, "        return round(math.pi * self.radius ** 2, PRECISION)")
    assert verdict.ok and verdict.body and not verdict.truncated
    new = splice(doc, site, verdict.body)
    ast.parse(new)
    assert "        ...\n" not in new.split("def area")[1].split("def scaled")[0]


@pytest.mark.parametrize("body, reason", [
    ("        pass", "trivial"),
    ("        ...\n        # later", "trivial"),
    ('        raise NotImplementedError("x")', "trivial"),
    ("", "empty"),
    ("    return 1", "indentation"),
    ("            return 1", "indentation"),
    ("        print 'hello'", "print"),
    ("        x = 0777", "leading zeros"),
    ("        try:\n            x = 1", "expected 'except' or 'finally'"),
    ("        y = 1 +\n    y = 2", "invalid syntax"),
    ("        y = 1 +\nx = 2", "invalid syntax"),
    ("        s = '\\N{NO SUCH NAME}'", "unicode"),
])
def test_check_rejects(shapes: tuple[Document, FunctionSite], body: str, reason: str) -> None:
    doc, site = shapes
    verdict = check_body(doc, site, body)
    assert not verdict.ok and verdict.body is None
    assert reason.lower() in verdict.reason.lower() or reason in ("indentation", "unicode")


def test_longest_valid_prefix(shapes: tuple[Document, FunctionSite]) -> None:
    doc, site = shapes
    body = "        r = (self.radius +\n             0)\n        area = r * r\n        return area * = 2"
    verdict = check_body(doc, site, body)
    assert not verdict.ok and verdict.truncated
    assert verdict.body == "        r = (self.radius +\n             0)\n        area = r * r"
    assert check_body(doc, site, "        pass\n        return (").body is None  # trivial prefix
    assert check_body(doc, site, "        return 1\n      y = 2").body == "        return 1"
    left = check_body(doc, site, "        return 1\n    y = 2")
    assert left.body == "        return 1" and "leaves the function" in left.reason
    outside = check_body(doc, site, "        return 1\nx = 2")
    assert outside.body == "        return 1" and "leaves the function" in outside.reason


def test_rank_dedups_sorts_and_drops_invalid(shapes: tuple[Document, FunctionSite]) -> None:
    doc, site = shapes
    ranked = rank_candidates(doc, site, [
        ("\n        return math.pi * self.radius ** 2", 0.2),
        ("\n        return math.pi * self.radius ** 2   \n\n    def other(self):", 0.6),
        ("\n        pass", 0.9),
        ("\n        return = 1", 0.95),
        ("\n        x = self.radius\n        return x * x *", 0.4),
    ])
    assert [(c.body, c.score, c.truncated) for c in ranked] == [
        ("        return math.pi * self.radius ** 2", 0.6, False),
        ("        x = self.radius", 0.4, True),
    ]


def test_incremental_check(shapes: tuple[Document, FunctionSite]) -> None:
    doc, site = shapes
    check = IncrementalBodyCheck(doc, site)
    assert check.viable("")
    assert check.viable("\n        if self.radius > 0:\n")  # block awaiting its body
    assert check.viable("\n        value = compute(\n            self.radius,\n")  # open bracket
    assert check.viable("\n        try:\n            x = 1\n")  # try awaiting except
    assert check.viable('\n        s = """multi\n')
    assert check.viable("\n        return 1\n    def")  # complete and valid
    assert not check.viable("\n        x = = 1\n")
    assert not check.viable("\n    return 1\n")  # dedented at once: nothing valid
    assert not check.viable("\n            x = 1\n")  # first line over-indented
    assert not check.viable("\n        s = 'unterminated\n")
    assert not check.viable("\n        x = 1\n          y = 2\n")


def test_body_edit_uses_document_line_breaks() -> None:
    doc = Document.from_text(load("sites_basic.py").text.replace("\n", "\r\n"))
    site = site_named(doc, "with_pass")
    start, end, new_text = body_edit(doc, site, "    y = x * 2\n    return y")
    assert (start, end) == (site.edit_start, site.edit_end)
    assert new_text == "\r\n    y = x * 2\r\n    return y"
    new = splice(doc, site, "    y = x * 2\n    return y")
    assert '"""Double x."""\r\n    y = x * 2\r\n    return y\r\n' in new
    ast.parse(new)


def test_live_site_splice_replaces_the_typed_line() -> None:
    from codegen_lsp.analysis.sites import site_at

    fx = load("live_unclosed.py")
    doc = Document.from_text(fx.text)
    assert fx.cursor is not None
    site = site_at(doc, *fx.cursor)
    assert site is not None
    new = splice(doc, site, "        return (self.x ** 2 + self.y ** 2) ** 0.5")
    ast.parse(new)


LINES = [
    "return x", "x = 1", "y = (x +", "1)", "if x:", "else:", "for i in range(3):", "try:", "except Exception:",
    "finally:", "pass", "...", "print 'x'", "x = 0777", "s = '''", "'''", 's = "a', "s = '\\N{BOGUS}'",
    "return [", "]", "x = y = = 1", "lambda: (yield)", "def g():", "class C:", "while True:", "break",
    "with open(p) as f:", "x: int = 3", "del x", "global q", "# comment", "", "async for a in b:",
    "await z", "f(**k, *a)", "f(a for a in b, 1)", "x := 1", "(x := 1)", "match x:", "case 1:",
    "return", "yield x", "raise NotImplementedError", "x = b'é'", "x = \\", "1", "é = 1", "\\t", "   ",
]


@st.composite
def bodies(draw: st.DrawFn, site: FunctionSite) -> str:
    """Random and adversarial bodies: real statement fragments at plausible and wrong indents."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=60))
    out = []
    for _ in range(draw(st.integers(1, 8))):
        indent = draw(st.sampled_from([
            site.body_indent, site.body_indent, site.body_indent + "    ", site.body_indent + "        ",
            site.def_indent, site.body_indent + " ", site.body_indent + "\t", "", " "]))
        out.append(indent + draw(st.sampled_from(LINES)))
    return "\n".join(out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID_FIXTURES), st.data())
def test_accepted_bodies_parse_with_python_in_context(name: str, data: st.DataObject) -> None:
    doc = Document.from_text(load(name).text)
    site = data.draw(st.sampled_from(find_sites(doc)))
    body = data.draw(bodies(site))
    verdict = check_body(doc, site, body)
    if verdict.body is None:
        return
    ast.parse(splice(doc, site, verdict.body))  # the guarantee: nothing accepted fails to parse
    normalized = check_body(doc, site, normalize_continuation(site, body))
    ranked = rank_candidates(doc, site, [(body, 1.0)])
    assert [c.body for c in ranked] == ([normalized.body] if normalized.body is not None else [])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID_FIXTURES), st.data())
def test_incremental_check_never_rejects_a_prefix_of_a_valid_body(name: str, data: st.DataObject) -> None:
    doc = Document.from_text(load(name).text)
    site = data.draw(st.sampled_from(find_sites(doc)))
    verdict = check_body(doc, site, data.draw(bodies(site)))
    if not verdict.ok or verdict.body is None:
        return
    raw = "\n" + verdict.body + "\n" + site.def_indent + "x"
    if normalize_continuation(site, raw) != verdict.body:
        return  # a body the stop rule would cut (a dedented line inside brackets): never generated
    check = IncrementalBodyCheck(doc, site)
    for i, ch in enumerate(raw):
        if ch == "\n":
            assert check.viable(raw[: i + 1]), raw[: i + 1]
    assert check.viable(raw)
