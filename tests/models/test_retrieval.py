"""Retrieval models: MRR computed right on hand-built scores, a tiny NBoW and bi-GRU trained for
seconds, exported, loaded through ``load_retriever`` and checked against PyTorch. Nothing here
asserts what a trained model ranks; shapes, determinism, padding invariance and parity only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from codegen_lsp.engine.kinds import load_engine, load_retriever
from codegen_lsp.modelpkg import ManifestInvalid, load_package
from models.retrieval.__main__ import main
from models.retrieval.data import code_text, query_text
from models.retrieval.evaluate import (
    chunks,
    mrr_bm25,
    mrr_embeddings,
    mrr_fused,
    reciprocal_ranks,
    zscore_rows,
)
from models.retrieval.export import EmbeddingMismatch, build_package, validate
from models.retrieval.model import reverse_within_length
from models.retrieval.tokenizer import train_bpe
from models.retrieval.train import TrainConfig, load_model, train

VERBS = ["read", "write", "sort", "parse", "merge", "count", "filter", "split"]
NOUNS = ["config", "items", "tokens", "lines", "users", "files", "rows", "nodes"]


def _record(verb: str, noun: str) -> dict[str, str]:
    return {"package": "fixture", "docstring": f"{verb.capitalize()} the {noun} of a source.\n\nMore detail here.",
            "signature": f"def {verb}_{noun}(source):",
            "target": f"\n    result = {verb}Values(source.{noun})\n    return result"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("retrieval-corpus")
    recs = [_record(v, n) for v in VERBS for n in NOUNS]
    for split, part in (("train", recs[:48]), ("valid", recs[48:]), ("test", recs[48:])):
        with open(root / f"{split}.jsonl", "w") as fh:
            for r in part:
                fh.write(json.dumps(r) + "\n")
    return root


def _tiny(corpus: Path, root: Path, arch: str) -> tuple[Path, Path]:
    torch.set_num_threads(1)
    ckpt = root / f"{arch}.pt"
    cfg = TrainConfig(arch=arch, vocab_size=120, embed_dim=16, hidden_size=8, batch_size=16, epochs=2, lr=1e-2)
    state = train(corpus, ckpt, cfg)
    assert state.epoch == 2 and state.steps == 6 and state.best_epoch in (1, 2)
    return ckpt, build_package(ckpt, root / f"{arch}-pkg", name=f"tiny-{arch}")


@pytest.fixture(scope="module")
def nbow(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _tiny(corpus, tmp_path_factory.mktemp("nbow"), "nbow")


@pytest.fixture(scope="module")
def rnn(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _tiny(corpus, tmp_path_factory.mktemp("rnn"), "rnn")


# -- MRR ---------------------------------------------------------------------------------------
def test_reciprocal_ranks_on_hand_built_scores() -> None:
    scores = np.array([
        [0.9, 0.1, 0.2, 0.0],  # right code first: rank 1
        [0.5, 0.4, 0.3, 0.6],  # two codes above: rank 3
        [0.2, 0.2, 0.2, 0.1],  # tied with two others: counted against it, rank 3
        [0.0, 0.0, 0.0, 0.0],  # nothing distinguishes: rank 4
    ])
    assert reciprocal_ranks(scores).tolist() == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 4])


def test_chunks_follow_the_codesearchnet_protocol() -> None:
    cs = chunks(2500)
    assert [len(c) for c in cs] == [1000, 1000]  # the incomplete last chunk is dropped
    assert len(set(cs[0]) | set(cs[1])) == 2000
    assert cs == chunks(2500)  # a fixed order
    assert [len(c) for c in chunks(30)] == [30] and chunks(1) == []


def test_mrr_of_a_perfect_and_a_reversed_scorer() -> None:
    queries = [f"q{i}" for i in range(10)]
    codes = [f"c{i}" for i in range(10)]
    eye = np.eye(10, dtype=np.float32)
    perfect = mrr_embeddings(lambda t: eye[[int(s[1:]) for s in t]], lambda t: eye[[int(s[1:]) for s in t]],
                             queries, codes)
    assert perfect["mrr"] == 1.0 and perfect["queries"] == 10 and perfect["top1"] == 1.0
    # every query's own code scores 0, every other code 1: rank 10 for all
    blind = mrr_embeddings(lambda t: np.ones((len(t), 1), np.float32),
                           lambda t: np.zeros((len(t), 1), np.float32), queries, codes)
    assert blind["mrr"] == pytest.approx(0.1)


def test_bm25_mrr_on_constructed_pairs() -> None:
    queries = ["Parse the config file", "Merge two sorted lists", "Count the words of a text"]
    codes = ["def parse_config(path): return load(path)", "def merge_sorted(a, b): return heap(a, b)",
             "def countWords(text): return len(text.split())"]
    res = mrr_bm25(queries, codes)
    assert res["mrr"] == 1.0 and res["queries"] == 3
    res = mrr_bm25(queries, list(reversed(codes)))  # query 1 still finds its code; 0 and 2 score 0: rank 3
    assert res["mrr"] == pytest.approx((1 / 3 + 1 + 1 / 3) / 3)


def test_fusion_z_scores_each_query() -> None:
    z = zscore_rows(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    assert z[0].tolist() == pytest.approx([-1.2247449, 0.0, 1.2247449]) and not z[1].any()
    queries = ["Parse the config file", "Merge two sorted lists", "Count the words of a text"]
    codes = ["def a(): pass", "def b(): pass", "def c(): pass"]  # BM25 finds nothing; the dense side decides
    eye = np.eye(3, dtype=np.float32)
    res = mrr_fused(lambda t: eye[[queries.index(x) for x in t]], lambda t: eye[[codes.index(x) for x in t]],
                    queries, codes)
    assert res["mrr"] == 1.0


# -- text --------------------------------------------------------------------------------------
def test_query_and_code_texts() -> None:
    rec = _record("read", "config")
    assert query_text(rec["docstring"]) == "Read the config of a source."
    assert code_text(rec).startswith("def read_config(source):\n    result = readValues")


def test_tokenizer_splits_identifiers() -> None:
    tok = train_bpe(["read the config file", "get http response value", "parse xml"] * 5, 60)
    assert tok.normalizer.normalize_str("getHTTPResponse(read_config)") == "get http response read config "
    assert tok.decode(tok.encode("readConfig").ids) == "read config"


def test_reverse_within_length_is_an_involution() -> None:
    x = torch.arange(12, dtype=torch.float32).reshape(2, 3, 2)  # [B=2, T=3, D=2]
    lengths = torch.tensor([3, 2])
    r = reverse_within_length(x, lengths)
    assert r[0, :, 0].tolist() == [4.0, 2.0, 0.0]
    assert r[1, :, 0].tolist() == [8.0, 6.0, 10.0]  # padding position 2 stays
    assert torch.equal(reverse_within_length(r, lengths), x)


# -- packages ------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["nbow", "rnn"])
def test_package_loads_as_a_retriever(which: str, request: pytest.FixtureRequest) -> None:
    _, pkg_dir = request.getfixturevalue(which)
    pkg = load_package(pkg_dir, verify_hashes=True)
    m = pkg.manifest
    assert (m.kind, m.architecture) == ("retriever", which)
    v = pkg.variant("cpu")
    assert sorted(v.graphs) == ["code", "query"] and v.graph == ""
    assert v.validation["status"] == "passed" and v.validation["through"].endswith("RetrieverEngine")
    engine = load_retriever(pkg_dir)
    assert engine.role == "retriever"
    d = m.extra["retriever"]["embedding_dim"]
    assert engine.info["embedding_dim"] == d == 16
    with pytest.raises(ManifestInvalid):
        load_engine(pkg_dir)  # not a generator


@pytest.mark.parametrize("which", ["nbow", "rnn"])
def test_embeddings_are_unit_deterministic_and_batch_independent(which: str, request: pytest.FixtureRequest) -> None:
    _, pkg_dir = request.getfixturevalue(which)
    engine = load_retriever(pkg_dir)
    texts = [code_text(_record(v, n)) for v in VERBS[:3] for n in NOUNS[:3]] + ["x", ""]
    a = engine.embed_code(texts)
    assert a.shape == (len(texts), 16) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a[:-1], axis=1), 1.0, atol=1e-5)
    assert not a[-1].any()  # the empty text
    assert np.array_equal(a, engine.embed_code(texts))
    # each text alone (no padding) gives the vector it had among longer and shorter texts
    alone = np.stack([engine.embed_code([t])[0] for t in texts])
    assert np.abs(alone - a).max() < 1e-5
    q = engine.embed_queries(["Read the config.", "Sort rows"])
    assert q.shape == (2, 16) and engine.embed_queries([]).shape == (0, 16)
    # long texts are cut to the manifest's lengths
    assert len(engine.encode(["word " * 500], "query")[0]) == engine.info["max_query_tokens"]


def test_training_is_repeatable(corpus: Path, tmp_path: Path) -> None:
    """Same corpus, same config, one thread: the same weights (what a pinned package hash needs)."""
    torch.set_num_threads(1)
    cfg = TrainConfig(arch="nbow", vocab_size=120, embed_dim=16, batch_size=16, epochs=1, lr=1e-2)
    train(corpus, tmp_path / "a.pt", cfg)
    train(corpus, tmp_path / "b.pt", cfg)
    a, b = load_model(tmp_path / "a.pt")[0].state_dict(), load_model(tmp_path / "b.pt")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_validation_catches_a_drifted_graph(nbow: tuple[Path, Path]) -> None:
    ckpt, pkg_dir = nbow
    model, _, raw = load_model(ckpt)
    with torch.no_grad():
        model.code_encoder.embed.weight.add_(0.5)
    with pytest.raises(EmbeddingMismatch, match="code embeddings"):
        validate(model, pkg_dir, [tuple(p) for p in raw["validation_pairs"]], {"query": 30, "code": 200})


def test_cli_evaluates_package_and_bm25(corpus: Path, nbow: tuple[Path, Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    _, pkg_dir = nbow
    assert main(["evaluate", "--corpus", str(corpus), "--split", "test", "--pkg", str(pkg_dir)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["queries"] == 16 and res["chunks"] == 1 and 1 / 16 <= res["mrr"] <= 1
    assert main(["evaluate", "--corpus", str(corpus), "--split", "test", "--bm25"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["queries"] == 16 and 1 / 16 <= res["mrr"] <= 1


# -- in the workspace index ------------------------------------------------------------------------
def test_a_retriever_package_ranks_the_workspace_together_with_bm25(nbow: tuple[Path, Path], tmp_path: Path) -> None:
    """The index embeds every definition once, keeps the embeddings in step with updates, and the
    combined search returns k definitions (never the excluded ones), the same ones every time."""
    from codegen_lsp.engine.kinds import load_retriever as load
    from codegen_lsp.workspace.dense import DenseIndex, attach_retriever, code_of
    from codegen_lsp.workspace.index import WorkspaceIndex

    root = tmp_path / "ws"
    root.mkdir()
    for i, (verb, noun) in enumerate(zip(VERBS, NOUNS, strict=True)):
        r = _record(verb, noun)
        (root / f"m{i}.py").write_text(f'{r["signature"]}\n    """{r["docstring"]}"""{r["target"]}\n')
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    index.build()
    search = attach_retriever(index, nbow[1])
    found = search("sort the rows", 3, lambda s: s.path == "m2.py", docstring="Sort the rows of a source.")
    assert len(found) == 3 and "m2.py" not in {s.path for s, _ in found}
    assert found == search("sort the rows", 3, lambda s: s.path == "m2.py", docstring="Sort the rows of a source.")
    sym = index.named("read_config")[0]
    assert '"""' not in code_of(sym) and code_of(sym).startswith("def read_config(source):")
    (root / "extra.py").write_text("def count_nodes(tree):\n    return len(tree)\n")
    index.update(root / "extra.py", (root / "extra.py").read_bytes())  # on_change embeds it
    assert {s.key for s, _ in search("count nodes", 8, None)} >= {"extra.py::count_nodes"}
    dense = DenseIndex(index, load(nbow[1]))
    assert dense.sync() == len(VERBS) + 1 and dense.sync() == 0  # only new definitions are embedded
    index.remove(root / "extra.py")
    assert dense.sync() == 0 and len(dense) == len(VERBS)
