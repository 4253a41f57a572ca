"""``python -m codegen_lsp.remote.bench --endpoint URL``: what a shared completions server delivers to
several editors at once. Each of C clients sends R streamed requests one after another (the same
function stub, greedy, ``--max-tokens``); printed per C: time to first token (median, worst), the
tokens one client sees per second, and the tokens per second the server delivers to all of them.
Figures for docs/team.md; nothing here runs in the language server."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from typing import Any

from .client import CompletionStream, Endpoint, EndpointError, api_key_from_env, request_json

PROMPT = '''import argparse


def parse_args(argv):
    """Parse the command line of a backup tool with argparse: a source directory, a destination,
    --exclude (repeatable), --dry-run, --verbose, --compress with a level from 1 to 9, and
    --max-size in megabytes. Return the parsed namespace."""
'''


def _one(endpoint: Endpoint, model: str, max_tokens: int) -> dict[str, float]:
    t0 = time.perf_counter()
    first = 0.0
    tokens = 0
    stream = CompletionStream(endpoint, {"model": model, "prompt": PROMPT, "max_tokens": max_tokens,
                                         "temperature": 0.0})
    for chunk in stream.events():
        for choice in chunk.get("choices") or []:
            if choice.get("text"):
                tokens += 1
                first = first or time.perf_counter() - t0
    return {"ttft_s": first, "tokens": tokens, "seconds": time.perf_counter() - t0}


def run(endpoint: Endpoint, model: str, clients: int, requests: int, max_tokens: int) -> dict[str, Any]:
    results: list[dict[str, float]] = []
    errors: list[str] = []

    def client() -> None:
        for _ in range(requests):
            try:
                results.append(_one(endpoint, model, max_tokens))
            except EndpointError as exc:
                errors.append(str(exc))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise EndpointError(errors[0])
    ttft = [r["ttft_s"] for r in results]
    return {
        "clients": clients, "requests": len(results), "tokens": sum(r["tokens"] for r in results),
        "ttft_median_s": round(statistics.median(ttft), 3), "ttft_max_s": round(max(ttft), 3),
        "client_tok_s": round(statistics.median(r["tokens"] / r["seconds"] for r in results), 1),
        "server_tok_s": round(sum(r["tokens"] for r in results) / wall, 1), "wall_s": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m codegen_lsp.remote.bench", description=__doc__)
    p.add_argument("--endpoint", required=True, help="e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--api-key-env", metavar="NAME")
    p.add_argument("--model", help="default: the first model the endpoint lists")
    p.add_argument("--clients", default="1,2,4", help="comma-separated client counts (default 1,2,4)")
    p.add_argument("--requests", type=int, default=3, help="requests per client (default 3)")
    p.add_argument("--max-tokens", type=int, default=96)
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    try:
        endpoint = Endpoint.parse(args.endpoint, api_key_from_env(args.api_key_env))
        model = args.model or request_json(endpoint, "GET", "/models")["data"][0]["id"]
        _one(endpoint, model, 8)  # warm-up: model pages, first-request setup
        rows = []
        for clients in (int(c) for c in args.clients.split(",")):
            rows.append(run(endpoint, model, clients, args.requests, args.max_tokens))
            r = rows[-1]
            sys.stdout.write(f"{clients} client(s): first token median {r['ttft_median_s']} s (worst "
                             f"{r['ttft_max_s']} s), {r['client_tok_s']} tok/s per client, {r['server_tok_s']} "
                             f"tok/s in all ({r['requests']} requests, {r['tokens']} tokens, {r['wall_s']} s)\n")
    except (EndpointError, ValueError) as exc:
        sys.stderr.write(f"bench failed: {exc}\n")
        return 1
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"endpoint": str(endpoint), "model": model, "max_tokens": args.max_tokens, "runs": rows}, fh,
                      indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
