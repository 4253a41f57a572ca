"""Soak test: simulated typing against `codegen-lsp serve` for a while, sampling memory and latency.

    python benchmarks/soak_lsp.py --minutes 30 [--model PKG] [--settings JSON] [--json out.json]

A simulated user types functions (signature, docstring, body) character by character at ~8 chars/s into
a real file, the client sending an inline completion request on every keystroke as VS Code does (each
newer one supersedes the older), accepts some suggestions, undoes some, and runs generate-all on the
file now and then, applying the edits it returns as an editor does. Every 15 s the server's RSS (from
/proc) is sampled. At the end it prints the RSS growth after the warm-up (the first 20% of the run;
median of the last fifth over the median of the first) and the inline latency p50/p95 of the first and
last fifth after warm-up; targets: RSS growth < 5%, last-window p95 within 20% of the first.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_lsp import Peer  # noqa: E402

FUNCTIONS = [
    ("def mean(values: list[float]) -> float:", "Return the arithmetic mean of values, 0.0 when empty."),
    ("def is_prime(n: int) -> bool:", "Return True when n is a prime number."),
    ("def word_count(text: str) -> dict[str, int]:", "Count how often each word occurs in text."),
    ("def clamp(x: float, low: float, high: float) -> float:", "Limit x to the range [low, high]."),
    ("def reverse_words(text: str) -> str:", "Return text with the order of its words reversed."),
]


URI = "file:///soak/project.py"


class Buffer:
    """The editor's copy of the file: typed into by the simulated user, edited by the server's
    workspace/applyEdit (applied when it is for the current version, as an editor does)."""

    def __init__(self) -> None:
        self.text, self.version = "import math\n\n", 1
        self.lock = threading.Lock()
        self.peer: Peer | None = None
        self.applied = self.stale = 0

    def notify(self, method: str, params: Any) -> None:
        assert self.peer is not None
        self.peer.send({"jsonrpc": "2.0", "method": method, "params": params})

    def end_pos(self) -> dict[str, int]:
        lines = self.text.split("\n")
        return {"line": len(lines) - 1, "character": len(lines[-1])}

    def change(self, changes: list[dict[str, Any]], new_text: str) -> None:
        """Send ``changes`` (which turn the text into ``new_text``) as the next version (lock held)."""
        self.version += 1
        self.text = new_text
        self.notify("textDocument/didChange", {"textDocument": {"uri": URI, "version": self.version},
                                               "contentChanges": changes})

    def offset(self, pos: dict[str, int]) -> int:
        lines = self.text.split("\n")
        return sum(len(ln) + 1 for ln in lines[: pos["line"]]) + pos["character"]  # ASCII text: UTF-16 = str

    def answer(self, msg: dict[str, Any]) -> Any:
        if msg["method"] != "workspace/applyEdit":
            return None
        with self.lock:
            changes = msg["params"]["edit"].get("documentChanges") or []
            doc = changes[0] if changes else {}
            if doc.get("textDocument", {}).get("version") != self.version:
                self.stale += 1
                return {"applied": False, "failureReason": "document changed"}
            text = self.text
            for e in sorted(doc["edits"], key=lambda e: self.offset(e["range"]["start"]), reverse=True):
                a, b = self.offset(e["range"]["start"]), self.offset(e["range"]["end"])
                text = text[:a] + e["newText"] + text[b:]
            self.change([{"text": text}], text)
            self.applied += 1
            return {"applied": True}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--model", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--settings", type=json.loads, default={},
                    help='extra initializationOptions as JSON, e.g. \'{"prefixCacheMb": 0}\'')
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    buf = Buffer()
    peer = Peer([sys.executable, "-m", "codegen_lsp", "--log-level", "warning", "serve"], answer=buf.answer)
    buf.peer = peer
    ids = iter(range(1, 10**9))
    sent_at: dict[int, float] = {}

    def request(method: str, params: Any) -> int:
        rid = next(ids)
        sent_at[rid] = time.monotonic()
        peer.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return rid

    init = request("initialize", {"processId": None, "capabilities": {}, "initializationOptions": {"modelPath": args.model, **args.settings}})
    buf.notify("initialized", {})
    while init not in peer.replies:
        time.sleep(0.05)
    buf.notify("textDocument/didOpen", {"textDocument": {"uri": URI, "languageId": "python", "version": 1,
                                                         "text": buf.text}})

    def type_text(chunk: str, inline: list[int]) -> None:
        for ch in chunk:
            with buf.lock:
                pos = buf.end_pos()
                buf.change([{"range": {"start": pos, "end": pos}, "text": ch}], buf.text + ch)
                inline.append(request("textDocument/inlineCompletion", {
                    "textDocument": {"uri": URI}, "position": buf.end_pos(), "context": {"triggerKind": 2}}))
            time.sleep(rng.uniform(0.08, 0.16))

    start = time.monotonic()
    end = start + args.minutes * 60
    samples: list[tuple[float, int]] = []
    inline: list[int] = []
    next_sample = start
    typed = 0
    while time.monotonic() < end and peer.proc.poll() is None:
        sig, doc = FUNCTIONS[typed % len(FUNCTIONS)]
        sig = sig.replace("(", f"_{typed}(", 1)
        type_text(f"{sig}\n    \"\"\"{doc}\"\"\"\n    ", inline)
        action = rng.random()
        if action < 0.4:
            type_text("pass\n\n\n", inline)  # leave a stub for generate-all
        else:
            type_text("return None\n\n\n", inline)  # an "accepted" or written body
        if action > 0.85:  # undo: drop everything after the last blank lines, as a full sync
            with buf.lock:
                text = buf.text
                text = text[: text.rstrip("\n").rfind("\n\n\n") + 3] if "\n\n\n" in text else text
                buf.change([{"text": text}], text)
        if typed % 4 == 3:
            gen = request("workspace/executeCommand", {"command": "codegen-lsp.generateAllInFile", "arguments": [URI]})
            if rng.random() < 0.5:  # waits for the bodies (they are applied); else types on (they are dropped)
                t_gen = time.monotonic()
                while gen not in peer.replies and time.monotonic() - t_gen < 120:
                    time.sleep(0.05)
        typed += 1
        now = time.monotonic()
        if now >= next_sample:
            samples.append((now - start, rss_kib(peer.proc.pid)))
            next_sample = now + 15
    time.sleep(2)
    lat = [(sent_at[r] - start, peer.arrivals[r] - sent_at[r]) for r in inline if r in peer.arrivals]
    request("shutdown", None)
    buf.notify("exit", None)
    rc = peer.proc.wait(timeout=60)
    warm = args.minutes * 60 * 0.2
    span = (args.minutes * 60 - warm) / 5
    after = [s for s in samples if s[0] >= warm]
    # Medians of the first and last fifth after warm-up: single samples swing by hundreds of MiB as
    # requests of different sizes come and go.
    rss_first = [k for t, k in after if t < warm + span] or [0]
    rss_last = [k for t, k in after if t >= args.minutes * 60 - span] or [0]
    growth = statistics.median(rss_last) / statistics.median(rss_first) - 1 if rss_first[0] else 0.0
    first = [x for t, x in lat if warm <= t < warm + span]
    last = [x for t, x in lat if t >= args.minutes * 60 - span]
    report = {
        "minutes": args.minutes, "functions_typed": typed, "edits_applied": buf.applied,
        "edits_refused_stale": buf.stale, "inline_requests": len(inline), "answered": len(lat),
        "rss_mib_first_window_median": round(statistics.median(rss_first) / 1024, 1),
        "rss_mib_last_window_median": round(statistics.median(rss_last) / 1024, 1),
        "rss_mib_max": round(max((k for _, k in samples), default=0) / 1024, 1),
        "rss_growth_after_warmup": round(growth, 4),
        "first_window_p50_s": round(statistics.median(first), 3) if first else None,
        "first_window_p95_s": round(pct(first, 0.95), 3),
        "last_window_p50_s": round(statistics.median(last), 3) if last else None,
        "last_window_p95_s": round(pct(last, 0.95), 3),
        "exit_code": rc, "violations": peer.violations, "rss_samples": samples,
    }
    sys.stdout.write(json.dumps({k: v for k, v in report.items() if k != "rss_samples"}, indent=1) + "\n")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    ok = rc == 0 and not peer.violations and growth < 0.05
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
