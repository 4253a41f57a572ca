"""Build the corpus directory: ``{train,valid,test}.jsonl`` plus ``stats.json``."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from models.corpus.dedup import Deduplicator
from models.corpus.extract import extract_pairs
from models.corpus.sources import SourceFile, discover
from models.corpus.split import SPLITS, split_of
from models.corpus.stats import summarize


def _read(src: SourceFile) -> str | None:
    try:
        text = src.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def build(
    out: Path,
    stdlib: Path | None,
    site_dirs: list[Path],
    max_pairs: int | None = None,
    max_per_package: int | None = 2000,
    progress: bool = True,
) -> dict[str, Any]:
    """Extract, filter, deduplicate and split; returns the stats also written to ``stats.json``."""
    t0 = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    files = discover(stdlib, site_dirs)
    rejects: Counter[str] = Counter()
    dedup = Deduplicator()
    per_package: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    packages: dict[str, set[str]] = {s: set() for s in SPLITS}
    handles = {s: open(out / f"{s}.jsonl", "w", encoding="utf-8") for s in SPLITS}
    unreadable = 0
    try:
        for src in tqdm(files, desc="files", unit="file", disable=not progress, file=sys.stderr):
            if max_per_package is not None and per_package[src.package] >= max_per_package:
                rejects["package_cap"] += 1
                continue
            text = _read(src)
            if text is None:
                unreadable += 1
                continue
            for pair in extract_pairs(text, rejects):
                if not dedup.admit(pair.target):
                    continue
                split = split_of(src.package)
                record = {"package": src.package, "path": src.path, "license": src.license, **asdict(pair)}
                handles[split].write(json.dumps(record, ensure_ascii=False) + "\n")
                counts[split] += 1
                per_package[src.package] += 1
                packages[split].add(src.package)
                if max_pairs is not None and sum(counts.values()) >= max_pairs:
                    break
            if max_pairs is not None and sum(counts.values()) >= max_pairs:
                break
    finally:
        for h in handles.values():
            h.close()
    stats: dict[str, Any] = {
        "files": len(files),
        "unreadable_files": unreadable,
        "pairs": {s: counts[s] for s in SPLITS},
        "packages": {s: len(packages[s]) for s in SPLITS},
        "package_names": {s: sorted(packages[s]) for s in SPLITS},
        "rejected": dict(sorted(rejects.items())),
        "exact_duplicates": dedup.exact_dropped,
        "near_duplicates": dedup.near_dropped,
        "max_per_package": max_per_package,
        "seconds": round(time.monotonic() - t0, 1),
        "lengths": summarize(out),
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats
