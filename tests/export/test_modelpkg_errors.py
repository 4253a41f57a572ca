"""A real exported package, damaged in each way the runtime must detect, raises the right error."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import onnxruntime as ort
import pytest

from codegen_lsp.modelpkg import (
    MANIFEST_FILE,
    CorruptFile,
    IONameMismatch,
    ManifestInvalid,
    MissingFile,
    UnsupportedVersion,
    check_io_names,
    load_package,
)


def _edit_manifest(pkg: Path, change: Callable[[dict], None]) -> None:
    data = json.loads((pkg / MANIFEST_FILE).read_text())
    change(data)
    (pkg / MANIFEST_FILE).write_text(json.dumps(data))


def test_intact_package_loads_with_hashes(tiny_llama_package: Path) -> None:
    pkg = load_package(tiny_llama_package, verify_hashes=True)
    assert pkg.manifest.variants[0].graph == "fp32/model.onnx"


def test_missing_graph(tiny_llama_package: Path, copy_package: Callable[[Path], Path]) -> None:
    pkg = copy_package(tiny_llama_package)
    (pkg / "fp32" / "model.onnx").unlink()
    with pytest.raises(MissingFile, match="fp32/model.onnx"):
        load_package(pkg)


def test_truncated_graph(tiny_llama_package: Path, copy_package: Callable[[Path], Path]) -> None:
    pkg = copy_package(tiny_llama_package)
    graph = pkg / "fp32" / "model.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    with pytest.raises(CorruptFile, match="truncated"):
        load_package(pkg)


def test_same_size_replacement_caught_by_hash(tiny_llama_package: Path, copy_package: Callable[[Path], Path]) -> None:
    pkg = copy_package(tiny_llama_package)
    tok = pkg / "tokenizer.json"
    tok.write_bytes(tok.read_bytes().replace(b"<s>", b"<S>"))
    load_package(pkg)  # sizes only
    with pytest.raises(CorruptFile, match="sha256"):
        load_package(pkg, verify_hashes=True)


def test_unsupported_version(tiny_llama_package: Path, copy_package: Callable[[Path], Path]) -> None:
    pkg = copy_package(tiny_llama_package)
    _edit_manifest(pkg, lambda d: d.update(format_version=99))
    with pytest.raises(UnsupportedVersion, match="99"):
        load_package(pkg)


def test_mistyped_manifest_field(tiny_llama_package: Path, copy_package: Callable[[Path], Path]) -> None:
    pkg = copy_package(tiny_llama_package)
    _edit_manifest(pkg, lambda d: d.update(num_layers="two"))
    with pytest.raises(ManifestInvalid, match="manifest.num_layers"):
        load_package(pkg)


def test_graph_io_differs_from_manifest(tiny_llama_package: Path, copy_package: Callable[[Path], Path]) -> None:
    pkg_dir = copy_package(tiny_llama_package)
    _edit_manifest(pkg_dir, lambda d: d["variants"][0]["io"].update(present_key="present_key_values.{i}.key"))
    pkg = load_package(pkg_dir)
    v = pkg.variant("cpu")
    sess = ort.InferenceSession(str(pkg.path(v.graph)), providers=["CPUExecutionProvider"])
    with pytest.raises(IONameMismatch, match="present_key_values.0.key"):
        check_io_names(pkg_dir, pkg.manifest, v, [i.name for i in sess.get_inputs()],
                       [o.name for o in sess.get_outputs()])
