"""Okapi BM25 over code tokens: the retrieval that needs no model, and the reference the trained
retrievers are measured against (``docs/retrieval.md``).

The index is incremental, because a workspace changes one file at a time: ``add`` and ``remove``
touch only the postings of the document's own terms. Postings are compact integer arrays per term
(slot, term frequency), so ``top`` scores a query with a few numpy operations per query term and
never materialises a document-term matrix; a standard-library-sized index (~40k functions) answers
in about a millisecond. Not thread-safe: one writer or reader at a time.
"""

from __future__ import annotations

import keyword
import math
import re
from array import array
from collections import Counter
from collections.abc import Iterable

import numpy as np

_WORD = re.compile(r"[^\W_]+")
"""Runs of letters and digits: underscores and punctuation separate words (snake_case splits here)."""
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
"""camelCase / PascalCase / ACRONYMWord parts of an ASCII word: ``getHTTPResponse`` -> get, HTTP, Response."""

STOPWORDS = frozenset(
    # Python keywords: present in nearly every body, and as English words they carry little.
    {k.lower() for k in keyword.kwlist}
    # short English function words that docstrings are full of
    | {"an", "the", "of", "to", "on", "at", "by", "be", "been", "it", "its", "this", "that", "these",
       "those", "are", "was", "were", "has", "have", "had", "do", "does", "than", "then", "so", "but",
       "can", "will", "may", "should", "would", "which", "who", "whom", "we", "you", "your", "our",
       "they", "their", "them", "there", "here", "such", "also", "into", "onto", "out", "up", "any",
       "all", "each", "other", "some", "only", "same", "both", "very", "just", "about", "over", "per",
       "etc", "eg", "ie"}
    # code words every method has
    | {"self", "cls", "args", "kwargs"}
)
"""Lower-cased tokens dropped by :func:`code_tokens`; tokens shorter than two characters are dropped too."""


def code_tokens(text: str) -> list[str]:
    """The terms of ``text`` (a docstring or source code): identifiers and words split on
    snake_case and camelCase, lower-cased, with keywords, punctuation, one-character tokens and
    short stopwords dropped. ``read_configFile(self)`` -> ``['read', 'config', 'file']``."""
    out: list[str] = []
    for word in _WORD.findall(text):
        parts = _PART.findall(word) if word.isascii() else [word]
        for part in parts:
            term = part.lower()
            if len(term) >= 2 and term not in STOPWORDS:
                out.append(term)
    return out


class BM25:
    """An incremental Okapi BM25 index: ``add``/``remove`` documents by id, ``top`` the best for a query.

    Scores use the Lucene form of idf, ``ln(1 + (N - df + 0.5) / (df + 0.5))`` (never negative), and
    ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen))`` per term occurrence in the query.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._slot_of: dict[str, int] = {}
        self._doc_id: list[str | None] = []  # slot -> id (None: free)
        self._doc_terms: list[tuple[str, ...]] = []  # slot -> its distinct terms (for remove)
        self._free: list[int] = []
        self._length = np.zeros(64, np.float64)  # slot -> number of tokens
        self._total_length = 0
        # term -> (slots, term frequencies), parallel int32 arrays; order is arbitrary
        self._postings: dict[str, tuple[array[int], array[int]]] = {}

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._slot_of

    def add(self, doc_id: str, tokens: Iterable[str]) -> None:
        """Index a document (replacing any document with the same id)."""
        if doc_id in self._slot_of:
            self.remove(doc_id)
        counts = Counter(tokens)
        length = sum(counts.values())
        if self._free:
            slot = self._free.pop()
            self._doc_id[slot] = doc_id
            self._doc_terms[slot] = tuple(counts)
        else:
            slot = len(self._doc_id)
            self._doc_id.append(doc_id)
            self._doc_terms.append(tuple(counts))
            if slot >= len(self._length):
                self._length = np.concatenate([self._length, np.zeros(len(self._length), np.float64)])
        self._slot_of[doc_id] = slot
        self._length[slot] = length
        self._total_length += length
        for term, tf in counts.items():
            post = self._postings.get(term)
            if post is None:
                post = self._postings[term] = (array("i"), array("i"))
            post[0].append(slot)
            post[1].append(tf)

    def remove(self, doc_id: str) -> bool:
        """Drop a document; False when it was not indexed."""
        slot = self._slot_of.pop(doc_id, None)
        if slot is None:
            return False
        for term in self._doc_terms[slot]:
            slots, tfs = self._postings[term]
            if len(slots) == 1:
                del self._postings[term]
                continue
            view = np.frombuffer(slots, np.int32)
            at = int(np.flatnonzero(view == slot)[0])
            del view  # an exported buffer cannot shrink
            slots[at], tfs[at] = slots[-1], tfs[-1]
            slots.pop()
            tfs.pop()
        self._total_length -= int(self._length[slot])
        self._length[slot] = 0
        self._doc_id[slot] = None
        self._doc_terms[slot] = ()
        self._free.append(slot)
        return True

    def scores(self, query_tokens: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """(slots, scores) of every document sharing a term with the query (score > 0)."""
        n = len(self._slot_of)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        avg = max(self._total_length / n, 1e-9)
        k1, b = self.k1, self.b
        acc = np.zeros(len(self._doc_id), np.float64)
        for term, qtf in Counter(query_tokens).items():
            post = self._postings.get(term)
            if post is None:
                continue
            slots = np.frombuffer(post[0], np.int32)
            tf = np.frombuffer(post[1], np.int32).astype(np.float64)
            idf = math.log(1.0 + (n - len(slots) + 0.5) / (len(slots) + 0.5))
            norm = k1 * (1.0 - b + b * self._length[slots] / avg)
            acc[slots] += qtf * idf * tf * (k1 + 1.0) / (tf + norm)  # slots are distinct within a term
            del slots
        hits = np.flatnonzero(acc > 0)
        return hits, acc[hits]

    def scores_by_id(self, query_tokens: Iterable[str]) -> dict[str, float]:
        """Score of every document sharing a term with the query, by id."""
        slots, scores = self.scores(query_tokens)
        return {str(self._doc_id[int(s)]): float(v) for s, v in zip(slots, scores, strict=True)}

    def top(self, query_tokens: Iterable[str], k: int) -> list[tuple[str, float]]:
        """The ``k`` best documents for the query as (id, score), best first; ties by id. Documents
        sharing no term with the query are never returned."""
        if k <= 0:
            return []
        hits, vals = self.scores(query_tokens)
        if len(hits) > k:
            kth = np.partition(vals, len(vals) - k)[len(vals) - k]
            keep = vals >= kth  # every tie at the boundary, so the id tie-break decides, not partition order
            hits, vals = hits[keep], vals[keep]
        ranked = sorted(zip(vals.tolist(), hits.tolist(), strict=True),
                        key=lambda sv: (-sv[0], self._doc_id[sv[1]]))
        return [(str(self._doc_id[s]), v) for v, s in ranked[:k]]
