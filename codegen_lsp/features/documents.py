"""Open documents as analysis Documents, kept current with incremental edits."""

from __future__ import annotations

import logging

from lsprotocol import types

from ..analysis.document import Document

log = logging.getLogger(__name__)

# Beyond this size a document is tracked but never analysed: parsing stays cheap, nothing hangs.
MAX_DOCUMENT_BYTES = 2_000_000


class DocumentStore:
    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}

    def get(self, uri: str) -> Document | None:
        doc = self._docs.get(uri)
        if doc is None or len(doc.data) > MAX_DOCUMENT_BYTES:  # bytes: no decode per request
            return None
        return doc

    def open(self, params: types.DidOpenTextDocumentParams) -> None:
        td = params.text_document
        if td.language_id not in ("python", "py", ""):
            return
        self._docs[td.uri] = Document.from_text(td.text, version=td.version)

    def change(self, params: types.DidChangeTextDocumentParams) -> None:
        doc = self._docs.get(params.text_document.uri)
        if doc is None:
            return
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                r = change.range
                doc.apply_change(r.start.line, r.start.character, r.end.line, r.end.character, change.text)
            else:
                self._docs[params.text_document.uri] = doc = Document.from_text(change.text)
        doc.version = params.text_document.version

    def close(self, params: types.DidCloseTextDocumentParams) -> None:
        self._docs.pop(params.text_document.uri, None)
