"""The tree decoder's host-side pieces: the site read from a prompt, primitive tokens and copying,
the frontier's two orders, and rendering (these run without a model)."""

from __future__ import annotations

import ast

import pytest

from codegen_lsp.engine.treedec.grammar import (
    Frontier,
    Grammar,
    Slot,
    copy_value,
    decode_value,
    encode_value,
    render,
    token_fits,
)
from codegen_lsp.engine.treedec.prompt import function_site

SPEC = {
    "fields": [{"name": "body", "type": "stmt", "card": "*", "min": 1},
               {"name": "value", "type": "expr", "card": "?"},
               {"name": "id", "type": "identifier", "card": "1"},
               {"name": "value", "type": "constant", "card": "1"}],
    "constructors": [{"name": "Return", "sort": "stmt", "fields": [1]},
                     {"name": "Name", "sort": "expr", "fields": [2]},
                     {"name": "Constant", "sort": "expr", "fields": [3]}],
    "defaults": {"Name": {"ctx": "load"}, "Constant": {"kind": "none"}},
}


def test_function_site_finds_the_header_docstring_and_indent() -> None:
    prompt = 'import os\n\n\nclass A:\n    x = 1\n\n    @property\n    def size(self) -> int:\n        """How many.\n\n        Counted once.\n        """'
    text, indent = function_site(prompt)
    assert text.startswith("    def size(self) -> int:") and text.endswith('"""') and indent == " " * 8
    assert function_site('def f(a):\n    """One line."""') == ('def f(a):\n    """One line."""', "    ")
    text, indent = function_site("def g():\n    x = 1")  # no docstring: one level under the def
    assert text.startswith("def g") and indent == "    "


@pytest.mark.parametrize(("type_", "value"), [
    ("constant", None), ("constant", True), ("constant", 3), ("constant", 2.5), ("constant", 1j),
    ("constant", "it's"), ("constant", b"\x00"), ("constant", ...), ("constant", float("inf")),
    ("identifier", "os.path"), ("int", 0), ("string", "u")])
def test_primitive_tokens_round_trip(type_: str, value: object) -> None:
    back = decode_value(type_, encode_value(type_, value))
    assert back == value and type(back) is type(value)


def test_tokens_that_do_not_fit_a_field_are_refused() -> None:
    assert not token_fits("identifier", "class") and not token_fits("identifier", "a-b")
    assert not token_fits("constant", "name") and not token_fits("int", "x")
    assert copy_value("identifier", "items") == "items" and copy_value("identifier", "for") is None
    assert copy_value("constant", "utf") == "'utf'" and copy_value("constant", "42") == "42"
    assert copy_value("int", "7") == "7" and copy_value("int", "x") is None and copy_value("string", "u") is None


def test_frontier_orders() -> None:
    g = Grammar(SPEC)
    ret, name = 0, 1
    pre, bfs = Frontier("preorder"), Frontier("bfs")
    assert pre.slot == Slot(-1, 0, 0)
    pre, bfs = pre.after(g, ret, 0), bfs.after(g, ret, 0)
    # pre-order: the Return's value first, then the body's next element; BFS: the next element first
    assert pre.slots == (Slot(0, 1), Slot(-1, 0, 1)) and bfs.slots == (Slot(-1, 0, 1), Slot(0, 1))
    assert g.closable(Slot(-1, 0, 1)) and not g.closable(Slot(-1, 0, 0))
    assert g.valid_rules(Slot(0, 1)) == [name, 2, g.reduce]
    with pytest.raises(ValueError):
        Frontier("inorder")


def test_render_indents_and_refuses_invalid_trees() -> None:
    body = ast.parse("if x:\n    return 'a\\nb'\nreturn None").body
    text = render(body, "        ")
    assert text == "\n        if x:\n            return 'a\\nb'\n        return None"
    broken = ast.parse("f(x)").body
    broken[0].value.func = ast.Constant(1)  # type: ignore[attr-defined]
    assert render(broken, "") == "\n1(x)"  # odd but valid Python
    bad = [ast.Assign(targets=[ast.Call(func=ast.Name("f"), args=[], keywords=[])], value=ast.Constant(1))]
    with pytest.raises(ValueError, match="valid Python"):
        render(bad, "    ")  # `f() = 1` unparses but does not parse
