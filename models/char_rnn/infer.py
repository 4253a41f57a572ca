"""Reference greedy decoding of a char-rnn package with numpy + ONNX Runtime, for validation only.

The production decoder lives in ``codegen_lsp.engine``; this one pins down the graph contract:

* inputs ``input_ids`` [B, T] int64, ``h0`` / ``c0`` [num_layers, B, hidden_size] float32
  (zeros for a fresh sequence);
* outputs ``logits`` [B, T, vocab_size] float32, ``hn`` / ``cn`` [num_layers, B, hidden_size]: the
  state after the last input position, fed back as ``h0`` / ``c0`` with the next ids.

Prefill runs the whole prompt once; each decode step feeds one id with the carried state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from codegen_lsp.modelpkg import load_package


def greedy_ids(
    session: ort.InferenceSession, prompt_ids: list[int], max_new: int, num_layers: int, hidden_size: int,
    eos_id: int | None = None,
) -> list[int]:
    """Argmax continuation of one prompt (batch 1)."""
    h = np.zeros((num_layers, 1, hidden_size), np.float32)
    c = np.zeros_like(h)
    logits, h, c = session.run(None, {"input_ids": np.asarray([prompt_ids], np.int64), "h0": h, "c0": c})
    out: list[int] = []
    for _ in range(max_new):
        nxt = int(logits[0, -1].argmax())
        out.append(nxt)
        if nxt == eos_id:
            break
        logits, h, c = session.run(None, {"input_ids": np.asarray([[nxt]], np.int64), "h0": h, "c0": c})
    return out


def complete(package_dir: Path, prompt: str, max_chars: int = 200) -> str:
    """Greedy body for ``prompt`` (see ``models.prompt_format``) from a char-rnn package."""
    pkg = load_package(package_dir)
    m = pkg.manifest
    symbols: list[str] = m.extra["alphabet"]
    index = {s: i for i, s in enumerate(symbols)}
    unk = int(m.extra["unk_id"])
    session = ort.InferenceSession(str(pkg.path(pkg.variant("cpu").graph)), providers=["CPUExecutionProvider"])
    ids = [index.get(ch, unk) for ch in prompt]
    eos = m.special_tokens.eos[0]
    out = greedy_ids(session, ids, max_chars, m.num_layers, m.hidden_size, eos)
    return "".join(symbols[i] for i in out if i not in (unk, eos))
