"""A small LRU of prompt KV states keyed by token ids, so a request that shares a prefix with an
earlier one (typing inside a body) prefills only the new suffix."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from .session import HostKV


@dataclass
class PrefixHit:
    length: int
    """Leading prompt tokens whose KV state is reused."""
    kv: HostKV
    """Per layer (key, value) sliced to ``length`` positions."""


def common_prefix(a: tuple[int, ...], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


DEFAULT_MAX_BYTES = 256 << 20
"""KV bytes the cache may hold (Qwen2.5-Coder-0.5B, fp32 KV: 24 KiB per token, so ~10k cached tokens)."""


def kv_bytes(kv: HostKV) -> int:
    return sum(k.nbytes + v.nbytes for k, v in kv)


class PrefixCache:
    """LRU of at most ``max_entries`` (token ids -> host KV of those ids, batch row of 1) holding at
    most ``max_bytes`` of KV state; an entry larger than the whole bound is not kept."""

    def __init__(self, max_entries: int = 4, min_hit_tokens: int = 4, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.min_hit_tokens = min_hit_tokens
        self._entries: OrderedDict[tuple[int, ...], HostKV] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(kv_bytes(kv) for kv in self._entries.values())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def lookup(self, ids: list[int]) -> PrefixHit | None:
        """The longest cached prefix of ``ids``, leaving at least one token to run (its logits are
        needed); None when shorter than ``min_hit_tokens``."""
        if self.max_entries <= 0:
            return None
        with self._lock:
            best_key, best = None, 0
            for key in self._entries:
                n = min(common_prefix(key, ids), len(ids) - 1)
                if n > best:
                    best_key, best = key, n
            if best_key is None or best < self.min_hit_tokens:
                return None
            self._entries.move_to_end(best_key)
            kv = self._entries[best_key]
        return PrefixHit(best, [(k[:, :, :best], v[:, :, :best]) for k, v in kv])

    def store(self, ids: list[int], kv: HostKV) -> None:
        """Remember the KV of ``ids``; entries that are a prefix of ``ids`` become redundant."""
        if self.max_entries <= 0 or not ids or kv_bytes(kv) > self.max_bytes:
            return
        key = tuple(ids)
        with self._lock:
            for old in [k for k in self._entries if len(k) <= len(key) and key[: len(k)] == k]:
                del self._entries[old]
            self._entries[key] = kv
            total = sum(kv_bytes(v) for v in self._entries.values())
            while len(self._entries) > self.max_entries or total > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                total -= kv_bytes(dropped)
