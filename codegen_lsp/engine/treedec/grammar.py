"""The transition system of ``tree-decoder`` packages: the abstract grammar read from the manifest,
the frontier of open fields in pre-order or breadth-first order, the valid actions at a field, the
primitive-token codec (with copying from the prompt) and the replay of actions into a Python AST.

Actions (TRANX): an int below ``len(constructors)`` applies that constructor at the frontier field;
``reduce`` ends a list field or leaves an optional one empty; ``hole`` puts ``None`` into a list that
allows it (dict unpacking keys, keyword-only arguments without default); a ``str`` generates a
primitive token. The training side (``models/treedec``) encodes bodies by driving this same frontier,
so both directions share one definition of each order.
"""

from __future__ import annotations

import ast
import keyword
import re
import textwrap
from dataclasses import dataclass
from typing import Any

PRIMITIVES = ("identifier", "string", "int", "constant")
ORDERS = ("preorder", "bfs")
Action = int | str


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    """A sort (``expr``, ``stmt``, ``arguments``...) or one of ``PRIMITIVES``."""
    card: str
    """``1`` single, ``?`` optional, ``*`` list."""
    min: int = 0
    """Fewest list elements that parse (an ``if`` needs a body)."""
    holes: bool = False
    """List elements may be ``None``."""


@dataclass(frozen=True)
class Constructor:
    name: str
    sort: str
    fields: tuple[int, ...]
    """Global field ids (index into ``Grammar.fields``)."""


