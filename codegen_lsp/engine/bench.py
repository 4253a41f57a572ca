"""Latency and throughput of the engine on a model package, next to onnxruntime-genai's C++ loop,
PyTorch/transformers (benchmarks/torch_baseline.py) and llama.cpp when those are installed.

``python -m codegen_lsp.engine.bench MODEL_DIR`` writes a report; ``run_bench`` returns the figures.
Every baseline runs in its own subprocess (fed the same token ids), so peak RSS figures are separate
and neither genai nor torch is ever imported into a process that serves the editor.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from ..modelpkg import load_package
from .config import GenerationConfig
from .kinds import BodyModel, load_engine
from .providers import physical_cores

PROMPTS = [
    'def fibonacci(n: int) -> int:\n    """Return the n-th Fibonacci number (fibonacci(0) == 0)."""',
    'def is_palindrome(text: str) -> bool:\n    """True if text reads the same backwards, ignoring case and spaces."""',
    "import json\nfrom pathlib import Path\n\n\ndef load_config(path: Path) -> dict:\n"
    '    """Read a JSON config file and return it as a dict; return {} if the file does not exist."""',
    "class Stack:\n    def __init__(self) -> None:\n        self.items: list[int] = []\n\n"
    '    def push(self, item: int) -> None:\n        """Push item on top of the stack."""',
    # ~125 tokens: the prompt size the performance targets are stated for.
    "import re\nfrom collections import Counter\nfrom dataclasses import dataclass\n\n\n@dataclass\nclass Document:\n"
    "    title: str\n    body: str\n    tags: list[str]\n\n\ndef word_frequencies(docs: list[Document], min_length: int = 3,"
    " stopwords: set[str] | None = None) -> Counter[str]:\n"
    '    """Count how often each word occurs in the titles and bodies of docs.\n\n'
    "    Words are lower-cased runs of letters; words shorter than min_length and stopwords are skipped.\n"
    '    Returns a Counter mapping each word to its number of occurrences across all documents."""',
]
BASELINE_TORCH = Path(__file__).resolve().parents[2] / "benchmarks" / "torch_baseline.py"


def peak_rss_mib() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kb / 1024.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def summarize(runs: list[dict[str, float]]) -> dict[str, float]:
    """Means of per-prompt figures plus whole-body latency percentiles."""
    def mean(key: str) -> float:
        return statistics.fmean(r[key] for r in runs) if runs else 0.0

    bodies = [r["body_s"] for r in runs]
    return {
        "ttft_s": mean("ttft_s"),
        "prefill_tok_s": mean("prefill_tok_s"),
        "decode_tok_s": mean("decode_tok_s"),
        "body_p50_s": _pct(bodies, 0.5),
        "body_p95_s": _pct(bodies, 0.95),
    }


def bench_engine(engine: BodyModel, prompts: list[str], max_new_tokens: int) -> dict[str, Any]:
    """Fixed-length greedy decode of ``max_new_tokens`` per prompt (EOS ignored, prompt caches
    cleared); whole-body latency comes from a second, natural run (EOS and repetition guard on).
    Any kind: only the engine interface (``kinds.BodyModel``) is used."""
    fixed = GenerationConfig(max_new_tokens=max_new_tokens, max_line_repeats=0, max_token_cycle_repeats=0,
                             ignore_eos=True)
    natural = GenerationConfig(max_new_tokens=max_new_tokens)
    runs = []
    engine.generate(prompts[0], replace(fixed, max_new_tokens=4))  # warm-up
    for text in prompts:
        engine.clear_caches()
        r = engine.generate(text, fixed)
        engine.clear_caches()
        t0 = time.perf_counter()
        engine.generate(text, natural)
        body = time.perf_counter() - t0
        runs.append({
            "prompt_tokens": r.prompt_tokens,
            "ttft_s": r.time_to_first_token_s,
            "prefill_tok_s": r.prefilled_tokens / r.prefill_s if r.prefill_s else 0.0,
            "decode_tok_s": r.decode_tokens_per_s,
            "body_s": body,
        })
    return {**summarize(runs), "peak_rss_mib": peak_rss_mib(), "runs": runs}


