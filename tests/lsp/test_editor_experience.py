"""Editor experience through the real server over stdio (pytest-lsp, VS Code's recorded
capabilities, the scripted model): partial accept continues without generating, acceptance stats
land in the cache dir and `codegen-lsp stats` reports them, automatic requests wait for typing and
stay quiet inside words in strings, a typed line gets only its statement finished, and generate-all
is a cancellable progress."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from ._support import SERVER_CMD, open_doc

ADD = 'def add(a, b):\n    """Return the sum of a and b."""\n    '
GREET = 'def greet(name):\n    """Return a greeting for name."""\n    return "hello wor'
LONG = 'def long_sum(a, b, c):\n    """Return the sum of a, b and c, one step at a time."""\n    total = a +'
STUBS = "".join(f'def get_value{i}(value, size):\n    """Return value multiplied by size."""\n    pass\n\n\n'
                for i in range(40))
ACCEPT = "codegen-lsp.didAcceptCompletion"
CHECK = 'def check_value(value, size):\n    """Return True if value is greater than size."""\n    '
CHECK_BODIES = ["\n    return value > size", "\n    if value > size:\n        return True\n    return False"]


async def _client(tmp_path: Path, pkg: Path, **options: object) -> tuple[LanguageClient, dict[str, str]]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    client = await ClientServerConfig(server_command=SERVER_CMD, server_env=env).start()
    await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        initialization_options={"modelPath": str(pkg), "candidates": 1, **options}))
    return client, env


async def _close(client: LanguageClient) -> None:
    """Stop the client; a server a failed test left running is killed, not waited for."""
    server = client._server  # noqa: SLF001 - pytest-lsp keeps the process here
    if server is not None and server.returncode is None:
        await asyncio.sleep(0.5)  # time for an orderly exit after shutdown_session
        if server.returncode is None:
            server.kill()
    await client.stop()


def _inline(client: LanguageClient, uri: str, line: int, char: int, invoked: bool = True):  # type: ignore[no-untyped-def]
    kind = types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
    return client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=char),
        context=types.InlineCompletionContext(trigger_kind=kind)))


def _insert(client: LanguageClient, uri: str, version: int, line: int, char: int, text: str) -> None:
    pos = types.Position(line=line, character=char)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text=text)]))


def _stats(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "codegen_lsp", "stats", *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


async def test_partial_accept_continues_from_the_shown_item_and_is_counted(tmp_path: Path, scripted_pkg: Path) -> None:
    client, env = await _client(tmp_path, scripted_pkg)
    try:
        uri = (tmp_path / "add.py").as_uri()
        open_doc(client, uri, ADD)
        first = await _inline(client, uri, 2, 4)
        assert first is not None and len(first.items) == 1
        item = first.items[0]
        assert item.insert_text == "\n    return a + b"
        assert item.command is not None and item.command.command == ACCEPT
        sid = item.command.arguments[0]  # type: ignore[index]
        wire_item = {"insertText": item.insert_text, "command": {"title": "", "command": ACCEPT, "arguments": [sid]}}
        client.protocol.notify("codegenLsp/didShowCompletion", {"item": wire_item})

        _insert(client, uri, 2, 2, 4, "return")  # "accept next word"
        client.protocol.notify("codegenLsp/didPartiallyAcceptCompletion",
                               {"item": wire_item, "acceptedLength": len("\n    return")})
        rest = await _inline(client, uri, 2, 10, invoked=False)
        assert rest is not None and [i.insert_text for i in rest.items] == [item.insert_text]
        assert rest.items[0].range is not None and rest.items[0].range.end == types.Position(line=2, character=10)
        assert rest.items[0].command is not None and list(rest.items[0].command.arguments or []) == [sid]

        _insert(client, uri, 3, 2, 10, " a + b")  # accept the rest: the editor runs the item's command
        await client.workspace_execute_command_async(types.ExecuteCommandParams(command=ACCEPT, arguments=[sid]))
        await client.shutdown_session()
    finally:
        await _close(client)

    stats = json.loads(_stats(env, "--json"))
    assert len(stats) == 1, stats
    (model, s), = stats.items()
    assert (s["shown"], s["accepted"], s["partially_accepted"], s["kept"]) == (1, 1, 1, 1)
    assert s["chars_shown"] == s["chars_kept"] == len("return a + b")
    assert len(s["latencies_ms"]) == 1, "the continuation must not generate again"
    table = _stats(env)
    print(table)
    assert model in table and "100.0%" in table


async def test_automatic_request_waits_for_a_pause_explicit_does_not(tmp_path: Path, scripted_pkg: Path) -> None:
    client, _ = await _client(tmp_path, scripted_pkg, debounceMs=1000)
    try:
        uri = (tmp_path / "add.py").as_uri()
        open_doc(client, uri, ADD)
        waiting = asyncio.ensure_future(_inline(client, uri, 2, 4, invoked=False))
        await asyncio.sleep(0.3)  # well inside the 1 s pause
        _insert(client, uri, 2, 2, 4, "return a +")  # typing goes on during the pause
        result = await waiting
        assert result is None or not result.items, "generated while the user was still typing"
        explicit = await _inline(client, uri, 2, len("    return a +"))
        assert explicit is not None and explicit.items[0].insert_text == "\n    return a + b"
        await client.shutdown_session()
    finally:
        await _close(client)


async def test_quiet_inside_a_word_in_a_string_unless_invoked(tmp_path: Path, scripted_pkg: Path) -> None:
    client, _ = await _client(tmp_path, scripted_pkg, debounceMs=0)
    try:
        uri = (tmp_path / "greet.py").as_uri()
        open_doc(client, uri, GREET)
        col = len('    return "hello wor')
        automatic = await _inline(client, uri, 2, col, invoked=False)
        assert automatic is None or not automatic.items
        invoked = await _inline(client, uri, 2, col)
        assert invoked is not None and invoked.items
        assert str(invoked.items[0].insert_text).endswith('return "hello world, " + name')
        await client.shutdown_session()
    finally:
        await _close(client)


async def test_a_line_being_typed_gets_its_statement_finished(tmp_path: Path, scripted_pkg: Path) -> None:
    client, _ = await _client(tmp_path, scripted_pkg)
    try:
        uri = (tmp_path / "long.py").as_uri()
        open_doc(client, uri, LONG)
        result = await _inline(client, uri, 2, len("    total = a +"))
        assert result is not None and [i.insert_text for i in result.items] == ["\n    total = a + b"]
        _insert(client, uri, 2, 2, len("    total = a +"), " b\n    ")  # take the line, press Enter
        rest = await _inline(client, uri, 3, 4)
        assert rest is not None and [i.insert_text for i in rest.items] == [
            "\n    total = a + b\n    total = total + c\n    return total"]
        await client.shutdown_session()
    finally:
        await _close(client)


async def test_generate_all_is_a_cancellable_progress(tmp_path: Path, scripted_pkg: Path) -> None:
    client, _ = await _client(tmp_path, scripted_pkg)
    applied: list[types.ApplyWorkspaceEditParams] = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        applied.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    try:
        uri = (tmp_path / "stubs.py").as_uri()
        open_doc(client, uri, STUBS)
        run = asyncio.ensure_future(client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="codegen-lsp.generateAllInFile", arguments=[uri])))
        token = None
        for _ in range(600):
            token = next((t for t, reports in client.progress_reports.items() if any(
                isinstance(r, types.WorkDoneProgressBegin) and "40 bodies" in (r.message or "") for r in reports)),
                None)
            if token is not None:
                break
            await asyncio.sleep(0.01)
        assert token is not None, client.progress_reports
        begin = client.progress_reports[token][0]
        assert isinstance(begin, types.WorkDoneProgressBegin) and begin.cancellable is True
        client.protocol.notify(types.WINDOW_WORK_DONE_PROGRESS_CANCEL, types.WorkDoneProgressCancelParams(token=token))
        await asyncio.wait_for(run, timeout=60)
        assert isinstance(client.progress_reports[token][-1], types.WorkDoneProgressEnd)
        edits = [e for p in applied for dc in p.edit.document_changes or [] for e in dc.edits]  # type: ignore[union-attr]
        assert len(edits) < 40, "the cancel did not stop the job"
        assert any("cancelled" in m.message for m in client.messages), [m.message for m in client.messages]
        after = await _inline(client, uri, 2, 4)  # the worker is free again
        assert after is not None and after.items
        await client.shutdown_session()
    finally:
        await _close(client)


async def test_several_candidates_are_separate_inline_items_to_cycle(tmp_path: Path, scripted_pkg: Path) -> None:
    """VS Code cycles inline items with Alt+] / Alt+[: every distinct parsing candidate is its own item,
    greedy first, each with its own acceptance id (the scripted model branches between two bodies)."""
    client, _env = await _client(tmp_path, scripted_pkg, candidates=3)
    try:
        uri = (tmp_path / "check.py").as_uri()
        open_doc(client, uri, CHECK)
        res = await _inline(client, uri, 2, 4)
        assert res is not None
        texts = [i.insert_text for i in res.items]
        assert sorted(texts) == sorted(CHECK_BODIES), texts
        ids = [i.command.arguments[0] for i in res.items if i.command is not None]  # type: ignore[index]
        assert len(ids) == len(texts) == len(set(ids)), res.items
        await client.shutdown_session()
    finally:
        await _close(client)
