"""The workspace index in the server: built in the background when workspace context is on, with
``$/progress``; kept current on save, close and watched-file changes. Index work runs on its own
thread, never on the event loop or the inference worker."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.uris import to_fs_path

from ..workspace.context import Workspace
from ..workspace.dense import attach_retriever
from ..workspace.index import IndexLimits, WorkspaceIndex

if TYPE_CHECKING:
    from ..server import CodegenServer

log = logging.getLogger(__name__)

_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="codegen-index")


def uri_path(uri: str) -> Path | None:
    path = to_fs_path(uri) if uri.startswith("file:") else None
    return Path(path) if path else None


def workspace_roots(ls: CodegenServer) -> list[Path]:
    folders = [uri_path(f.uri) for f in (ls.workspace.folders or {}).values()]
    roots = [p for p in folders if p is not None and p.is_dir()]
    if not roots and ls.workspace.root_path and Path(ls.workspace.root_path).is_dir():
        roots = [Path(ls.workspace.root_path)]
    return roots


def start_indexing(ls: CodegenServer) -> None:
    """Index the workspace folders in the background (once), if workspace context is on."""
    if ls.settings.workspace_context == "off" or ls.generator.workspace is not None:
        return
    roots = workspace_roots(ls)
    if not roots:
        log.info("workspace context is on but the client named no workspace folder; nothing to index")
        return
    s = ls.settings
    limits = IndexLimits(s.index_max_files, s.index_max_file_kb << 10, s.index_max_mb << 20)
    indexes = [WorkspaceIndex(root, limits) for root in roots]
    ls.generator.workspace = Workspace(indexes)  # usable at once; it fills as the build goes
    asyncio.get_running_loop().create_task(_build_with_progress(ls, indexes))


async def _build_with_progress(ls: CodegenServer, indexes: list[WorkspaceIndex]) -> None:
    from .lifecycle import begin_progress

    maybe = await begin_progress(ls, "indexing workspace", percentage=0)
    progress, token = maybe is not None, maybe or ""

    def report(done: int, total: int) -> None:
        if progress:
            ls.on_loop(ls.work_done_progress.report, token, types.WorkDoneProgressReport(
                message=f"indexing workspace: {done}/{total} files", percentage=int(100 * done / max(total, 1))))

    loop = asyncio.get_running_loop()
    retriever = ls.settings.retriever_path
    ws = ls.generator.workspace
    for index in indexes:
        try:
            await loop.run_in_executor(_POOL, index.build, report)
            if retriever and ws is not None:
                ws.searchers[index.root] = await loop.run_in_executor(_POOL, attach_retriever, index, retriever)
        except Exception as exc:  # noqa: BLE001 - an unreadable tree or a bad retriever must not take the server down
            log.error("workspace index of %s: %s: %s", index.root, type(exc).__name__, exc)
    if progress:
        total = sum(i.stats.symbols for i in indexes)
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=f"indexed {total} definitions"))


def file_changed(ls: CodegenServer, uri: str, text: str | None) -> None:
    """Re-index one file (its saved text, or what is on disk when ``text`` is None)."""
    path, ws = uri_path(uri), ls.generator.workspace
    if path is None or ws is None or path.suffix != ".py":
        return
    index, rel = ws.index_for(path)
    if index is None or rel is None:
        return

    def work() -> None:
        try:
            data = text.encode("utf-8") if text is not None else path.read_bytes()
        except OSError:
            index.remove(path)
            return
        index.update(path, data)

    _POOL.submit(work)


def file_deleted(ls: CodegenServer, uri: str) -> None:
    path, ws = uri_path(uri), ls.generator.workspace
    if path is not None and ws is not None:
        index, _ = ws.index_for(path)
        if index is not None:
            _POOL.submit(index.remove, path)


def register(ls: CodegenServer) -> None:
    @ls.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(params: types.DidSaveTextDocumentParams) -> None:
        doc = ls.docs.get(params.text_document.uri)
        file_changed(ls, params.text_document.uri, doc.data.decode("utf-8", "replace") if doc is not None else None)

    @ls.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(params: types.DidChangeWatchedFilesParams) -> None:
        for change in params.changes:
            if change.type == types.FileChangeType.Deleted:
                file_deleted(ls, change.uri)
            else:
                file_changed(ls, change.uri, None)
