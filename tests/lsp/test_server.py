"""The real `codegen-lsp serve` over stdio, driven by pytest-lsp with recorded editor capabilities,
on the scripted model package (exact output, fast)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from ._support import LIVE_DOC, PARTIAL_DOC, SERVER_CMD, TINY_DOC, apply_edits, open_doc, parses

CONFIG = ClientServerConfig(server_command=SERVER_CMD)


def _init(caps: str, options: dict[str, object]) -> types.InitializeParams:
    return types.InitializeParams(capabilities=client_capabilities(caps), initialization_options=options)


def _record_apply_edit(client: LanguageClient) -> list[types.ApplyWorkspaceEditParams]:
    applied: list[types.ApplyWorkspaceEditParams] = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        applied.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    client.applied_edits = applied  # type: ignore[attr-defined]
    return applied


@pytest_lsp.fixture(config=CONFIG)
async def vscode(lsp_client: LanguageClient, scripted_pkg: Path):
    _record_apply_edit(lsp_client)
    await lsp_client.initialize_session(
        _init("visual-studio-code", {"modelPath": str(scripted_pkg), "candidates": 3, "temperature": 0.7})
    )
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=CONFIG)
async def neovim(lsp_client: LanguageClient, scripted_pkg: Path):
    _record_apply_edit(lsp_client)
    await lsp_client.initialize_session(
        _init("neovim@v0.11", {"codegenLsp": {"modelPath": str(scripted_pkg), "candidates": 2}})
    )
    yield
    await lsp_client.shutdown_session()


async def test_capabilities_advertised(scripted_pkg: Path) -> None:
    client = await CONFIG.start()
    try:
        result = await client.initialize_session(_init("visual-studio-code", {"modelPath": str(scripted_pkg)}))
        caps = result.capabilities
        assert caps.completion_provider is not None
        assert caps.inline_completion_provider is not None
        assert isinstance(caps.code_action_provider, types.CodeActionOptions)
        assert caps.code_action_provider.resolve_provider is True
        assert caps.execute_command_provider is not None
        assert set(caps.execute_command_provider.commands) >= {
            "codegen-lsp.generateBody", "codegen-lsp.generateAllInFile"}
        assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental  # type: ignore[union-attr]
        await client.shutdown_session()
    finally:
        await client.stop()


async def test_completion_inserts_body_that_parses(vscode: LanguageClient, tmp_path: Path) -> None:
    uri = (tmp_path / "a.py").as_uri()
    open_doc(vscode, uri, LIVE_DOC)
    pos = types.Position(line=2, character=4)
    result = await vscode.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
    )
    assert isinstance(result, types.CompletionList) and result.items, "expected generated bodies"
    item = result.items[0]
    assert item.label.startswith("⚡ generate body")
    assert isinstance(item.text_edit, types.TextEdit)
    new_text = apply_edits(LIVE_DOC, [item.text_edit, *(item.additional_text_edits or [])])
    assert parses(new_text), new_text
    assert new_text.count("def check_value") == 1
    assert "\n    return" in new_text or "\n    if" in new_text


async def test_inline_completion_several_candidates(vscode: LanguageClient, tmp_path: Path) -> None:
    uri = (tmp_path / "b.py").as_uri()
    open_doc(vscode, uri, LIVE_DOC)
    result = await vscode.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=2, character=4),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
    )
    assert result is not None
    items = result.items if isinstance(result, types.InlineCompletionList) else result
    assert len(items) >= 2, "sampling 3 candidates should give several distinct bodies"
    for it in items:
        assert it.range is not None and isinstance(it.insert_text, str)
        assert parses(apply_edits(LIVE_DOC, [types.TextEdit(range=it.range, new_text=it.insert_text)]))
    assert len({it.insert_text for it in items}) == len(items), "duplicates must be removed"


async def test_no_site_no_items(vscode: LanguageClient, tmp_path: Path) -> None:
    uri = (tmp_path / "c.py").as_uri()
    open_doc(vscode, uri, "x = 1\ny = 2\n")
    result = await vscode.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=0))
    )
    assert result is None or not getattr(result, "items", result)


async def test_code_action_resolve_and_stale_edit(vscode: LanguageClient, tmp_path: Path) -> None:
    uri = (tmp_path / "d.py").as_uri()
    open_doc(vscode, uri, TINY_DOC)
    rng = types.Range(start=types.Position(line=3, character=0), end=types.Position(line=3, character=0))
    actions = await vscode.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=rng,
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert actions
    titles = [a.title for a in actions if isinstance(a, types.CodeAction)]
    assert "Generate body of get_total" in titles
    assert any(t.startswith("Generate bodies for all stubs in file (2)") for t in titles)
    one = next(a for a in actions if isinstance(a, types.CodeAction) and a.title == "Generate body of get_total")
    resolved = await vscode.code_action_resolve_async(one)
    assert resolved.edit is not None and resolved.edit.document_changes
    change = resolved.edit.document_changes[0]
    assert isinstance(change, types.TextDocumentEdit) and change.text_document.version == 1
    new_text = apply_edits(TINY_DOC, list(change.edits))  # type: ignore[arg-type]
    assert parses(new_text) and "    pass\n" not in new_text.split("def make_score")[0]

    # The document changes after the action was offered: resolving must not produce an edit.
    vscode.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)),
                text="# edited\n")],
        )
    )
    stale = await vscode.code_action_resolve_async(one)
    assert stale.edit is None


async def test_generate_all_command_applies_versioned_edit(vscode: LanguageClient, tmp_path: Path) -> None:
    uri = (tmp_path / "e.py").as_uri()
    open_doc(vscode, uri, TINY_DOC, version=7)
    ok = await vscode.workspace_execute_command_async(
        types.ExecuteCommandParams(command="codegen-lsp.generateAllInFile", arguments=[uri])
    )
    applied = vscode.applied_edits  # type: ignore[attr-defined]
    assert ok is True and len(applied) == 1
    change = applied[0].edit.document_changes[0]
    assert change.text_document.version == 7
    new_text = apply_edits(TINY_DOC, list(change.edits))
    assert parses(new_text)
    assert "pass" not in new_text and "..." not in new_text


async def test_generate_all_fills_what_it_can_and_says_what_it_could_not(vscode: LanguageClient, tmp_path: Path) -> None:
    uri = (tmp_path / "partial.py").as_uri()
    open_doc(vscode, uri, PARTIAL_DOC, version=3)
    ok = await vscode.workspace_execute_command_async(
        types.ExecuteCommandParams(command="codegen-lsp.generateAllInFile", arguments=[uri])
    )
    applied = vscode.applied_edits  # type: ignore[attr-defined]
    assert ok is True and len(applied) == 1
    new_text = apply_edits(PARTIAL_DOC, list(applied[0].edit.document_changes[0].edits))
    assert "    return total + value\n" in new_text and "    return score * size" in new_text
    assert new_text.split("def broken_ratio")[1].endswith('"""Return total divided by count."""\n    pass\n')
    warnings = [m.message for m in vscode.messages if m.type == types.MessageType.Warning]
    assert len(warnings) == 1, warnings
    assert "left 1 of 3 functions" in warnings[0]
    assert "broken_ratio: no valid body — 3 candidates refused:" in warnings[0]
    assert "was never closed" in warnings[0] and "invalid syntax" in warnings[0]


async def test_generate_body_with_no_valid_body_applies_nothing_and_says_why(
    vscode: LanguageClient, tmp_path: Path
) -> None:
    uri = (tmp_path / "only.py").as_uri()
    open_doc(vscode, uri, PARTIAL_DOC)
    line = PARTIAL_DOC.splitlines().index("def broken_ratio(total, count):")
    ok = await vscode.workspace_execute_command_async(
        types.ExecuteCommandParams(command="codegen-lsp.generateBody", arguments=[uri, line, 0])
    )
    assert ok is False and not vscode.applied_edits  # type: ignore[attr-defined]
    warnings = [m.message for m in vscode.messages if m.type == types.MessageType.Warning]
    assert len(warnings) == 1 and "left 1 of 1 functions" in warnings[0] and "broken_ratio" in warnings[0]


async def test_neovim_capabilities_code_action_flow(neovim: LanguageClient, tmp_path: Path) -> None:
    uri = (tmp_path / "f.py").as_uri()
    open_doc(neovim, uri, TINY_DOC)
    rng = types.Range(start=types.Position(line=8, character=4), end=types.Position(line=8, character=4))
    actions = await neovim.text_document_code_action_async(
        types.CodeActionParams(text_document=types.TextDocumentIdentifier(uri=uri), range=rng,
                               context=types.CodeActionContext(diagnostics=[]))
    )
    assert actions and any(isinstance(a, types.CodeAction) and "make_score" in a.title for a in actions)


async def test_invalid_settings_warn_and_fall_back(scripted_pkg: Path) -> None:
    client = await CONFIG.start()
    try:
        await client.initialize_session(
            _init("visual-studio-code", {"modelPath": str(scripted_pkg), "candidates": 99, "device": "tpu", "bogus": 1})
        )
        for _ in range(50):
            if client.messages:
                break
            await asyncio.sleep(0.1)
        texts = " ".join(m.message for m in client.messages)
        await client.shutdown_session()
    finally:
        await client.stop()
    assert "candidates=99" in texts and "device='tpu'" in texts and "bogus" in texts


async def test_reload_model_command(vscode: LanguageClient) -> None:
    ok = await vscode.workspace_execute_command_async(
        types.ExecuteCommandParams(command="codegen-lsp.reloadModel", arguments=[])
    )
    assert ok is True
