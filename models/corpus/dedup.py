"""Exact and near-duplicate removal over function bodies.

Exact: a hash of the body's code tokens (comments and layout dropped). Near: MinHash over token
3-shingles with an LSH index (``datasketch``); a body whose estimated Jaccard similarity with an
already kept body reaches ``threshold`` is dropped (Allamanis 2019 uses 0.8 on token sets). The first
occurrence in build order wins, so builds are deterministic. Dedup runs before the split, so no
duplicate can straddle train and test.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from datasketch import MinHash, MinHashLSH

TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|\S")
COMMENT = re.compile(r"#[^\n]*")
SHINGLE = 3


def code_tokens(text: str) -> list[str]:
    """Identifier/number/punctuation tokens, comments removed (a '#' inside a string also cuts; fine
    for hashing)."""
    return TOKEN.findall(COMMENT.sub("", text))


@dataclass
class Deduplicator:
    """Feed bodies in build order; ``admit`` says whether each one is new."""

    threshold: float = 0.8
    num_perm: int = 64
    exact_dropped: int = 0
    near_dropped: int = 0
    _seen: set[bytes] = field(default_factory=set)
    _lsh: MinHashLSH = field(init=False)
    _perms: tuple = field(init=False)  # type: ignore[type-arg]
    _kept: list[MinHash] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lsh = MinHashLSH(threshold=self.threshold, num_perm=self.num_perm)
        self._perms = MinHash(num_perm=self.num_perm, seed=1, scheme="affine32").permutations

    def admit(self, body: str) -> bool:
        tokens = code_tokens(body)
        key = hashlib.blake2b(" ".join(tokens).encode(), digest_size=16).digest()
        if key in self._seen:
            self.exact_dropped += 1
            return False
        shingles = {" ".join(tokens[i : i + SHINGLE]).encode() for i in range(max(1, len(tokens) - SHINGLE + 1))}
        mh = MinHash(num_perm=self.num_perm, seed=1, permutations=self._perms, scheme="affine32")
        mh.update_batch(list(shingles))
        # LSH candidates can fall below the threshold: confirm with the signature estimate.
        if any(mh.jaccard(self._kept[c]) >= self.threshold for c in self._lsh.query(mh)):
            self.near_dropped += 1
            return False
        self._seen.add(key)
        self._kept.append(mh)
        self._lsh.insert(len(self._kept) - 1, mh, check_duplication=False)
        return True
