"""Seeded protocol fuzzer for `codegen-lsp serve` over real stdio (no LSP library in between).

    python benchmarks/fuzz_lsp.py --model PKG --seed 1 --messages 2000

It opens documents, applies incremental edits with valid and out-of-range ranges, sends odd text
(CRLF, NUL, astral characters, 200 kB lines), every request kind at valid and invalid positions,
cancels, backwards versions, requests after close, unknown methods, malformed params and malformed
frames. It checks that the server never dies, answers every request (a result or a JSON-RPC error),
writes nothing but framed JSON-RPC on stdout, and exits 0 after shutdown/exit. Exit status 1 and one
line per violation otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

SNIPPETS = [
    'def add(a, b):\n    """Return the sum of a and b."""\n    pass\n',
    'class C:\n    def m(self, x):\n        """Twice x."""\n        ...\n',
    "import os\r\n\r\ndef f():\r\n    \"\"\"CRLF.\"\"\"\r\n    pass\r\n",
    "x = '\x00'\ndef g():\n    \"\"\"NUL above.\"\"\"\n",
    "def h():\n    \"\"\"Astral 😀𝔘.\"\"\"\n    return '😀'\n",
    "s = '" + "a" * 200_000 + "'\n",
    "def broken(:\n    \"\"\"Unclosed.\n",
    "",
]
REQUESTS = ["textDocument/completion", "textDocument/inlineCompletion", "textDocument/codeAction"]


def frame(obj: Any) -> bytes:
    body = json.dumps(obj).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


class Peer:
    """The server process plus a reader that parses every stdout byte as an LSP frame."""

    def __init__(self, cmd: list[str], answer: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.answer = answer or (lambda msg: {"applied": True} if msg["method"] == "workspace/applyEdit" else None)
        """The client's result for a request from the server (default: applyEdit says applied)."""
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.replies: dict[Any, dict[str, Any]] = {}
        self.arrivals: dict[Any, float] = {}
        """time.monotonic() at which each reply arrived (latency = arrival - send time)."""
        self.violations: list[str] = []
        self.dead = False
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                ch = out.read(1)
                if not ch:
                    return
                header += ch
            fields = dict(line.split(": ", 1) for line in header.decode("ascii", "replace").strip().split("\r\n")
                          if ": " in line)
            if "Content-Length" not in fields:
                self.violations.append(f"stdout carried a non-frame: {header[:80]!r}")
                return
            msg = json.loads(out.read(int(fields["Content-Length"])))
            if "id" in msg and "method" in msg:  # a request to the client (applyEdit, progress): answer it
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": self.answer(msg)})
            elif "id" in msg:
                with self.lock:
                    self.replies[msg["id"]] = msg
                    self.arrivals[msg["id"]] = time.monotonic()

    def send(self, obj: Any) -> None:
        self.send_raw(frame(obj))

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        if self.dead:
            return
        try:
            with self.write_lock:  # the reader thread answers the server's requests too
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
        except OSError:
            self.dead = True
            self.violations.append(f"server died (exit code {self.proc.poll()}) while the fuzzer was still sending")


def position(rng: random.Random, text: str) -> dict[str, int]:
    lines = text.split("\n") or [""]
    stubs = [i for i, ln in enumerate(lines) if ln.strip() in ("pass", "...")]
    if stubs and rng.random() < 0.4:  # a stub line: the request has a site and generates
        line = rng.choice(stubs)
        return {"line": line, "character": len(lines[line]) - len(lines[line].lstrip())}
    if rng.random() < 0.2:  # out of range, negative-free (the protocol's uinteger)
        return {"line": rng.randint(0, 10_000), "character": rng.randint(0, 10_000)}
    line = rng.randrange(len(lines))
    return {"line": line, "character": rng.randint(0, len(lines[line]))}


