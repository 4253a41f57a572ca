"""Data-parallel fine-tuning: ``torchrun --nproc-per-node 2`` (gloo, CPU) on a global batch of 4 gives
the losses and the adapter of one process on the same global batch, with and without SAT's structure
loss (whose learned ``a, b`` live outside the DDP module and are averaged by hand)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from export.lora import ADAPTER_WEIGHTS
from export.tiny import build_tiny_checkpoint
from models.finetune.train import STATE_FILE
from tests.fixture_corpus import write_corpus

PAIRS = [
    ('def add(a, b):\n    """Return a + b."""', "\n    return a + b"),
    ('def is_even(n: int) -> bool:\n    """True for even n."""', "\n    return n % 2 == 0"),
    ('def push(self, item):\n    """Add item on top."""', "\n    self.items.append(item)\n    return item"),
    ('def pop(self):\n    """Remove the top item."""', "\n    return self.items.pop()"),
    ('def size(self):\n    """How many items."""', "\n    n = len(self.items)\n    return n"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow  # three interpreter starts (~15 s)
@pytest.mark.parametrize("sat", [False, True], ids=["plain", "sat"])
def test_two_gloo_processes_match_one_process(tmp_path: Path, sat: bool) -> None:
    # unequal lengths: ranks see different token counts
    corpus = write_corpus(tmp_path, PAIRS, {"train": 16, "valid": 4})
    ckpt = build_tiny_checkpoint(tmp_path / "ckpt", "llama")
    common = ["-m", "models.finetune", "--base", str(ckpt), "--corpus", str(corpus), "--steps", "4",
              "--batch-size", "4", "--seq-len", "64", "--lr", "3e-3", "--valid-pairs", "4", "--threads", "1",
              "--nice", "0", "--no-progress", "--no-export", "--lora-rank", "4",
              *(["--sat", "--sat-alpha", "100"] if sat else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, *common, "--out", str(tmp_path / "one")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                "--master-port", str(_free_port())]
    ddp = subprocess.run([*launcher, *common, "--out", str(tmp_path / "two")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert "; 2 process(es)" in ddp.stdout and "; 1 process(es)" in single.stdout  # really data-parallel
    one = json.loads((tmp_path / "one" / "history.json").read_text())
    two = json.loads((tmp_path / "two" / "history.json").read_text())
    assert two["steps"] == one["steps"] == 4 and two["tokens"] == one["tokens"]
    assert [h["loss"] for h in two["history"]] == pytest.approx([h["loss"] for h in one["history"]], abs=2e-4)
    assert two["valid"][-1]["loss"] == pytest.approx(one["valid"][-1]["loss"], abs=2e-4)
    a, b = load_file(str(tmp_path / "one" / ADAPTER_WEIGHTS)), load_file(str(tmp_path / "two" / ADAPTER_WEIGHTS))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k].float(), a[k].float(), atol=2e-3, rtol=1e-2)
    if sat:  # the structure loss is logged and a, b took the single process's steps
        assert [h["structure"] for h in two["history"]] == pytest.approx([h["structure"] for h in one["history"]],
                                                                          rel=1e-3, abs=1e-6)
        sa, sb = (torch.load(tmp_path / d / STATE_FILE, map_location="cpu", weights_only=False)["sat"]
                  for d in ("one", "two"))
        assert sa["affine.weight"].item() != 1.0  # a moved from its identity init
        for k in sa:
            torch.testing.assert_close(sb[k], sa[k], atol=1e-5, rtol=1e-4)