class Grammar:
    """Constructors and fields; field 0 is the root's: the function body, ``stmt*``."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.fields = [Field(**f) for f in spec["fields"]]
        self.constructors = [Constructor(c["name"], c["sort"], tuple(c["fields"])) for c in spec["constructors"]]
        self.defaults: dict[str, dict[str, str]] = spec.get("defaults", {})
        """Per constructor, omitted fields and how to fill them (``load`` context, ``none``)."""
        self.reduce = len(self.constructors)
        self.hole = self.reduce + 1
        self.num_rules = self.hole + 1
        self.by_sort: dict[str, list[int]] = {}
        for i, c in enumerate(self.constructors):
            self.by_sort.setdefault(c.sort, []).append(i)
        for f in self.fields:
            if f.type not in PRIMITIVES and f.type not in self.by_sort:
                raise ValueError(f"field {f.name} has type {f.type!r}, which no constructor builds")
        self.classes = {}
        for c in self.constructors:
            cls = getattr(ast, c.name, None)
            if not (isinstance(cls, type) and issubclass(cls, ast.AST)):
                raise ValueError(f"this Python's ast module has no node type {c.name!r}")
            self.classes[c.name] = cls

    def is_primitive(self, field_id: int) -> bool:
        return self.fields[field_id].type in PRIMITIVES

    def closable(self, slot: Slot) -> bool:
        f = self.fields[slot.field]
        return f.card == "?" or (f.card == "*" and slot.index >= f.min)

    def valid_rules(self, slot: Slot) -> list[int]:
        """Constructor, reduce and hole actions allowed at a composite field."""
        f = self.fields[slot.field]
        out = list(self.by_sort[f.type])
        if self.closable(slot):
            out.append(self.reduce)
        if f.holes:
            out.append(self.hole)
        return out


@dataclass(frozen=True)
class Slot:
    """An open field: of the node created at step ``node_step`` (-1: the root), element ``index``."""

    node_step: int
    field: int
    index: int = 0


class Frontier:
    """Open fields, the next one first. Immutable: a beam hypothesis keeps its own."""

    __slots__ = ("order", "slots")

    def __init__(self, order: str, slots: tuple[Slot, ...] = (Slot(-1, 0),)) -> None:
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.order = order
        self.slots = slots

    @property
    def done(self) -> bool:
        return not self.slots

    @property
    def slot(self) -> Slot:
        return self.slots[0]

    def after(self, grammar: Grammar, action: Action, step: int) -> Frontier:
        """The frontier once ``action`` (taken at ``step``) fills the first slot."""
        slot, rest = self.slots[0], self.slots[1:]
        f = grammar.fields[slot.field]
        cont = (Slot(slot.node_step, slot.field, slot.index + 1),) if f.card == "*" and action != grammar.reduce else ()
        children: tuple[Slot, ...] = ()
        if isinstance(action, int) and action < grammar.reduce:
            children = tuple(Slot(step, fid) for fid in grammar.constructors[action].fields)
        if self.order == "preorder":  # the new node's subtree first, then its next sibling
            return Frontier(self.order, children + cont + rest)
        return Frontier(self.order, cont + rest + children)  # siblings now, children after this level


# -- primitive tokens -----------------------------------------------------------------------------
def encode_value(type_: str, value: Any) -> str:
    """A primitive value as one token (``decode_value`` inverts it)."""
    if type_ != "constant":
        return str(value)
    if value is Ellipsis:
        return "..."
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "1e999" if value > 0 else "-1e999"
    return repr(value)


def decode_value(type_: str, token: str) -> Any:
    """ValueError when ``token`` is no value of ``type_``."""
    if type_ == "int":
        return int(token)
    if type_ == "identifier":  # dotted in imports: ``from os.path import join``
        if not all(p.isidentifier() and not keyword.iskeyword(p) for p in token.split(".")):
            raise ValueError(f"not an identifier: {token!r}")
        return token
    if type_ == "string":
        return token
    if token == "...":
        return Ellipsis
    try:
        return ast.literal_eval(token)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise ValueError(f"not a constant: {token!r}") from exc


def token_fits(type_: str, token: str) -> bool:
    try:
        decode_value(type_, token)
    except ValueError:
        return False
    return True


_NUMBER = re.compile(r"^[0-9]+$")


def copy_value(type_: str, source_token: str) -> str | None:
    """The token that copying ``source_token`` from the prompt writes into a field of ``type_``
    (identifiers as they are, words as string literals, digits as numbers), or None."""
    if type_ == "identifier":
        return source_token if source_token.isidentifier() and not keyword.iskeyword(source_token) else None
    if type_ == "int":
        return source_token if _NUMBER.match(source_token) else None
    if type_ == "constant":
        return repr(int(source_token)) if _NUMBER.match(source_token) else repr(source_token)
    return None


# -- replay -----------------------------------------------------------------------------------------
def build_body(grammar: Grammar, order: str, actions: list[Action]) -> list[ast.stmt]:
    """Replay a complete action sequence into the body's statements. ValueError when the sequence
    is not a complete tree of this grammar."""
    root: list[Any] = []
    nodes: dict[int, ast.AST] = {}
    frontier = Frontier(order)
    for step, action in enumerate(actions):
        if frontier.done:
            raise ValueError(f"action {step} after the tree is complete")
        slot = frontier.slot
        f = grammar.fields[slot.field]
        value: Any
        if action == grammar.reduce:
            if not grammar.closable(slot):
                raise ValueError(f"reduce at step {step} where field {f.name} needs a value")
            if f.card == "?":
                _assign(nodes, root, slot, f, None)
        else:
            if action == grammar.hole:
                if not f.holes:
                    raise ValueError(f"hole at step {step} in field {f.name}")
                value = None
            elif isinstance(action, str):
                if f.type not in PRIMITIVES:
                    raise ValueError(f"token at step {step} in composite field {f.name}")
                value = decode_value(f.type, action)
            else:
                if f.type in PRIMITIVES or action not in grammar.by_sort[f.type]:
                    raise ValueError(f"rule {action} at step {step} does not build a {f.type}")
                value = _new_node(grammar, action)
                nodes[step] = value
            _assign(nodes, root, slot, f, value)
        frontier = frontier.after(grammar, action, step)
    if not frontier.done:
        raise ValueError(f"incomplete tree: {len(frontier.slots)} open fields")
    return root


def _new_node(grammar: Grammar, rule: int) -> ast.AST:
    c = grammar.constructors[rule]
    node = grammar.classes[c.name]()
    for fid in c.fields:
        f = grammar.fields[fid]
        setattr(node, f.name, [] if f.card == "*" else None)
    for name, how in grammar.defaults.get(c.name, {}).items():
        setattr(node, name, ast.Load() if how == "load" else None)
    return node


def _assign(nodes: dict[int, ast.AST], root: list[Any], slot: Slot, f: Field, value: Any) -> None:
    if slot.node_step < 0:
        root.append(value)
    elif f.card == "*":
        getattr(nodes[slot.node_step], f.name).append(value)
    else:
        setattr(nodes[slot.node_step], f.name, value)


def unparse_body(body: list[ast.stmt]) -> str:
    """``ast.unparse`` of statements (locations filled in: the unparser reads line numbers)."""
    return ast.unparse(ast.fix_missing_locations(ast.Module(body=body, type_ignores=[])))


def render(body: list[ast.stmt], indent: str) -> str:
    """The body as the continuation of a prompt that ends after the docstring: a newline, then the
    statements at ``indent``. ValueError when the tree does not unparse to code that parses."""
    try:
        code = unparse_body(body)
        ast.parse(code)
    except (SyntaxError, ValueError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise ValueError(f"tree does not render to valid Python: {exc}") from exc
    return "\n" + textwrap.indent(code, indent)
