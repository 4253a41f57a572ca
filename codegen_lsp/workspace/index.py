"""The workspace index: every Python definition under a root, searchable by name and by BM25.

Built in the background (``build``), kept current file by file (``update``, ``remove``), bounded in
what it reads (file size, file count, bytes of source held), persisted in the user cache directory
keyed by each file's content hash so a restart re-parses only what changed. Skips virtualenvs,
``node_modules``, build and cache directories, hidden directories and what the root ``.gitignore``
names. Reads files, never writes outside the cache directory, opens no connection.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .bm25 import BM25, code_tokens
from .symbols import Symbol, extract

log = logging.getLogger(__name__)

SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "dist-packages", "htmlcov"})
"""Never read, at any depth (hidden directories neither: .git, .venv, .tox, caches)."""
SKIP_TOP_DIRS = frozenset({"build", "dist"})
"""Build output at the workspace root. A virtualenv is recognised anywhere by its pyvenv.cfg."""
CACHE_VERSION = 1


@dataclass
class IndexLimits:
    """What the index may read and hold (settings ``index*``)."""

    max_files: int = 20_000
    max_file_bytes: int = 512 * 1024
    max_source_bytes: int = 32 * 1024 * 1024
    """Source text held for all definitions; past it, further files are skipped (and logged)."""


@dataclass
class IndexStats:
    files: int = 0
    symbols: int = 0
    source_bytes: int = 0
    skipped_files: int = 0
    parsed_files: int = 0
    """Files parsed in this run (the others came from the persisted cache)."""
    seconds: float = 0.0
    truncated: bool = False
    """A limit stopped the walk or the intake of source."""


@dataclass
class _File:
    digest: str
    symbols: list[Symbol] = field(default_factory=list)


def cache_home() -> Path:
    """Per-user cache directory (XDG on Linux/macOS, %LOCALAPPDATA% on Windows)."""
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "codegen-lsp" / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "codegen-lsp"


class GitIgnore:
    """The root ``.gitignore``'s plain patterns (``name``, ``*.py``, ``dir/``, ``/top``); negations and
    nested ignore files are not read (they only make the index smaller)."""

    def __init__(self, root: Path) -> None:
        self.patterns: list[tuple[str, bool, bool]] = []  # (pattern, directory only, anchored)
        try:
            lines = (root / ".gitignore").read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith(("#", "!")):
                continue
            self.patterns.append((line.strip("/"), line.endswith("/"), line.startswith("/") or "/" in line.rstrip("/")))

    def ignored(self, rel: str, is_dir: bool) -> bool:
        name = rel.rsplit("/", 1)[-1]
        for pat, dir_only, anchored in self.patterns:
            if dir_only and not is_dir:
                continue
            if fnmatch.fnmatch(rel if anchored else name, pat):
                return True
        return False


class WorkspaceIndex:
    """Definitions of the Python files under ``root``. Thread-safe: built by a background thread
    while requests read it."""

    def __init__(self, root: Path, limits: IndexLimits | None = None, cache_dir: Path | None = None) -> None:
        self.root = root.resolve()
        self.limits = limits or IndexLimits()
        key = hashlib.sha1(str(self.root).encode()).hexdigest()[:16]
        self.cache_file = (cache_dir or cache_home() / "index") / f"{key}.json"
        self._files: dict[str, _File] = {}
        self._by_name: dict[str, list[Symbol]] = {}
        self._bm25 = BM25()
        self._lock = threading.RLock()
        self.stats = IndexStats()
        self.ready = threading.Event()
        self.recent: list[str] = []
        """Keys of definitions whose source changed since the index was built, newest last."""
        self.on_change: Callable[[], object] | None = None
        """Called (in the updating thread) after ``update`` or ``remove`` changed the index."""

    # -- reading ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        with self._lock:
            return sum(len(f.symbols) for f in self._files.values())

    def relpath(self, path: Path) -> str | None:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except (ValueError, OSError):
            return None

    def named(self, name: str) -> list[Symbol]:
        with self._lock:
            return list(self._by_name.get(name, ()))

    def search(self, text: str, k: int, exclude: Callable[[Symbol], bool] | None = None) -> list[tuple[Symbol, float]]:
        """The ``k`` definitions BM25 ranks highest for ``text`` (minus those ``exclude`` names)."""
        tokens = code_tokens(text)
        if not tokens:
            return []
        with self._lock:
            found = []
            for key, score in self._bm25.top(tokens, k + 8):
                sym = self._symbol(key)
                if sym is not None and not (exclude and exclude(sym)):
                    found.append((sym, score))
                if len(found) == k:
                    break
            return found

    def bm25_scores(self, text: str) -> dict[str, float]:
        """BM25 score of every definition sharing a term with ``text``, by key."""
        with self._lock:
            return self._bm25.scores_by_id(code_tokens(text))

    def symbols(self) -> list[Symbol]:
        with self._lock:
            return [s for f in self._files.values() for s in f.symbols]

    def get(self, key: str) -> Symbol | None:
        with self._lock:
            return self._symbol(key)

    def _symbol(self, key: str) -> Symbol | None:
        path, _, qual = key.partition("::")
        f = self._files.get(path)
        return next((s for s in f.symbols if s.qualname == qual), None) if f else None

    # -- building --------------------------------------------------------------------------------
    def walk(self) -> Iterator[Path]:
        """Python files under the root, skipping what the index never reads."""
        ignore = GitIgnore(self.root)
        count = 0
        for dirpath, dirnames, filenames in os.walk(self.root):
            here = Path(dirpath)
            rel_dir = "" if here == self.root else here.relative_to(self.root).as_posix() + "/"
            dirnames[:] = sorted(
                d for d in dirnames
                if d not in SKIP_DIRS and not (here == self.root and d in SKIP_TOP_DIRS)
                and not d.startswith(".") and not d.endswith(".egg-info")
                and not (here / d / "pyvenv.cfg").exists() and not ignore.ignored(rel_dir + d, True))
            for name in sorted(filenames):
                if name.endswith(".py") and not ignore.ignored(rel_dir + name, False):
                    count += 1
                    if count > self.limits.max_files:
                        self.stats.truncated = True
                        return
                    yield here / name

    def build(self, progress: Callable[[int, int], None] | None = None,
              cancel: threading.Event | None = None) -> IndexStats:
        """Index every file (reusing the persisted cache for unchanged ones), then persist."""
        t0 = time.perf_counter()
        cached = self._load_cache()
        paths = list(self.walk())
        for i, path in enumerate(paths):
            if cancel is not None and cancel.is_set():
                break
            rel = self.relpath(path)
            if rel is None:
                continue
            try:
                if path.stat().st_size > self.limits.max_file_bytes:
                    self.stats.skipped_files += 1
                    continue
                data = path.read_bytes()
            except OSError:
                self.stats.skipped_files += 1
                continue
            self._put(rel, data, cached.get(rel), recent=False)
            if progress is not None and (i % 50 == 0 or i == len(paths) - 1):
                progress(i + 1, len(paths))
        self.stats.seconds = time.perf_counter() - t0
        self._save_cache()
        self.ready.set()
        log.info("workspace index %s: %d files, %d definitions, %.1f MiB source, %d parsed, %d skipped, %.1f s",
                 self.root, self.stats.files, self.stats.symbols, self.stats.source_bytes / 2**20,
                 self.stats.parsed_files, self.stats.skipped_files, self.stats.seconds)
        return self.stats

    def update(self, path: Path, data: bytes) -> None:
        """Re-index one file from its current text (open in the editor, saved, or changed on disk)."""
        rel = self.relpath(path)
        if rel is not None and len(data) <= self.limits.max_file_bytes and path.suffix == ".py":
            self._put(rel, data, None, recent=True)
            if self.on_change is not None:
                self.on_change()

    def remove(self, path: Path) -> None:
        rel = self.relpath(path)
        if rel is None:
            return
        with self._lock:
            self._drop(rel)
        if self.on_change is not None:
            self.on_change()

    def _put(self, rel: str, data: bytes, cached: _File | None, recent: bool) -> None:
        digest = hashlib.sha1(data).hexdigest()
        with self._lock:
            old = self._files.get(rel)
            if old is not None and old.digest == digest:
                return
        if cached is not None and cached.digest == digest:
            symbols = cached.symbols
        else:
            symbols = extract(rel, data)
            self.stats.parsed_files += 1
        size = sum(len(s.text) for s in symbols)
        with self._lock:
            before = {s.qualname: s.text for s in old.symbols} if old else {}
            self._drop(rel)
            if self.stats.source_bytes + size > self.limits.max_source_bytes:
                if not self.stats.truncated:
                    log.warning("workspace index: %d MiB of source held; skipping further files (indexMaxMb)",
                                self.limits.max_source_bytes >> 20)
                self.stats.truncated = True
                return
            self._files[rel] = _File(digest, symbols)
            for s in symbols:
                self._by_name.setdefault(s.name, []).append(s)
                self._bm25.add(s.key, code_tokens(f"{s.qualname} {s.signature} {s.docstring} {s.text}"))
                if recent and before.get(s.qualname) != s.text:
                    if s.key in self.recent:
                        self.recent.remove(s.key)
                    self.recent.append(s.key)
            del self.recent[:-32]
            self.stats.files += 1
            self.stats.symbols += len(symbols)
            self.stats.source_bytes += size

    def _drop(self, rel: str) -> None:
        old = self._files.pop(rel, None)
        if old is None:
            return
        for s in old.symbols:
            same = self._by_name.get(s.name, [])
            same[:] = [x for x in same if x.path != rel]
            if not same:
                self._by_name.pop(s.name, None)
            self._bm25.remove(s.key)
        self.stats.files -= 1
        self.stats.symbols -= len(old.symbols)
        self.stats.source_bytes -= sum(len(s.text) for s in old.symbols)

    # -- persistence -----------------------------------------------------------------------------
    def _load_cache(self) -> dict[str, _File]:
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
            if data.get("version") != CACHE_VERSION or data.get("root") != str(self.root):
                return {}
            return {rel: _File(f["digest"], [Symbol(**s) for s in f["symbols"]]) for rel, f in data["files"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return {}  # no cache yet, or one from another version: parse everything

    def _save_cache(self) -> None:
        with self._lock:
            files = {rel: {"digest": f.digest, "symbols": [asdict(s) for s in f.symbols]} for rel, f in self._files.items()}
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"version": CACHE_VERSION, "root": str(self.root), "files": files}),
                           encoding="utf-8")
            os.replace(tmp, self.cache_file)
        except OSError as exc:
            log.warning("workspace index: cannot write %s: %s", self.cache_file, exc)
