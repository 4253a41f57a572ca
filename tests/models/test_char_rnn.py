"""Char-RNN: a tiny training run, export to a package, validation, and broken graphs caught."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from tokenizers import Tokenizer

from codegen_lsp.modelpkg import load_package
from export.errors import LogitsMismatch, OutputNameMismatch
from models.char_rnn.alphabet import EOS_ID, UNK_ID, Alphabet
from models.char_rnn.export import GRAPH, build_package, validate
from models.char_rnn.infer import complete, greedy_ids
from models.char_rnn.train import TrainConfig, load_model, train
from tests.fixture_corpus import write_corpus

FUNCS = [
    ('def add(a, b):\n    """Return the sum of a and b."""', "\n    total = a + b\n    return total"),
    ('def sub(a, b):\n    """Return a minus b, as a number."""', "\n    diff = a - b\n    return diff"),
    ('def mul(a, b):\n    """Return the product of a and b."""', "\n    prod = a * b\n    return prod"),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, package) from one short epoch on a corpus of a few functions."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("charrnn")
    corpus = write_corpus(root, FUNCS, {"train": 40, "valid": 4}, {"package": "fixture"})
    ckpt = root / "tiny.pt"
    cfg = TrainConfig(epochs=1, batch_size=4, seq_len=32, hidden_size=16, num_layers=2, log_every=5)
    state = train(corpus, ckpt, cfg, progress=False)
    assert state.epoch == 1 and state.steps > 0
    assert any("valid_accuracy" in h for h in state.history)
    return ckpt, build_package(ckpt, root / "pkg", name="tiny-char-rnn")


def test_package_manifest_and_files(tiny: tuple[Path, Path]) -> None:
    _, pkg_dir = tiny
    pkg = load_package(pkg_dir, verify_hashes=True)
    m = pkg.manifest
    assert (m.kind, m.architecture, m.num_layers, m.hidden_size) == ("char-rnn", "lstm", 2, 16)
    alphabet = m.extra["alphabet"]
    assert m.vocab_size == len(alphabet) and m.extra["unk_id"] == UNK_ID and m.special_tokens.eos == [EOS_ID]
    assert pkg.variant("cpu").validation["status"] == "passed"
    assert pkg.variant("cpu").validation["greedy_chars"] == 64
    # The tokenizer JSON maps text to the same ids as the alphabet, unknown characters included.
    tok = Tokenizer.from_file(str(pkg.path(m.tokenizer)))
    text = FUNCS[0][0] + "\u00e9"
    assert tok.encode(text).ids == Alphabet(alphabet).encode(text)
    assert tok.decode(Alphabet(alphabet).encode(FUNCS[0][0])) == FUNCS[0][0]


def test_graph_contract(tiny: tuple[Path, Path]) -> None:
    _, pkg_dir = tiny
    sess = ort.InferenceSession(str(pkg_dir / GRAPH), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input_ids", "h0", "c0"]
    assert [o.name for o in sess.get_outputs()] == ["logits", "hn", "cn"]
    h = np.zeros((2, 3, 16), np.float32)
    logits, hn, cn = sess.run(None, {"input_ids": np.zeros((3, 5), np.int64), "h0": h, "c0": h})
    vocab = json.loads((pkg_dir / "manifest.json").read_text())["vocab_size"]
    assert logits.shape == (3, 5, vocab) and hn.shape == cn.shape == (2, 3, 16)


def test_reference_decoder_matches_torch(tiny: tuple[Path, Path]) -> None:
    ckpt, pkg_dir = tiny
    model, alphabet, _ = load_model(ckpt)
    prompt = FUNCS[1][0]
    want = alphabet.decode(model.greedy(alphabet.encode(prompt), 40, EOS_ID))
    assert complete(pkg_dir, prompt, 40) == want


def _corrupt(src: Path, dst: Path, edit: str) -> Path:
    graph = onnx.load(str(src))
    if edit == "weights":
        init = next(i for i in graph.graph.initializer if i.name == "head.bias")
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 0.5, init.name))
    else:
        old = graph.graph.output[0].name
        for node in graph.graph.node:
            node.output[:] = ["scores" if o == old else o for o in node.output]
        graph.graph.output[0].name = "scores"
    onnx.save(graph, str(dst))
    return dst


def test_broken_weights_raise_logits_mismatch(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, pkg_dir = tiny
    model, alphabet, _ = load_model(ckpt)
    bad = _corrupt(pkg_dir / GRAPH, tmp_path / "bad.onnx", "weights")
    with pytest.raises(LogitsMismatch, match="logits"):
        validate(model, bad, alphabet.encode(FUNCS[0][0]))


def test_renamed_output_raises_name_mismatch(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, pkg_dir = tiny
    model, alphabet, _ = load_model(ckpt)
    bad = _corrupt(pkg_dir / GRAPH, tmp_path / "renamed.onnx", "rename")
    with pytest.raises(OutputNameMismatch, match="scores"):
        validate(model, bad, alphabet.encode(FUNCS[0][0]))


def test_training_resumes_from_checkpoint(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, _ = tiny
    copy = tmp_path / "resume.pt"
    copy.write_bytes(ckpt.read_bytes())
    corpus = ckpt.parent / "corpus"
    cfg = TrainConfig(epochs=2, batch_size=4, seq_len=32, hidden_size=16, log_every=5)
    before = torch.load(copy, weights_only=False)["state"]["steps"]
    state = train(corpus, copy, cfg, progress=False)
    assert state.epoch == 2 and state.steps == 2 * before
    lr = torch.load(copy, weights_only=False)["scheduler"]["_last_lr"][0]
    assert lr == pytest.approx(2e-3 * 0.97**2)


def test_greedy_ids_stops_at_eos(tiny: tuple[Path, Path]) -> None:
    _, pkg_dir = tiny
    sess = ort.InferenceSession(str(pkg_dir / GRAPH), providers=["CPUExecutionProvider"])
    out = greedy_ids(sess, [2, 3], 500, 2, 16, eos_id=EOS_ID)
    assert len(out) == 500 or out[-1] == EOS_ID
