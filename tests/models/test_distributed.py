"""Data-parallel training: two CPU processes (torchrun, gloo) follow the single-process run, for the
CodeFusion trainer and the tree decoder's (mutual learning: both peers in one DDP module).

Each process draws the same global batch and trains on half of it; DistributedDataParallel averages the
gradients. With the same seed, data order and global batch, the logged losses after every few steps must
equal the single-process run's up to floating-point summation order. The verdict does not depend on what
the model learns, only on the arithmetic being the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixture_corpus import write_corpus

FUNCS = [
    ('def add(a, b):\n    """Return the sum of a and b."""', "\n    total = a + b\n    return total"),
    ('def sub(a, b):\n    """Return a minus b, as a number."""', "\n    diff = a - b\n    if diff < 0:\n        return 0\n    return diff"),
    ('def first(items):\n    """Return the first item or None."""', "\n    for item in items:\n        return item\n    return None"),
    ('def mul(a, b):\n    """Return the product of a and b."""', "\n    prod = a * b\n    return prod"),
]


def _corpus(root: Path) -> Path:
    return write_corpus(root, FUNCS, {"train": 24, "valid": 4}, {"package": "fixture", "name": "f"})


TRAINERS = {
    "codefusion": (["models.codefusion", "train", "--config", "tiny"], ("loss", "eps", "dec", "ce")),
    "treedec": (["models.treedec", "train", "--config", "tiny", "--order", "mutual"],
                ("preorder_nll", "bfs_nll", "kl_preorder", "kl_bfs", "preorder_rule_acc")),
}


def _train(trainer: str, corpus: Path, out: Path, processes: int) -> list[dict[str, float]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    module, *args = TRAINERS[trainer][0]
    launch = [sys.executable, "-m", module] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", "-m", module]
    res = subprocess.run([*launch, *args, "--corpus", str(corpus), "--out", str(out)],
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())
    key = TRAINERS[trainer][1][0]
    return [h for h in history if key in h]  # the training entries (not the held-out evaluations)


@pytest.mark.slow
@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(trainer: str, tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    one = _train(trainer, corpus, tmp_path / "one", 1)
    two = _train(trainer, corpus, tmp_path / "two", 2)
    assert [h["step"] for h in one] == [h["step"] for h in two] and len(one) >= 4
    for a, b in zip(one, two, strict=True):
        for key in TRAINERS[trainer][1]:
            assert b[key] == pytest.approx(a[key], rel=2e-3, abs=2e-4), (a["step"], key, a[key], b[key])
    assert (tmp_path / "two" / "ckpt.pt").exists()  # rank 0 wrote the checkpoint
