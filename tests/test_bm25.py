"""BM25 over code tokens: tokenization, ranking on hand-built documents, incremental add/remove."""

from __future__ import annotations

import math
import random

import pytest

from codegen_lsp.workspace import BM25, code_tokens


def test_code_tokens_split_snake_and_camel_case() -> None:
    assert code_tokens("read_configFile(self)") == ["read", "config", "file"]
    assert code_tokens("getHTTPResponse parseXML2Json") == ["get", "http", "response", "parse", "xml", "json"]
    assert code_tokens("__init__ MAX_LINE_LENGTH") == ["init", "max", "line", "length"]


def test_code_tokens_drop_keywords_punctuation_and_stopwords() -> None:
    src = "def add(a, b):\n    return a + b if a is not None else 0"
    assert code_tokens(src) == ["add"]
    assert code_tokens("Return the sum of the two numbers.") == ["sum", "two", "numbers"]
    assert code_tokens("") == [] and code_tokens("x = (1, 2)") == []
    assert code_tokens("Größe der Datei") == ["größe", "der", "datei"]  # non-ASCII words stay whole


def _index(docs: dict[str, str]) -> BM25:
    index = BM25()
    for doc_id, text in docs.items():
        index.add(doc_id, code_tokens(text))
    return index


DOCS = {
    "parse": "def parse_config(path):\n    return json.loads(read_file(path))",
    "merge": "def merge_sorted(left, right):\n    return list(heapq.merge(left, right))",
    "count": "def count_words(text):\n    return len(text.split())",
    "read": "def read_file(path):\n    with open(path) as fh:\n        return fh.read()",
}


def test_ranking_on_hand_built_documents() -> None:
    index = _index(DOCS)
    assert len(index) == 4
    assert [d for d, _ in index.top(code_tokens("Parse a config file"), 4)] == ["parse", "read"]
    assert index.top(code_tokens("merge two sorted lists"), 1)[0][0] == "merge"
    assert index.top(code_tokens("something unrelated"), 3) == []
    assert index.top(code_tokens("count words"), 0) == []


def test_scores_match_the_formula() -> None:
    index = BM25(k1=1.2, b=0.75)
    index.add("a", ["x", "x", "y"])
    index.add("b", ["y", "z"])
    (doc, score), = index.top(["x"], 5)
    n, df, avg = 2, 1, 2.5
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    want = idf * 2 * 2.2 / (2 + 1.2 * (1 - 0.75 + 0.75 * 3 / avg))
    assert doc == "a" and score == pytest.approx(want)
    # a repeated query term counts twice
    assert index.top(["x", "x"], 1)[0][1] == pytest.approx(2 * want)


def test_ties_break_by_id_and_k_cuts() -> None:
    index = BM25()
    for doc_id in ["c", "a", "b", "d"]:
        index.add(doc_id, ["same", "words"])
    assert [d for d, _ in index.top(["same"], 2)] == ["a", "b"]
    assert [d for d, _ in index.top(["same"], 10)] == ["a", "b", "c", "d"]


def test_remove_and_readd() -> None:
    index = _index(DOCS)
    assert index.remove("parse") and not index.remove("parse") and "parse" not in index
    assert len(index) == 3
    assert [d for d, _ in index.top(code_tokens("parse config"), 3)] == []
    index.add("parse", code_tokens(DOCS["parse"]))
    assert index.top(code_tokens("parse config"), 1)[0][0] == "parse"
    # adding an existing id replaces the document
    index.add("count", code_tokens("def tally_votes(ballots): ..."))
    assert len(index) == 4
    assert index.top(code_tokens("count words"), 4) == []
    assert index.top(code_tokens("tally votes"), 1)[0][0] == "count"


def test_incremental_index_equals_a_fresh_one() -> None:
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(30)]
    docs = {f"d{i}": [rng.choice(vocab) for _ in range(rng.randint(1, 12))] for i in range(200)}
    index = BM25()
    for doc_id, toks in docs.items():
        index.add(doc_id, toks)
    for doc_id in rng.sample(sorted(docs), 80):  # churn: remove, some come back changed
        index.remove(doc_id)
        del docs[doc_id]
    for i in range(40):
        docs[f"new{i}"] = [rng.choice(vocab) for _ in range(rng.randint(1, 12))]
        index.add(f"new{i}", docs[f"new{i}"])
    fresh = BM25()
    for doc_id, toks in docs.items():
        fresh.add(doc_id, toks)
    assert len(index) == len(fresh) == 160
    for _ in range(20):
        q = rng.sample(vocab, 3)
        got, want = index.top(q, 15), fresh.top(q, 15)
        assert [d for d, _ in got] == [d for d, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want])
