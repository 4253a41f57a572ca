""""Generate body" code actions (resolved lazily) and the matching workspace commands.

Edits are computed for the document version the action was offered on; if the document changed
before the edit is ready, the edit is dropped rather than applied to text it was not made for.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from ..analysis.sites import FunctionSite, find_sites, site_at
from .edits import document_edit, text_edit
from .progress import Job

if TYPE_CHECKING:
    from ..server import CodegenServer

log = logging.getLogger(__name__)

KIND = "refactor.rewrite.codegen"
APPLY_EDIT_TIMEOUT_S = 60
TITLE_ONE = "Generate body of {name}"
TITLE_ALL = "Generate bodies for all stubs in file ({n})"


def _overlaps(site: FunctionSite, rng: types.Range) -> bool:
    return site.header_start.line <= rng.end.line and rng.start.line <= site.replace_end[0]


def actions_for_range(
    ls: CodegenServer, params: types.CodeActionParams, sites: list[FunctionSite], version: int
) -> list[types.CodeAction]:
    uri = params.text_document.uri
    if params.context.only and not any(KIND.startswith(k) or k.startswith(KIND) for k in params.context.only):
        return []
    out = []
    for site in sites:
        if _overlaps(site, params.range):
            out.append(
                types.CodeAction(
                    title=TITLE_ONE.format(name=site.qualname),
                    kind=KIND,
                    data={"uri": uri, "version": version, "line": site.header_start.line, "all": False},
                )
            )
    if sites:
        out.append(
            types.CodeAction(
                title=TITLE_ALL.format(n=len(sites)),
                kind=KIND,
                data={"uri": uri, "version": version, "line": -1, "all": True},
            )
        )
    if not _client_resolves_edit(ls):  # else the edit arrives in codeAction/resolve
        for a in out:
            data: dict[str, Any] = a.data or {}
            a.command = types.Command(
                title=a.title,
                command="codegen-lsp.generateAllInFile" if data["all"] else "codegen-lsp.generateBody",
                arguments=[uri] if data["all"] else [uri, data["line"], 0],
            )
            a.data = None
    return out


def _client_resolves_edit(ls: CodegenServer) -> bool:
    caps = ls.client_capabilities.text_document
    ca = caps.code_action if caps else None
    rs = ca.resolve_support if ca else None
    return bool(rs and "edit" in rs.properties)


async def _edits(ls: CodegenServer, uri: str, sites: list[FunctionSite]) -> tuple[list[types.TextEdit], list[str]]:
    """The best body of each site as an edit, and one line per site that got none saying why.
    Runs as a cancellable progress: a cancel keeps the bodies made so far."""
    edits: list[types.TextEdit] = []
    unfilled: list[str] = []
    done: list[FunctionSite] = []
    plural = "body" if len(sites) == 1 else "bodies"
    job = await Job.start(ls, f"generating {len(sites)} {plural}")

    async def work() -> None:
        for i, site in enumerate(sites):
            job.report(f"{site.qualname} ({i + 1}/{len(sites)})", i, len(sites))
            result = await ls.site_bodies(uri, site, n=None, supersede=False)
            done.append(site)
            doc = ls.docs.get(uri)
            if result is None or doc is None:
                unfilled.append(f"{site.qualname}: not generated (cancelled, or the model is unavailable)")
                continue
            if not result.candidates:
                unfilled.append(result.unfilled_reason or f"{site.qualname}: no valid body")
                continue
            if result.candidates[0].partial:  # every candidate was cut short: do not apply half a body
                unfilled.append(f"{site.qualname}: only a partial body (decoding stopped by the time budget or "
                                "token limit; raise codegenLsp.timeBudgetMs or maxTokens)")
                continue
            edits.append(text_edit(doc, site, result.candidates[0].body))

    try:
        finished = await job.run(work())
    finally:
        job.end(f"generated {len(edits)} of {len(sites)}")
    if not finished:
        unfilled.extend(f"{s.qualname}: cancelled" for s in sites if s not in done)
    return edits, unfilled


def _tell_unfilled(ls: CodegenServer, unfilled: list[str], total: int) -> None:
    """The user asked for bodies: say which functions got none and why (a message, not only the log)."""
    if not unfilled:
        return
    for line in unfilled:
        log.warning("%s", line)
    head = f"codegen-lsp: left {len(unfilled)} of {total} functions as they were"
    ls.window_show_message(types.ShowMessageParams(
        type=types.MessageType.Warning, message=head + "\n" + "\n".join(unfilled)))


def _sites(ls: CodegenServer, uri: str, line: int, all_sites: bool) -> list[FunctionSite]:
    doc = ls.docs.get(uri)
    if doc is None:
        return []
    if all_sites:
        return find_sites(doc)
    site = site_at(doc, line, 0) or next((s for s in find_sites(doc) if s.header_start.line == line), None)
    return [site] if site else []


def register(ls: CodegenServer, cmd_one: str, cmd_all: str) -> None:
    @ls.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(action: types.CodeAction) -> types.CodeAction:
        data: Any = action.data or {}
        uri, version = data.get("uri"), data.get("version")
        doc = ls.docs.get(uri) if uri else None
        if doc is None or doc.version != version:
            log.info("code action for %s is stale (document changed); no edit", uri)
            return action
        sites = _sites(ls, uri, data.get("line", -1), bool(data.get("all")))
        edits, unfilled = await _edits(ls, uri, sites)
        doc = ls.docs.get(uri)
        if doc is None or doc.version != version:
            return action
        if edits:
            action.edit = document_edit(uri, version, edits)
        _tell_unfilled(ls, unfilled, len(sites))
        return action

    # pygls 2 spreads ExecuteCommandParams.arguments over the parameters, typed by annotation.
    @ls.command(cmd_one)
    async def generate_body(uri: str, line: int, character: int = 0) -> bool:
        return await _apply(ls, uri, _sites(ls, uri, line, False))

    @ls.command(cmd_all)
    async def generate_all(uri: str) -> bool:
        return await _apply(ls, uri, _sites(ls, uri, -1, True))


async def _apply(ls: CodegenServer, uri: str, sites: list[FunctionSite]) -> bool:
    doc = ls.docs.get(uri)
    if doc is None or not sites:
        return False
    version = doc.version
    edits, unfilled = await _edits(ls, uri, sites)
    doc = ls.docs.get(uri)
    if doc is None or doc.version != version:
        msg = "codegen-lsp: the file changed while bodies were generated; nothing applied (run it again)"
        log.info("%s: %s", uri, msg)
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Info, message=msg))
        return False
    _tell_unfilled(ls, unfilled, len(sites))
    if not edits:
        return False
    try:  # a client that never answers must not hold the command (and its request) forever
        result = await asyncio.wait_for(ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=document_edit(uri, version, edits), label="Generate body")
        ), timeout=APPLY_EDIT_TIMEOUT_S)
    except asyncio.TimeoutError:
        log.warning("%s: the editor did not answer workspace/applyEdit in %d s", uri, APPLY_EDIT_TIMEOUT_S)
        return False
    return bool(result and result.applied)
