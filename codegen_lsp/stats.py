"""Local acceptance statistics: how often a suggestion is shown, accepted (fully or in part), how many
characters of it were kept, and how long generation took, per model.

Kept in ``stats.json`` under the user's cache directory and never sent anywhere. The server records
events through an :class:`AcceptanceTracker` (one per server process) and merges its counts into
the file; ``codegen-lsp stats`` reads the file. No LSP types here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .workspace.index import cache_home

log = logging.getLogger(__name__)

STATS_FILE = "stats.json"
MAX_LATENCIES = 1000
"""Most recent generation latencies kept per model (the percentiles are over these)."""
_MAX_OFFERS = 256


def stats_path() -> Path:
    return cache_home() / STATS_FILE


@dataclass
class ModelStats:
    """Counts for one model. A suggestion counts as kept once, however it was accepted."""

    shown: int = 0
    """Distinct suggestions the editor showed."""
    accepted: int = 0
    """Suggestions accepted whole."""
    partially_accepted: int = 0
    """Suggestions of which the user took a part (a word, a line), whether or not the rest followed."""
    kept: int = 0
    """Suggestions of which anything was kept (the numerator of the acceptance rate)."""
    chars_shown: int = 0
    """Characters the shown suggestions would have added."""
    chars_kept: int = 0
    """Characters of suggestions that ended up in the document through an accept."""
    latencies_ms: list[float] = field(default_factory=list)
    """Generation latency of interactive requests, the most recent :data:`MAX_LATENCIES`."""

    def add(self, other: ModelStats) -> None:
        for f in fields(self):
            if f.name == "latencies_ms":
                self.latencies_ms = (self.latencies_ms + other.latencies_ms)[-MAX_LATENCIES:]
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @classmethod
    def from_json(cls, raw: Any) -> ModelStats:
        out = cls()
        if not isinstance(raw, dict):
            return out
        for f in fields(cls):
            value = raw.get(f.name)
            if f.name == "latencies_ms":
                if isinstance(value, list):
                    out.latencies_ms = [float(v) for v in value if isinstance(v, (int, float))][-MAX_LATENCIES:]
            elif isinstance(value, int) and value >= 0:
                setattr(out, f.name, value)
        return out


def load_stats(path: Path | None = None) -> dict[str, ModelStats]:
    """The stats on disk; {} when there are none. Raises ValueError for a file that is not stats."""
    path = path or stats_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is unreadable ({exc}); delete it to start over") from exc
    models = raw.get("models") if isinstance(raw, dict) else None
    if not isinstance(models, dict):
        raise ValueError(f"{path} is not a codegen-lsp stats file; delete it to start over")
    return {str(k): ModelStats.from_json(v) for k, v in models.items()}


def merge_into_file(delta: dict[str, ModelStats], path: Path | None = None) -> None:
    """Add ``delta`` to the file atomically (a lock keeps two servers from losing each other's counts)."""
    path = path or stats_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_suffix(".lock")):
        try:
            current = load_stats(path)
        except ValueError as exc:
            log.warning("%s", exc)
            current = {}
        for model, d in delta.items():
            current.setdefault(model, ModelStats()).add(d)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": 1, "models": {k: asdict(v) for k, v in current.items()}}),
                       encoding="utf-8")
        os.replace(tmp, path)


class _locked:
    """An exclusive advisory lock on ``path`` where the platform has one (fcntl); else no lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock


@dataclass
class _Offer:
    model: str
    length: int
    """Length of the suggestion's insert text."""
    typed: int
    """How much of the insert text was already in the document when it was offered (not the model's)."""
    shown: bool = False
    accepted: bool = False
    kept_chars: int = 0


class AcceptanceTracker:
    """What this server offered, by suggestion id, and the counts not yet written to disk.

    Thread-safe: latencies arrive from the inference worker, events from the event loop."""

    def __init__(self, path: Path | None = None, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        self._offers: OrderedDict[str, _Offer] = OrderedDict()
        self._pending: dict[str, ModelStats] = {}
        self._lock = threading.Lock()

    def offer(self, model: str, text: str, typed: int = 0) -> str:
        """Register a suggestion about to be sent; its id goes into the item."""
        sid = uuid.uuid4().hex[:12]
        with self._lock:
            self._offers[sid] = _Offer(model, len(text), max(0, min(typed, len(text))))
            while len(self._offers) > _MAX_OFFERS:
                self._offers.popitem(last=False)
        return sid

    def known(self, sid: str) -> bool:
        with self._lock:
            return sid in self._offers

    def latency(self, model: str, ms: float) -> None:
        with self._lock:
            self._stats(model).latencies_ms.append(round(ms, 1))

    def shown(self, sid: str) -> bool:
        with self._lock:
            o = self._offers.get(sid)
            if o is None or o.shown:
                return False
            o.shown = True
            s = self._stats(o.model)
            s.shown += 1
            s.chars_shown += o.length - o.typed
            return True

    def partially_accepted(self, sid: str, accepted_length: int) -> bool:
        """``accepted_length``: how much of the insert text is in the document now (as Copilot's
        ``didPartiallyAcceptCompletion`` says it); counts only what grew since the last event."""
        return self._keep(sid, accepted_length, whole=False)

    def accepted(self, sid: str) -> bool:
        return self._keep(sid, None, whole=True)

    def _keep(self, sid: str, accepted_length: int | None, whole: bool) -> bool:
        with self._lock:
            o = self._offers.get(sid)
            if o is None or o.accepted:
                return False
            if not o.shown:  # some clients never say "shown" before an accept
                o.shown = True
                self._stats(o.model).shown += 1
                self._stats(o.model).chars_shown += o.length - o.typed
            s = self._stats(o.model)
            end = o.length if accepted_length is None else max(0, min(accepted_length, o.length))
            kept = max(0, end - o.typed)
            if kept <= o.kept_chars and not whole:
                return False
            if o.kept_chars == 0 and (kept > 0 or whole):
                s.kept += 1
                if not whole:
                    s.partially_accepted += 1
            s.chars_kept += max(0, kept - o.kept_chars)
            o.kept_chars = max(o.kept_chars, kept)
            if whole:
                o.accepted = True
                s.accepted += 1
            return True

    def _stats(self, model: str) -> ModelStats:
        return self._pending.setdefault(model, ModelStats())

    def flush(self) -> None:
        """Write what was counted since the last flush; a failure is logged, never raised."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending or not self.enabled:
            return
        try:
            merge_into_file(pending, self.path)
        except OSError as exc:
            log.warning("could not write acceptance stats: %s", exc)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def format_report(stats: dict[str, ModelStats], path: Path) -> str:
    """The table ``codegen-lsp stats`` prints."""
    if not stats:
        return f"no suggestions recorded yet ({path})\n"
    head = ("model", "shown", "accepted", "partial", "rate", "chars kept", "p50 ms", "p95 ms", "n")
    rows = [head]
    for model, s in sorted(stats.items()):
        rate = f"{100 * s.kept / s.shown:.1f}%" if s.shown else "-"
        kept = f"{s.chars_kept} of {s.chars_shown}" if s.chars_shown else str(s.chars_kept)
        lat = s.latencies_ms
        p50 = f"{percentile(lat, 50):.0f}" if lat else "-"
        p95 = f"{percentile(lat, 95):.0f}" if lat else "-"
        rows.append((model, str(s.shown), str(s.accepted), str(s.partially_accepted), rate, kept, p50, p95,
                     str(len(lat))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    return "\n".join(lines) + f"\n\nrate: suggestions of which anything was kept, of those shown. Local only: {path}\n"
