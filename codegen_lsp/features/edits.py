"""Turn grammar-checked bodies into LSP completion items, inline items and workspace edits."""

from __future__ import annotations

from lsprotocol import types

from ..analysis.document import Document
from ..analysis.grammar import Candidate, body_edit
from ..analysis.sites import FunctionSite

LABEL = "⚡ generate body"
SOURCE = "codegen-lsp"


def _pos(p: tuple[int, int]) -> types.Position:
    return types.Position(line=p[0], character=p[1])


def _range(start: tuple[int, int], end: tuple[int, int]) -> types.Range:
    return types.Range(start=_pos(start), end=_pos(end))


def text_edit(doc: Document, site: FunctionSite, body: str) -> types.TextEdit:
    start, end, new_text = body_edit(doc, site, body)
    return types.TextEdit(range=_range(start, end), new_text=new_text)


def _preview(body: str, lines: int = 12) -> str:
    shown = body.splitlines()[:lines]
    more = "\n# …" if len(body.splitlines()) > lines else ""
    return "```python\n" + "\n".join(shown) + more + "\n```"


def completion_items(
    doc: Document, site: FunctionSite, candidates: list[Candidate], cursor: types.Position, seconds: float
) -> list[types.CompletionItem]:
    """One item per candidate. The LSP requires the main edit to be single-line and to contain the
    cursor; when the body replaces other lines (a stub below the cursor) those go in
    additionalTextEdits and the main edit is empty at the cursor."""
    items = []
    for i, cand in enumerate(candidates):
        edit = text_edit(doc, site, cand.body)
        r = edit.range
        single = r.start.line == r.end.line == cursor.line
        contains = single and r.start.character <= cursor.character <= r.end.character
        if contains:
            main, extra = edit, None
        else:
            main = types.TextEdit(range=types.Range(start=cursor, end=cursor), new_text="")
            extra = [edit]
        first = next((ln.strip() for ln in cand.body.splitlines() if ln.strip()), "")
        items.append(
            types.CompletionItem(
                label=LABEL if i == 0 else f"{LABEL} ({i + 1})",
                label_details=types.CompletionItemLabelDetails(description=SOURCE),
                kind=types.CompletionItemKind.Snippet,
                detail=f"{site.qualname}: {first[:60]}  ({seconds * 1000:.0f} ms"
                + (", partial: stopped by the time budget or token limit)" if cand.partial else ")"),
                documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=_preview(cand.body)),
                text_edit=main,
                additional_text_edits=extra,
                insert_text_format=types.InsertTextFormat.PlainText,
                filter_text=main.new_text or LABEL,
                sort_text=f"!{i:02d}",  # before ordinary completions
                preselect=i == 0,
            )
        )
    return items


def inline_items(
    doc: Document, site: FunctionSite, candidates: list[Candidate], cursor: types.Position
) -> list[types.InlineCompletionItem]:
    """Ghost text must start at the cursor's line and begin with the text already in its range, so
    the range runs from the replaced span's start to the cursor (or the span's end, if later)."""
    items = []
    for cand in candidates:
        edit = text_edit(doc, site, cand.body)
        r = edit.range
        end = r.end
        if (cursor.line, cursor.character) > (end.line, end.character):
            end = cursor
        items.append(types.InlineCompletionItem(insert_text=edit.new_text, range=types.Range(start=r.start, end=end)))
    return items


def document_edit(uri: str, version: int, edits: list[types.TextEdit]) -> types.WorkspaceEdit:
    """A versioned edit: the client rejects it if the document changed since ``version``."""
    return types.WorkspaceEdit(
        document_changes=[
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                edits=list(edits),
            )
        ]
    )
