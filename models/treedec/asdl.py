"""Python's abstract grammar read from the running ``ast`` module (each node class's docstring is its
ASDL signature, ``If(expr test, stmt* body, stmt* orelse)``), and bodies <-> action sequences.

Encoding drives the runtime's own frontier (``codegen_lsp.engine.treedec.grammar``) with the gold
tree as the oracle, so an order is defined once; decoding is the runtime's replay. Omitted from the
grammar because ``ast.unparse`` ignores them: ``expr_context`` (Load/Store/Del) and type comments.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from codegen_lsp.engine.treedec.grammar import (
    PRIMITIVES,
    Action,
    Frontier,
    Grammar,
    Slot,
    build_body,
    decode_value,
    encode_value,
    unparse_body,
)

ROOT_FIELD = {"name": "body", "type": "stmt", "card": "*", "min": 1, "holes": False}
OMITTED = {"expr_context": "load", "type_ignore": "none"}
OMITTED_FIELDS = {"type_comment"}
MIN_ONE = {("Assign", "targets"), ("Delete", "targets"), ("Global", "names"), ("Nonlocal", "names"),
           ("Import", "names"), ("ImportFrom", "names"), ("With", "items"), ("AsyncWith", "items"),
           ("Compare", "ops"), ("Compare", "comparators"), ("Match", "cases"), ("ListComp", "generators"),
           ("SetComp", "generators"), ("DictComp", "generators"), ("GeneratorExp", "generators")}
"""Lists the parser needs non-empty (besides every ``stmt* body``); ASDL says ``*`` for all."""
MIN_TWO = {("BoolOp", "values")}
HOLES = {("Dict", "keys"), ("arguments", "kw_defaults")}
"""Lists whose elements may be None (``{**d}``, ``def f(*, a)``), which ASDL does not say."""
_SIG = re.compile(r"^(\w+)(?:\((.*)\))?$")


def _constructors() -> list[type[ast.AST]]:
    out = []
    for name in dir(ast):
        cls = getattr(ast, name)
        if not (isinstance(cls, type) and issubclass(cls, ast.AST) and cls.__doc__):
            continue
        m = _SIG.match(cls.__doc__.strip())
        if m is None or m.group(1) != name:
            continue
        if _sort(cls) not in (*OMITTED, "mod"):
            out.append(cls)
    return out


def _sort(cls: type[ast.AST]) -> str:
    """The ASDL type a constructor builds: its abstract base (``expr``), or itself for a product
    type (``arguments``, ``keyword``)."""
    base = cls.__bases__[0]
    return cls.__name__ if base is ast.AST else base.__name__


def grammar_spec() -> dict[str, Any]:
    """The manifest's ``extra.treedec.grammar``: fields (0 = the root body) and constructors."""
    fields: list[dict[str, Any]] = [dict(ROOT_FIELD)]
    constructors, defaults = [], {}
    for cls in _constructors():
        name = cls.__name__
        m = _SIG.match((cls.__doc__ or "").strip())
        assert m is not None
        sort = _sort(cls)
        ids, omitted = [], {}
        for part in filter(None, (p.strip() for p in (m.group(2) or "").split(","))):
            type_, fname = part.split()
            card = type_[-1] if type_[-1] in "?*" else "1"
            base = type_.rstrip("?*")
            if base in OMITTED or fname in OMITTED_FIELDS:
                omitted[fname] = OMITTED.get(base, "none")
                continue
            if base == "object":
                base = "constant"
            low = 2 if (name, fname) in MIN_TWO else 1 if ((name, fname) in MIN_ONE or
                                                          (base == "stmt" and fname == "body")) else 0
            fields.append({"name": fname, "type": base, "card": card, "min": low if card == "*" else 0,
                           "holes": (name, fname) in HOLES})
            ids.append(len(fields) - 1)
        if omitted:
            defaults[name] = omitted
        constructors.append({"name": name, "sort": sort, "fields": ids})
    return {"fields": fields, "constructors": constructors, "defaults": defaults}


class Unsupported(ValueError):
    """A body the grammar cannot express (the reason names the node)."""


def body_statements(prompt: str, target: str) -> list[ast.stmt]:
    """The body after the docstring of the corpus pair's function (comments and layout dropped)."""
    indented = prompt[:1] in (" ", "\t")
    module = ast.parse(("if 1:\n" if indented else "") + prompt + target)
    scope = module.body[0].body if indented else module.body  # type: ignore[attr-defined]
    fn = scope[-1]
    if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
        raise Unsupported(f"not a function: {type(fn).__name__}")
    return fn.body[1:]


def encode(grammar: Grammar, order: str, body: list[ast.stmt]) -> tuple[list[Action], list[tuple[Any, ...]]]:
    """Actions that build ``body`` in ``order``, and each action's position in the tree (a path of
    (field id, index) pairs: the same for both orders, so it aligns them)."""
    rule_of = {c.name: i for i, c in enumerate(grammar.constructors)}
    gold: dict[int, Any] = {}
    paths: dict[int, tuple[Any, ...]] = {-1: ()}
    frontier = Frontier(order)
    actions: list[Action] = []
    keys: list[tuple[Any, ...]] = []
    while not frontier.done:
        slot = frontier.slot
        f = grammar.fields[slot.field]
        value = _gold_value(grammar, gold, body, slot)
        key = paths[slot.node_step] + ((slot.field, slot.index),)
        step = len(actions)
        if value is _END or (value is None and f.card == "?"):
            action: Action = grammar.reduce
        elif f.type in PRIMITIVES:
            action = encode_value(f.type, value)
            if decode_value(f.type, action) != value or type(decode_value(f.type, action)) is not type(value):
                raise Unsupported(f"{type(value).__name__} constant {action[:20]!r} does not round-trip")
        elif value is None:
            if not f.holes:
                raise Unsupported(f"None in {f.name}")
            action = grammar.hole
        else:
            name = type(value).__name__
            if name not in rule_of or grammar.constructors[rule_of[name]].sort != f.type:
                raise Unsupported(f"{name} in a {f.type} field")
            action = rule_of[name]
            gold[step] = value
            paths[step] = key
        actions.append(action)
        keys.append(key)
        frontier = frontier.after(grammar, action, step)
    return actions, keys


_END = object()


def _gold_value(grammar: Grammar, gold: dict[int, Any], body: list[ast.stmt], slot: Slot) -> Any:
    f = grammar.fields[slot.field]
    value = body if slot.node_step < 0 else getattr(gold[slot.node_step], f.name, None)
    if f.card == "*":
        value = value or []
        return value[slot.index] if slot.index < len(value) else _END
    return value


def check_roundtrip(grammar: Grammar, body: list[ast.stmt]) -> dict[str, int]:
    """Encode in both orders and replay; Unsupported with the reason when the unparsed text differs.
    Returns the action counts."""
    want = unparse_body(body)
    counts = {}
    for order in ("preorder", "bfs"):
        actions, _ = encode(grammar, order, body)
        got = unparse_body(build_body(grammar, order, actions))
        if got != want:
            raise Unsupported(f"{order} replay differs from the original")
        counts[order] = len(actions)
    return counts
