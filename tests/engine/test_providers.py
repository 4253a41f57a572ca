"""Provider choice on this machine (no GPU) and a stdout that stays clean for the LSP stream."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codegen_lsp.engine import choose_provider, load_engine
from codegen_lsp.engine.providers import physical_cores, probe_cuda, stdout_to_stderr
from codegen_lsp.modelpkg import IONameMismatch

ROOT = Path(__file__).resolve().parents[2]


def test_auto_picks_cpu_with_a_reason() -> None:
    why_not = probe_cuda()
    assert why_not, "this machine has no GPU; the probe must say why CUDA is out"
    choice = choose_provider("auto")
    assert choice.provider == "cpu" and choice.reason.startswith("auto: ") and why_not in choice.reason
    assert choice.ort_providers == ["CPUExecutionProvider"]


def test_cuda_request_falls_back_to_cpu_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    choice = choose_provider("cuda")
    assert choice.provider == "cpu" and "cuda requested but unavailable" in choice.reason
    assert any(r.levelname == "WARNING" and "cuda requested" in r.message for r in caplog.records)


def test_cpu_and_unknown_device() -> None:
    assert choose_provider("cpu").reason == "cpu requested"
    assert choose_provider("tpu").provider == "cpu"
    assert physical_cores() >= 1


def test_engine_info_records_provider_and_reason(tiny_pkg: Path) -> None:
    info = load_engine(tiny_pkg, device="cuda").info
    assert info["provider"] == "cpu" and "cuda requested" in info["reason"]


_PROBE = """
import logging, sys, onnxruntime
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from codegen_lsp.engine import GenerationConfig, choose_provider, load_engine
from codegen_lsp.engine.providers import stdout_to_stderr
choose_provider("auto"); choose_provider("cuda")
with stdout_to_stderr():
    onnxruntime.preload_dlls()   # prints its failures to stdout without the redirect
    print("python print")
e = load_engine(sys.argv[1], device="auto")
e.generate("def f():", GenerationConfig(max_new_tokens=4))
"""


def test_stdout_stays_empty_in_a_fresh_process(tiny_pkg: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tiny_pkg)], capture_output=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert "python print" in err and "provider cpu (" in err


_QUIET = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from codegen_lsp.engine import GenerationConfig, load_engine
from codegen_lsp.engine.providers import probe_cuda
e = load_engine(sys.argv[1], device=sys.argv[2])
e.generate("def f():", GenerationConfig(max_new_tokens=2))
"""
_LOADER_NOISE = ("Failed to load", "libcublas", "libcurand", "libcudnn", "install CUDA", "CUDAExecutionProvider")


@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_start_without_a_driver_is_quiet_and_says_once_why(scripted_pkg: Path, device: str) -> None:
    # The scripted package has a cuda variant, so `auto` really probes for CUDA.
    proc = subprocess.run(
        [sys.executable, "-c", _QUIET, str(scripted_pkg), device], capture_output=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    err = proc.stderr.decode()
    if "no NVIDIA driver" not in (probe_cuda() or ""):  # a machine with a driver: CUDA gets chosen instead
        assert "provider cuda (" in err or "CUDA libraries missing" in err, err
        return
    assert not [n for n in _LOADER_NOISE if n in err], err
    assert err.count("provider cpu (") == 1, err
    assert err.count("WARNING") == (1 if device == "cuda" else 0), err


def test_stdout_to_stderr_restores_fd1(capfd: pytest.CaptureFixture[str]) -> None:
    with stdout_to_stderr():
        os.write(1, b"native\n")
    os.write(1, b"after\n")
    out, err = capfd.readouterr()
    assert out == "after\n" and "native" in err


def test_io_name_mismatch(tiny_pkg: Path, tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(tiny_pkg, pkg)
    data = json.loads((pkg / "manifest.json").read_text())
    data["variants"][0]["io"]["logits"] = "scores"
    (pkg / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(IONameMismatch, match="scores"):
        load_engine(pkg, device="cpu")
