"""The benchmark runs end to end on a tiny package and reports every figure (baselines skip cleanly)."""

from __future__ import annotations

import io
from pathlib import Path

from codegen_lsp.engine.bench import run_bench

from .conftest import FUSED


def test_run_bench_reports_figures(tiny_pkg: Path) -> None:
    out = io.StringIO()
    res = run_bench(tiny_pkg, variant=FUSED, max_new_tokens=8, prompts=["def f():", "import os\n"], out=out)
    ours = res["engine"]
    for key in ("ttft_s", "prefill_tok_s", "decode_tok_s", "body_p50_s", "body_p95_s", "peak_rss_mib"):
        assert ours[key] > 0, key
    assert len(ours["runs"]) == 2
    assert "skipped" in res["genai"] and "skipped" in res["torch"]  # no genai_config.json / no HF checkpoint
    report = out.getvalue()
    assert "decode_tok_s" in report and "engine" in report
