"""textDocument/inlineCompletion: when to generate, which candidates to show, and continuing a
suggestion the user accepted part of without generating again.

* automatic requests wait for a pause in typing (features/triggers.py) and stay quiet in the middle
  of a word inside a string or comment; an invoked request (Alt+\\, the generate command) runs now;
* a line being typed (a ``live`` site with text on it) gets that statement finished, not a whole
  body; an empty body or a stub gets the whole body;
* a suggestion whose lines repeat the code right below is dropped;
* every item carries its suggestion id in its command (acceptance stats, features/acceptance.py);
* after a partial accept (word, line) the document holds a prefix of a shown item: the rest is
  answered from the items already sent, the same ids, no model call; once a finished line is taken
  (and Enter pressed), the whole body it came from continues the same way.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import logging
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsprotocol import types

from ..analysis.document import Document
from ..analysis.grammar import Candidate, check_body
from ..analysis.sites import FunctionSite
from ..analysis.triggers import quiet_spot
from ..generation import typed_prefix
from .acceptance import accept_command
from .edits import inline_items

if TYPE_CHECKING:
    from ..server import CodegenServer

log = logging.getLogger(__name__)

_COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.FunctionDef,
             ast.AsyncFunctionDef, ast.ClassDef, ast.Match, *((ast.TryStar,) if hasattr(ast, "TryStar") else ()))
_DUP_LINES = 3


def first_statement(body: str) -> str | None:
    """The body's first statement (with any comment lines before it) when it is a simple statement
    that ends before the body does; None when the body is one statement or opens a block."""
    try:
        tree = ast.parse(textwrap.dedent(body))
    except SyntaxError:
        return None
    if len(tree.body) < 2 or isinstance(tree.body[0], _COMPOUND):
        return None
    end = tree.body[0].end_lineno or 0
    return "\n".join(body.split("\n")[:end])


def shape(doc: Document, site: FunctionSite, cand: Candidate) -> Candidate:
    """A live line being typed is finished (its statement only) when that statement stands on its
    own; anything else keeps the whole body."""
    if not typed_prefix(doc, site):
        return cand
    first = first_statement(cand.body)
    if first is None or not check_body(doc, site, first).ok:
        return cand
    return dataclasses.replace(cand, body=first)


def duplicates_below(doc: Document, end: types.Position, new_text: str) -> bool:
    """Whether the suggestion's first lines are the lines that already follow its range."""
    ours = [ln.strip() for ln in new_text.splitlines() if ln.strip()][:_DUP_LINES]
    if not ours:
        return False
    after = doc.data[doc.offset_at(end.line, end.character):].decode("utf-8", "replace")
    below = [ln.strip() for ln in after.splitlines() if ln.strip()][:len(ours)]
    return below == ours


@dataclass
class _Offer:
    before: bytes
    """The document before the items' range start."""
    after: bytes
    """The document after the cursor (the items' range ends at the cursor)."""
    texts: list[str]
    ids: list[str]
    later: list[tuple[str, str]]
    """(text, id) of whole bodies behind single-line items: offered once the line is taken."""


class InlineOffers:
    """The last inline items sent for each document."""

    def __init__(self) -> None:
        self._by_uri: dict[str, _Offer] = {}

    def remember(self, uri: str, doc: Document, cursor: types.Position,
                 items: list[types.InlineCompletionItem], ids: list[str],
                 later: list[tuple[str, str]] | None = None) -> None:
        self._by_uri.pop(uri, None)
        if not items:
            return
        rng = items[0].range
        if rng is None or any(it.range != rng for it in items) or rng.end != cursor:
            return  # only items that end at the cursor continue cleanly
        start = doc.offset_at(rng.start.line, rng.start.character)
        c = doc.offset_at(cursor.line, cursor.character)
        self._by_uri[uri] = _Offer(doc.data[:start], doc.data[c:], [str(it.insert_text) for it in items], ids,
                                   later or [])

    def forget(self, uri: str) -> None:
        self._by_uri.pop(uri, None)

    def continue_at(self, uri: str, doc: Document, cursor: types.Position) -> list[types.InlineCompletionItem]:
        """Items continuing a shown suggestion of which the document now holds a longer prefix."""
        offer = self._by_uri.get(uri)
        if offer is None:
            return []
        data, c = doc.data, doc.offset_at(cursor.line, cursor.character)
        if not (data.startswith(offer.before) and data.endswith(offer.after) and len(data) - len(offer.after) == c
                and c >= len(offer.before)):
            return []
        typed = data[len(offer.before):c]
        start = doc.position_at(len(offer.before))
        rng = types.Range(start=types.Position(*start), end=cursor)
        for pairs in (list(zip(offer.texts, offer.ids, strict=True)), offer.later):
            out = [types.InlineCompletionItem(insert_text=text, range=rng, command=accept_command(sid))
                   for text, sid in pairs if text.encode("utf-8").startswith(typed) and len(text.encode()) > len(typed)]
            if out:
                return out
        return []


async def answer(ls: CodegenServer, params: types.InlineCompletionParams) -> types.InlineCompletionList | None:
    uri, pos = params.text_document.uri, params.position
    doc = ls.docs.get(uri)
    if doc is None:
        return None
    continued = ls.inline_offers.continue_at(uri, doc, pos)
    if continued:
        log.debug("inline: continuing the shown suggestion at %d:%d (no generation)", pos.line, pos.character)
        return types.InlineCompletionList(items=continued)
    if params.context.trigger_kind != types.InlineCompletionTriggerKind.Invoked:
        if quiet_spot(doc, pos.line, pos.character):
            log.debug("inline: in a word inside a string or comment; no automatic suggestion")
            return None
        wait = ls.typing.wait_s(uri, ls.settings.debounce_ms)
        if wait > 0:
            version = doc.version
            await asyncio.sleep(wait)
            current = ls.docs.get(uri)
            if current is None or current.version != version:
                log.debug("inline: the document changed during the %.0f ms pause; not generating", wait * 1000)
                return None
    found = await ls.bodies_at(uri, pos)
    if found is None or not found[2].candidates:
        return None
    snap, site, result = found
    shaped: list[Candidate] = []
    for cand in result.candidates:
        c = shape(snap, site, cand)
        if all(c.body != s.body for s in shaped):
            shaped.append(c)
    items = []
    for item in inline_items(snap, site, shaped, pos):
        if duplicates_below(snap, item.range.end if item.range else pos, str(item.insert_text)):
            log.debug("inline: dropped a suggestion that repeats the code below it")
            continue
        items.append(item)
    if not items:
        return None
    ids = [_offer(ls, snap, item, pos) for item in items]
    shown = {str(it.insert_text) for it in items}
    wholes = [it for it in inline_items(snap, site, result.candidates, pos) if str(it.insert_text) not in shown]
    later = [(str(it.insert_text), _offer(ls, snap, it, pos)) for it in wholes]
    current = ls.docs.get(uri)
    if current is not None and current.version == snap.version:
        ls.inline_offers.remember(uri, snap, pos, items, ids, later)
    return types.InlineCompletionList(items=items)


def _offer(ls: CodegenServer, doc: Document, item: types.InlineCompletionItem, pos: types.Position) -> str:
    """Register ``item`` for the acceptance stats and give it its accept command; its id."""
    rng = item.range
    typed = len(doc.data[doc.offset_at(rng.start.line, rng.start.character):
                         doc.offset_at(pos.line, pos.character)].decode("utf-8", "replace")) if rng else 0
    sid = ls.acceptance.offer(ls.model_name(), str(item.insert_text), typed)
    item.command = accept_command(sid)
    return sid
