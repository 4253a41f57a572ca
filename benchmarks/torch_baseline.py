"""PyTorch/transformers baseline for ``codegen_lsp.engine.bench`` (run as a subprocess; torch never
enters the engine's process). Greedy, fixed length, same token ids; prints one JSON line."""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("--ids", required=True)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.checkpoint.endswith(".gguf"):  # dequantized by our own loader, as the exporter does
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from export.gguf import load_gguf

        model = load_gguf(Path(a.checkpoint))[0].eval()
    else:
        model = AutoModelForCausalLM.from_pretrained(a.checkpoint, dtype=torch.float32).eval()
    prompts = json.loads(Path(a.ids).read_text())
    runs = []
    with torch.inference_mode():
        for warm, ids in [(True, prompts[0]), *((False, x) for x in prompts)]:
            t0 = time.perf_counter()
            out = model(input_ids=torch.tensor([ids]), use_cache=True)
            tok = out.logits[:, -1].argmax(-1, keepdim=True)
            ttft = time.perf_counter() - t0
            past = out.past_key_values
            steps = 4 if warm else a.max_new_tokens
            for _ in range(steps - 1):
                out = model(input_ids=tok, past_key_values=past, use_cache=True)
                past = out.past_key_values
                tok = out.logits[:, -1].argmax(-1, keepdim=True)
            t1 = time.perf_counter()
            if not warm:
                runs.append({"prompt_tokens": len(ids), "ttft_s": ttft, "prefill_tok_s": len(ids) / ttft,
                             "decode_tok_s": (steps - 1) / (t1 - t0 - ttft), "body_s": t1 - t0})
    bodies = sorted(r["body_s"] for r in runs)
    res = {
        "ttft_s": statistics.fmean(r["ttft_s"] for r in runs),
        "prefill_tok_s": statistics.fmean(r["prefill_tok_s"] for r in runs),
        "decode_tok_s": statistics.fmean(r["decode_tok_s"] for r in runs),
        "body_p50_s": bodies[len(bodies) // 2],
        "body_p95_s": bodies[min(len(bodies) - 1, round(0.95 * (len(bodies) - 1)))],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "runs": runs,
    }
    sys.stdout.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
