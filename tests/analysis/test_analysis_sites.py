"""Finding generation sites on the marked fixtures, in broken documents and at the cursor."""

from __future__ import annotations

import time

import pytest
from analysis_markers import big_source, fixture_names, load

from codegen_lsp.analysis.document import Document, Position
from codegen_lsp.analysis.sites import find_sites, site_at


def found(doc: Document) -> list[tuple[str, str]]:
    return sorted((s.qualname, s.kind) for s in find_sites(doc))


@pytest.mark.parametrize("name", fixture_names())
def test_fixture_sites_exactly(name: str) -> None:
    fx = load(name)
    assert found(Document.from_text(fx.text)) == [e for e in fx.expected if e[1] != "live"]


@pytest.mark.parametrize("name", fixture_names())
def test_fixture_sites_with_crlf(name: str) -> None:
    fx = load(name)
    doc = Document.from_text(fx.text.replace("\n", "\r\n"))
    assert found(doc) == [e for e in fx.expected if e[1] != "live"]


@pytest.mark.parametrize("name", fixture_names("live_"))
def test_live_site_at_cursor(name: str) -> None:
    fx = load(name)
    assert fx.cursor is not None
    site = site_at(Document.from_text(fx.text), *fx.cursor)
    live = [e for e in fx.expected if e[1] == "live"]
    assert site is not None and [(site.qualname, site.kind)] == live
    assert site.edit_end.line == fx.cursor[0]  # the line being typed is superseded


def test_site_fields() -> None:
    doc = Document.from_text(load("sites_basic.py").text)
    by_name = {s.qualname: s for s in find_sites(doc)}
    s = by_name["with_pass"]
    assert s.signature == "def with_pass(x: int = 1, *args: Any, **kwargs: Any) -> int:"
    assert s.docstring == "Double x."
    assert (s.def_indent, s.body_indent, s.is_async) == ("", "    ", False)
    assert doc.text.splitlines()[s.replace_start.line][s.replace_start.character:s.replace_end.character] == "pass"
    e = by_name["docstring_only"]
    assert e.replace_start == e.replace_end == e.docstring_end
    assert doc.text.splitlines()[e.docstring_end.line].endswith('"""Return a plus b."""')
    assert by_name["fetch"].is_async
    assert by_name["decorated"].header_start.line == by_name["decorated"].docstring_end.line - 3
    m = by_name["Shape.area"]
    assert (m.def_indent, m.body_indent) == ("    ", "        ")
    stub = by_name["todo_and_pass"]
    lines = doc.text.splitlines()
    assert lines[stub.replace_start.line].strip() == "# TODO"
    assert lines[stub.replace_end.line][: stub.replace_end.character].endswith("# placeholder")


def test_unicode_positions_are_utf16() -> None:
    doc = Document.from_text(load("sites_unicode.py").text)
    site = next(s for s in find_sites(doc) if s.name == "crème")
    line = doc.text.splitlines()[site.docstring_end.line]
    assert len(line.encode("utf-16-le")) // 2 == site.docstring_end.character  # 😀 counts twice
    assert site.docstring == "Say 你好 to 名前 😀."


def test_site_at_positions() -> None:
    doc = Document.from_text(load("sites_basic.py").text)
    area = next(s for s in find_sites(doc) if s.name == "area")
    assert site_at(doc, area.header_start.line, 5) == area
    assert site_at(doc, area.replace_end.line, 0) == area
    assert site_at(doc, area.header_start.line - 1, 0) is None  # the blank line above
    inner = next(s for s in find_sites(doc) if s.name == "inner")
    assert site_at(doc, inner.docstring_end.line + 1, 0) == inner  # the blank line after the docstring
    has_body = doc.text.splitlines().index("def has_body(x):")
    assert site_at(doc, has_body + 2, 4) is None


def test_blank_indented_line_after_docstring_is_superseded() -> None:
    doc = Document.from_text('def f(x):\n    """Doc."""\n    \n\nx = 1\n')
    site = site_at(doc, 2, 4)
    assert site is not None and site.kind == "empty"
    assert site.edit_end == Position(2, 4)


def test_function_continuing_below_cursor_is_not_live() -> None:
    doc = Document.from_text('def f(x):\n    """Doc."""\n    y = \n    return y\n')
    assert site_at(doc, 2, 8) is None


def test_ten_thousand_lines_broken_at_the_top() -> None:
    text = big_source(10_000)
    clean = Document.from_text(text)
    expected = found(clean)
    assert len(expected) > 500 and clean.line_count > 10_000
    broken = Document.from_text('x = """never closed\nvalues = (1,\n' + text)
    start = time.perf_counter()
    assert found(broken) == expected
    assert time.perf_counter() - start < 5  # window recovery is linear, not quadratic


BREAKERS = ["x = (\n", 's = """\n', "s = '\n", "    return [1,\n", "\tdef bad(:\n", ")\n", "class :\n", "@\n",
            "def f(\n", "  x = 1\n", "if x:\n", "'''\n", "}\n", "async\n", "lambda\n"]


@pytest.mark.parametrize("name", ["sites_basic.py", "prompt_shapes.py", "sites_unicode.py", "sites_tabs.py"])
def test_damage_hides_no_site_elsewhere(name: str) -> None:
    """A broken line inserted before any top-level definition hides no site after it and
    invents none."""
    fx = load(name)
    lines = fx.text.splitlines(keepends=True)
    tops = [i for i, line in enumerate(lines) if line.startswith(("def ", "class ", "async def ", "@"))]
    for at in tops:
        while at > 0 and lines[at - 1].startswith("@"):
            at -= 1
        before = "".join(lines[:at])
        after = [e for e in fx.expected if fx.text.find(f"# site: {e[0]} ") > len(before)]
        for breaker in BREAKERS:
            got = found(Document.from_text(before + breaker + "".join(lines[at:])))
            assert all(e in got for e in after), (breaker, at)
            assert all(e in fx.expected for e in got), (breaker, at)
