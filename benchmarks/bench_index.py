"""Workspace index cost on a large tree: files, definitions, cold and warm (persisted cache) build
time, peak RSS and BM25 query time.

    python benchmarks/bench_index.py DIR [--queries N]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from codegen_lsp.workspace.index import WorkspaceIndex

QUERIES = [
    "parse a date string into a datetime", "split a path into directory and file name", "read a json config file",
    "quote a string for a shell command", "compute the median of a list of numbers", "retry a function on error",
]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--queries", type=int, default=600)
    args = ap.parse_args(argv)
    base = rss_mib()
    with tempfile.TemporaryDirectory() as cache:
        for run in ("cold", "warm"):
            index = WorkspaceIndex(args.root, cache_dir=Path(cache))
            st = index.build()
            sys.stdout.write(f"{run}: {st.files} files, {st.symbols} definitions, {st.source_bytes / 2**20:.1f} MiB source, "
                  f"{st.parsed_files} parsed, {st.skipped_files} skipped, {st.seconds:.2f} s\n")
    t0 = time.perf_counter()
    for i in range(args.queries):
        index.search(QUERIES[i % len(QUERIES)], 4)
    per_query = (time.perf_counter() - t0) / args.queries
    sys.stdout.write(f"query (top 4): {per_query * 1000:.2f} ms; peak RSS {rss_mib():.0f} MiB "
                     f"(interpreter before: {base:.0f} MiB)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
