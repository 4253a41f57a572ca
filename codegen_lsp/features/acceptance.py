"""Acceptance events from the editors, shaped like the Copilot language server's, under our namespace:

* ``codegenLsp/didShowCompletion`` ``{item}``: an inline item became visible;
* ``codegenLsp/didPartiallyAcceptCompletion`` ``{item, acceptedLength}``: the user took part of it
  (a word, a line); ``acceptedLength`` counts from the start of the item's ``insertText``;
* the item's own command ``codegen-lsp.didAcceptCompletion [id]`` (run by the editor on accept), or
  the notification ``codegenLsp/didAcceptCompletion`` ``{item}`` for clients that do not run it.

``item`` is what the server sent: its id is the first argument of its command. Counts go to
codegen_lsp/stats.py (local only).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types

if TYPE_CHECKING:
    from ..server import CodegenServer

log = logging.getLogger(__name__)

ACCEPT_COMMAND = "codegen-lsp.didAcceptCompletion"
DID_SHOW = "codegenLsp/didShowCompletion"
DID_PARTIALLY_ACCEPT = "codegenLsp/didPartiallyAcceptCompletion"
DID_ACCEPT = "codegenLsp/didAcceptCompletion"
FLUSH_DELAY_S = 2.0


def accept_command(sid: str) -> types.Command:
    """The command an item carries: the editor runs it when the item is accepted."""
    return types.Command(title="codegen-lsp: suggestion accepted", command=ACCEPT_COMMAND, arguments=[sid])


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def suggestion_id(params: Any) -> str | None:
    """The id in ``{item: {command: {arguments: [id]}}}`` (or a bare ``{id}``); None if absent."""
    sid = _field(params, "id")
    if isinstance(sid, str):
        return sid
    args = _field(_field(_field(params, "item"), "command"), "arguments")
    if isinstance(args, (list, tuple)) and args and isinstance(args[0], str):
        return args[0]
    return None


def tag_completion_items(ls: CodegenServer, items: list[types.CompletionItem]) -> None:
    """Give each "generate body" item its suggestion id (the editor runs the command on accept).
    The list is on screen when it is answered: its first item counts as shown."""
    for i, item in enumerate(items):
        body = item.additional_text_edits[0] if item.additional_text_edits else item.text_edit
        sid = ls.acceptance.offer(ls.model_name(), body.new_text if body else "")
        if i == 0:
            ls.acceptance.shown(sid)
        item.command = accept_command(sid)


def schedule_flush(ls: CodegenServer) -> None:
    """Write the counts to disk soon (one write for a burst of events)."""
    if getattr(ls, "_stats_flush", None) is not None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return

    def flush() -> None:
        ls._stats_flush = None
        ls.acceptance.flush()

    ls._stats_flush = loop.call_later(FLUSH_DELAY_S, flush)


def register(ls: CodegenServer) -> None:
    atexit.register(ls.acceptance.flush)  # an editor that exits without shutdown keeps its counts
    def handle(kind: str, params: Any) -> None:
        sid = suggestion_id(params)
        if sid is None or not ls.acceptance.known(sid):
            log.debug("%s for an unknown suggestion %r ignored", kind, sid)
            return
        if kind == DID_SHOW:
            counted = ls.acceptance.shown(sid)
        elif kind == DID_PARTIALLY_ACCEPT:
            n = _field(params, "acceptedLength")
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                log.warning("%s without a valid acceptedLength ignored", kind)
                return
            counted = ls.acceptance.partially_accepted(sid, n)
        else:
            counted = ls.acceptance.accepted(sid)
        log.debug("%s %s%s", kind, sid, "" if counted else " (already counted)")
        if counted:
            schedule_flush(ls)

    @ls.feature(DID_SHOW)
    def did_show(params: Any) -> None:
        handle(DID_SHOW, params)

    @ls.feature(DID_PARTIALLY_ACCEPT)
    def did_partially_accept(params: Any) -> None:
        handle(DID_PARTIALLY_ACCEPT, params)

    @ls.feature(DID_ACCEPT)
    def did_accept(params: Any) -> None:
        handle(DID_ACCEPT, params)

    @ls.command(ACCEPT_COMMAND)
    def accepted(sid: str) -> None:
        handle(DID_ACCEPT, {"id": sid})