def bench_genai(variant_dir: Path, prompt_ids: list[list[int]], max_new_tokens: int, threads: int) -> dict[str, Any]:
    """onnxruntime-genai's Generator on the same graph and token ids, fixed length (min_length)."""
    import onnxruntime_genai as og

    config = og.Config(str(variant_dir))
    overlay = {"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}
    config.overlay(json.dumps(overlay))
    model = og.Model(config)
    runs = []
    for warm, ids in [(True, prompt_ids[0]), *((False, p) for p in prompt_ids)]:
        params = og.GeneratorParams(model)
        total = len(ids) + (4 if warm else max_new_tokens)
        params.set_search_options(do_sample=False, max_length=total, min_length=total)
        t0 = time.perf_counter()
        gen = og.Generator(model, params)
        gen.append_tokens(ids)
        gen.generate_next_token()
        ttft = time.perf_counter() - t0
        n = 1
        while not gen.is_done():
            gen.generate_next_token()
            n += 1
        t1 = time.perf_counter()
        if not warm:
            runs.append({
                "prompt_tokens": len(ids), "ttft_s": ttft, "prefill_tok_s": len(ids) / ttft,
                "decode_tok_s": (n - 1) / (t1 - t0 - ttft) if n > 1 else 0.0, "body_s": t1 - t0,
            })
    return {**summarize(runs), "peak_rss_mib": peak_rss_mib(), "runs": runs}


def bench_llama_cpp(gguf: Path, prompt_ids: list[list[int]], max_new_tokens: int, threads: int) -> dict[str, Any]:
    """llama-cpp-python on a GGUF of the same model (opt-in: needs ``llama_cpp`` and a GGUF path)."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_threads=threads, n_ctx=1024, verbose=False)
    runs = []
    for ids in prompt_ids:
        llm.reset()
        t0 = time.perf_counter()
        ttft = 0.0
        n = 0
        for _tok in llm.generate(ids, temp=0.0, reset=True):
            n += 1
            if n == 1:
                ttft = time.perf_counter() - t0
            if n >= max_new_tokens:
                break
        t1 = time.perf_counter()
        runs.append({
            "prompt_tokens": len(ids), "ttft_s": ttft, "prefill_tok_s": len(ids) / ttft if ttft else 0.0,
            "decode_tok_s": (n - 1) / (t1 - t0 - ttft) if n > 1 else 0.0, "body_s": t1 - t0,
        })
    return {**summarize(runs), "peak_rss_mib": peak_rss_mib(), "runs": runs}


def _subprocess(cmd: list[str], timeout: float = 900) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        return {"skipped": f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}"}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _worker_cmd(kind: str, target: Path, ids_file: Path, max_new: int, threads: int) -> list[str]:
    return [sys.executable, "-m", "codegen_lsp.engine.bench", "--worker", kind, str(target),
            "--ids", str(ids_file), "--max-new-tokens", str(max_new), "--threads", str(threads)]


def run_bench(
    model_dir: str | os.PathLike[str],
    variant: str | None = None,
    threads: int | None = None,
    max_new_tokens: int = 128,
    prompts: list[str] | None = None,
    baselines: bool = True,
    hf_checkpoint: str | os.PathLike[str] | None = None,
    gguf: str | os.PathLike[str] | None = None,
    out: TextIO | None = None,
) -> dict[str, Any]:
    """Benchmark the engine on ``model_dir`` and, when available, the baselines; writes a report to
    ``out`` (stdout by default) and returns ``{"engine": {...}, "genai": {...}, ...}``."""
    out = out or sys.stdout
    threads = threads or physical_cores()
    engine = load_engine(model_dir, device="cpu", threads=threads, variant=variant)
    texts = prompts or PROMPTS
    ids = [engine.encode(p) for p in texts]
    results: dict[str, Any] = {"info": engine.info, "engine": bench_engine(engine, texts, max_new_tokens)}
    del engine
    if baselines and load_package(model_dir).manifest.kind != "causal-lm":
        baselines = False  # the baselines run decoder LMs on the same token ids
    if baselines:
        pkg = load_package(model_dir)
        vname = variant or pkg.variant("cpu").name
        v = next(x for x in pkg.manifest.variants if x.name == vname)
        variant_dir = pkg.path(v.graph).parent
        with tempfile.TemporaryDirectory() as tmp:
            ids_file = Path(tmp) / "ids.json"
            ids_file.write_text(json.dumps(ids))
            if importlib.util.find_spec("onnxruntime_genai") is None:
                results["genai"] = {"skipped": "onnxruntime_genai not installed"}
            elif not (variant_dir / "genai_config.json").is_file():
                results["genai"] = {"skipped": f"no genai_config.json in {variant_dir}"}
            else:
                results["genai"] = _subprocess(_worker_cmd("genai", variant_dir, ids_file, max_new_tokens, threads))
            ckpt = Path(hf_checkpoint) if hf_checkpoint else Path(gguf or pkg.manifest.provenance.source)
            if importlib.util.find_spec("torch") is None:
                results["torch"] = {"skipped": "torch not installed"}
            elif not ((ckpt / "config.json").is_file() or (ckpt.suffix == ".gguf" and ckpt.is_file())):
                results["torch"] = {"skipped": f"no HF checkpoint at {ckpt} (pass hf_checkpoint)"}
            else:
                cmd = [sys.executable, str(BASELINE_TORCH), str(ckpt), "--ids", str(ids_file),
                       "--max-new-tokens", str(max_new_tokens), "--threads", str(threads)]
                results["torch"] = _subprocess(cmd)
            if gguf is not None and importlib.util.find_spec("llama_cpp") is not None:
                results["llama_cpp"] = _subprocess(_worker_cmd("llama_cpp", Path(gguf), ids_file, max_new_tokens, threads))
    write_report(results, out)
    return results


def write_report(results: dict[str, Any], out: TextIO) -> None:
    ours = results["engine"]
    info = results.get("info", {})
    out.write(f"model {info.get('model')} variant {info.get('variant')} ({info.get('graph')}), "
              f"{info.get('provider')}, {info.get('threads')} threads\n")
    cols = ["ttft_s", "prefill_tok_s", "decode_tok_s", "body_p50_s", "body_p95_s", "peak_rss_mib"]
    out.write(f"{'runner':10}" + "".join(f"{c:>15}" for c in cols) + "\n")
    for name, r in results.items():
        if name == "info":
            continue
        if "skipped" in r:
            out.write(f"{name:10} skipped: {r['skipped']}\n")
            continue
        out.write(f"{name:10}" + "".join(f"{r.get(c, 0.0):15.3f}" for c in cols) + "\n")
        if name != "engine":
            ratios = {c: (ours[c] / r[c] if r.get(c) else 0.0) for c in cols}
            out.write(f"{'  ours/' + name:10}" + "".join(f"{ratios[c]:15.2f}" for c in cols) + "\n")
    out.flush()


def _worker(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", choices=["genai", "llama_cpp"], required=True)
    p.add_argument("target")
    p.add_argument("--ids", required=True)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=physical_cores())
    a = p.parse_args(argv)
    ids = json.loads(Path(a.ids).read_text())
    fn = bench_genai if a.worker == "genai" else bench_llama_cpp
    res = fn(Path(a.target), ids, a.max_new_tokens, a.threads)
    sys.stdout.write(json.dumps(res) + "\n")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--worker" in argv:
        _worker(argv)
        return
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("model_dir")
    p.add_argument("--variant")
    p.add_argument("--threads", type=int)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--hf-checkpoint")
    p.add_argument("--gguf")
    p.add_argument("--json", help="also write the figures to this file")
    a = p.parse_args(argv)
    res = run_bench(a.model_dir, a.variant, a.threads, a.max_new_tokens, baselines=not a.no_baselines,
                    hf_checkpoint=a.hf_checkpoint, gguf=a.gguf)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
