"""``python -m models.corpus build --out DIR`` / ``python -m models.corpus stats DIR``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from models.corpus.build import build
from models.corpus.sources import default_roots
from models.corpus.stats import render, summarize


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.corpus", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="extract pairs from the stdlib and site-packages")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--max-pairs", type=int, default=None, help="stop after this many kept pairs")
    b.add_argument("--max-per-package", type=int, default=2000, help="cap per package (0: none)")
    b.add_argument("--stdlib", type=Path, default=None, help="stdlib directory (default: this Python's)")
    b.add_argument("--site", type=Path, action="append", default=None, help="site-packages dir (repeatable)")
    b.add_argument("--no-stdlib", action="store_true")
    s = sub.add_parser("stats", help="print pairs per split and token-length histograms")
    s.add_argument("dir", type=Path)
    args = ap.parse_args(argv)

    if args.cmd == "build":
        std, sites = default_roots()
        stdlib = None if args.no_stdlib else (args.stdlib or std)
        stats = build(args.out, stdlib, args.site or sites, args.max_pairs, args.max_per_package or None)
        brief = {k: v for k, v in stats.items() if k not in ("lengths", "package_names")}
        print(json.dumps(brief, indent=2))
        print(render(stats["lengths"]))
        return 0
    stats_file = args.dir / "stats.json"
    if stats_file.exists():
        stats = json.loads(stats_file.read_text(encoding="utf-8"))
        print(f"built in {stats['seconds']} s from {stats['files']} files; packages per split: {stats['packages']}")
        print(f"exact duplicates {stats['exact_duplicates']}, near duplicates {stats['near_duplicates']}")
    print(render(summarize(args.dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
