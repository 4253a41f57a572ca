"""CI's short run of the protocol fuzzer (benchmarks/fuzz_lsp.py): 2 seeds x 1,000 messages over real
stdio on the scripted model. The server must answer everything, keep stdout framed, and exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_fuzz_short_seed_set(scripted_pkg: Path) -> None:
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fuzz_lsp.py"), "--model", str(scripted_pkg),
                        "--seed", "1", "--seed", "2", "--messages", "1000"],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    assert r.stdout.count(", ok") == 2