def run(cmd: list[str], model: str | None, seed: int, messages: int) -> list[str]:
    rng = random.Random(seed)
    peer = Peer(cmd)
    next_id = 0
    pending: list[int] = []
    methods: dict[int, str] = {}

    def request(method: str, params: Any) -> None:
        nonlocal next_id
        next_id += 1
        pending.append(next_id)
        methods[next_id] = method
        peer.send({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params})

    def notify(method: str, params: Any) -> None:
        peer.send({"jsonrpc": "2.0", "method": method, "params": params})

    request("initialize", {"processId": None, "capabilities": {},
                           "initializationOptions": {"modelPath": model, "candidates": 2, "timeBudgetMs": 500}})
    notify("initialized", {})
    docs: dict[str, tuple[int, str]] = {}
    for _ in range(messages):
        if peer.dead:
            break
        uri = f"file:///fuzz/{rng.randrange(4)}.py"
        version, text = docs.get(uri, (0, ""))
        kind = rng.random()
        if kind < 0.15 or uri not in docs:
            text = rng.choice(SNIPPETS)
            docs[uri] = (1, text)
            notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})
        elif kind < 0.40:
            start, end = sorted((position(rng, text), position(rng, text)), key=lambda p: (p["line"], p["character"]))
            new = rng.choice(["x", "\n", "    return 1\n", "😀", "\r\n", "\x00", '"""', ""])
            version = version + 1 if rng.random() > 0.1 else max(0, version - 3)  # sometimes backwards
            docs[uri] = (version, text)  # the fuzzer does not track content exactly: positions stay plausible
            notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                              "contentChanges": [{"range": {"start": start, "end": end}, "text": new}]})
        elif kind < 0.75:
            method = rng.choice(REQUESTS)
            pos = position(rng, text)
            params: dict[str, Any] = {"textDocument": {"uri": uri}, "position": pos}
            if method.endswith("inlineCompletion"):
                params["context"] = {"triggerKind": 2}
            if method.endswith("codeAction"):
                params = {"textDocument": {"uri": uri}, "range": {"start": pos, "end": pos}, "context": {"diagnostics": []}}
            request(method, params)
            if rng.random() < 0.05:  # let it finish now and then instead of superseding it at once
                time.sleep(0.3)
        elif kind < 0.82:
            if pending:
                notify("$/cancelRequest", {"id": rng.choice(pending[-5:])})
        elif kind < 0.86:
            notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            docs.pop(uri, None)
            request("textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})
        elif kind < 0.90:
            request(rng.choice(["codegen/unknown", "textDocument/hover", "workspace/symbol"]), {})
        elif kind < 0.95:
            request(rng.choice(REQUESTS), rng.choice([None, [], {"textDocument": 3}, {"position": "x"}]))
        elif kind < 0.97:
            request("workspace/executeCommand", {"command": rng.choice(["codegen-lsp.generateAllInFile",
                                                                         "codegen-lsp.generateBody", "nope"]),
                                                 "arguments": rng.choice([[uri], [uri, 0, 0], [], [1, 2, 3]])})
        else:  # malformed frames: bad JSON, then a frame with a non-object body
            peer.send_raw(b"Content-Length: 9\r\n\r\n{not json")
            peer.send_raw(b'Content-Length: 2\r\n\r\n[]')
    request("shutdown", None)
    shutdown_id = next_id
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and shutdown_id not in peer.replies and peer.proc.poll() is None:
        time.sleep(0.05)
    notify("exit", None)
    try:
        if peer.proc.stdin is not None and not peer.dead:
            peer.proc.stdin.close()
        rc = peer.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        peer.proc.kill()
        rc = -9
    problems = list(peer.violations)
    missing = [i for i in pending if i not in peer.replies]
    if missing:
        problems.append(f"{len(missing)} requests got no answer (first: "
                        f"{', '.join(f'{i} {methods[i]}' for i in missing[:5])})")
    if rc != 0:
        problems.append(f"server exit code {rc}")
    answered = [peer.replies[i] for i in pending if i in peer.replies]
    errors = sum("error" in r for r in answered)
    bodies = sum(bool(isinstance(r.get("result"), dict) and r["result"].get("items")) for r in answered)
    run.stats = f"{len(pending)} requests: {errors} errors, {bodies} with generated bodies"  # type: ignore[attr-defined]
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model package (default: the server's default)")
    ap.add_argument("--seed", type=int, action="append", help="repeatable (default: 1)")
    ap.add_argument("--messages", type=int, default=1000, help="messages per seed")
    ap.add_argument("--server", default=None, help="server command (default: this Python's codegen_lsp serve)")
    args = ap.parse_args(argv)
    cmd = args.server.split() if args.server else [sys.executable, "-m", "codegen_lsp", "--log-level", "warning", "serve"]
    failed = 0
    for seed in args.seed or [1]:
        t0 = time.perf_counter()
        problems = run(cmd, args.model, seed, args.messages)
        status = "ok" if not problems else "FAILED"
        sys.stdout.write(f"seed {seed}: {args.messages} messages, {time.perf_counter() - t0:.1f}s, "
                         f"{getattr(run, 'stats', '')}, {status}\n")
        for p in problems:
            sys.stdout.write(f"  {p}\n")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
