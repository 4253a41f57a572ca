"""Validate an exported causal LM against PyTorch: I/O names, shapes, logits and greedy parity.

The greedy/logits check drives every graph through ``RuntimeStepper``: the runtime's own
``DecoderSession`` (the code that serves the package: I/O binding, the shared KV buffer of fused
GroupQueryAttention graphs, the growing past/present of standard ones, dtypes), so a validated
package has exercised the path it is served by. ``check_graph`` adds the structural checks specific to
the standard graph (names, shapes, batch > 1, non-empty past) with one plain ONNX Runtime call.

Decode steps are teacher-forced: both sides are fed PyTorch's greedy token, so every step's logits
are compared on the same history, and a step "agrees" when ONNX Runtime's argmax is PyTorch's. With
all steps agreeing, ORT's free-running greedy output is identical to PyTorch's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort
import torch
from transformers import DynamicCache

from codegen_lsp.engine.generate import session_options
from codegen_lsp.engine.session import DecoderSession, KVDims, KVState
from codegen_lsp.modelpkg import IONames, ManifestInvalid

from .errors import (
    GreedyMismatch,
    InputNameMismatch,
    LogitsMismatch,
    OutputNameMismatch,
    OutputShapeMismatch,
    ProviderUnavailable,
)
from .specs import FP32, ArchSpec, ModelShape, Tolerance
from .torch_export import PastPresentWrapper, sample_inputs

PROMPTS = (
    'def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""',
    'def is_palindrome(text: str) -> bool:\n    """True when text reads the same backwards."""',
    'import os\n\n\ndef list_python_files(root: str) -> list[str]:\n    """All .py files under root."""',
    'class Stack:\n    def push(self, item):\n        """Push item on top."""',
)
"""Validation prompts: the shape of what the engine sends (a signature plus docstring)."""

_ORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
_NP_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class Stepper(Protocol):
    """One sequence decoded incrementally by some runtime."""

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        """Start a new sequence from prompt ids ``[seq]`` (int64); return last-position logits ``[vocab]``."""
        ...

    def step(self, token: int) -> np.ndarray:
        """Append one token; return its logits ``[vocab]``."""
        ...


class TorchStepper:
    """The PyTorch reference, decoding with a transformers ``DynamicCache``."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.eval()
        self.cache: DynamicCache | None = None

    @torch.no_grad()
    def _run(self, ids: torch.Tensor) -> np.ndarray:
        out = self.model(input_ids=ids, past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        return out.logits[0, -1].float().numpy()

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        self.cache = DynamicCache()
        return self._run(torch.from_numpy(np.asarray(ids, dtype=np.int64))[None])

    def step(self, token: int) -> np.ndarray:
        return self._run(torch.tensor([[token]]))


def usable_provider(provider: str) -> str:
    """ONNX Runtime's name for ``provider`` (``cpu``/``cuda``), or ``ProviderUnavailable`` when this
    machine cannot run it (checked before any session: a failed attempt only makes the loader print)."""
    from codegen_lsp.engine.providers import probe_cuda

    name = _ORT_PROVIDERS[provider]
    if name not in ort.get_available_providers():
        raise ProviderUnavailable(f"{name} is not in this onnxruntime build")
    why_not = probe_cuda() if provider == "cuda" else None
    if why_not is not None:
        raise ProviderUnavailable(f"{name}: {why_not}")
    return name


def open_session(path: Path, provider: str, threads: int = 0) -> ort.InferenceSession:
    """A session on ``provider`` (``cpu``/``cuda``); ``ProviderUnavailable`` when ORT would fall back.
    ``threads``: intra-op threads (0: ORT's default)."""
    name = usable_provider(provider)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    try:
        sess = ort.InferenceSession(str(path), opts, providers=[name])
    except Exception as exc:  # CUDA libraries missing or no device
        raise ProviderUnavailable(f"{name} failed to start: {exc}") from exc
    if sess.get_providers()[0] != name:
        raise ProviderUnavailable(f"{name} is built in but fell back to {sess.get_providers()[0]} (no device?)")
    return sess


class RuntimeStepper:
    """One sequence at a time through the runtime's ``DecoderSession``, batch 1.

    ``max_len`` bounds prompt + steps (the shared-buffer style preallocates that many positions)."""

    def __init__(self, graph: Path, dims: KVDims, io: IONames, provider: str = "cpu", threads: int = 0,
                 max_len: int = 2048) -> None:
        name = usable_provider(provider)
        try:
            self.session = DecoderSession(graph, dims, io, [name], session_options(threads))
        except ManifestInvalid as exc:  # the graph's logits disagree with the model's vocabulary
            raise OutputShapeMismatch(exc.detail) from exc
        except Exception as exc:  # CUDA libraries missing or no device; no CPU kernel for an op
            raise ProviderUnavailable(f"{name} failed to start: {str(exc)[:300]}") from exc
        if self.session.device != provider:
            raise ProviderUnavailable(f"{name} is built in but fell back to the CPU (no device?)")
        self.provider = name
        self.max_len = max_len
        self.state: KVState | None = None

    @property
    def length(self) -> int:
        return self.state.length if self.state is not None else 0

    def prefill(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        self.state = self.session.new_state(1, self.max_len)
        return self.session.step(self.state, np.asarray(ids, dtype=np.int64)[None])[0]

    def step(self, token: int) -> np.ndarray:
        assert self.state is not None, "prefill first"
        return self.session.step(self.state, np.array([[int(token)]], dtype=np.int64))[0]


def _excess(ort_out: np.ndarray, ref: np.ndarray, tol: Tolerance) -> tuple[float, float]:
    """(max abs error, max amount by which an element exceeds its allowed error)."""
    diff = np.abs(ort_out.astype(np.float32) - ref)
    allowed = tol.atol + tol.rtol * np.abs(ref) + tol.scale_rtol * float(ref.std())
    return float(diff.max()), float((diff - allowed).max())


def _bound(tol: Tolerance) -> str:
    scale = f" + {tol.scale_rtol:g}*std(torch)" if tol.scale_rtol else ""
    return f"atol {tol.atol:g} + rtol {tol.rtol:g}*|torch|{scale}"


def validate_causal_lm(
    torch_model: torch.nn.Module,
    stepper: Stepper,
    prompts_token_ids: Sequence[Sequence[int]],
    steps: int = 32,
    tolerance: Tolerance | None = None,
) -> dict[str, Any]:
    """Compare ``stepper`` with ``torch_model`` on each prompt: prefill logits, then ``steps``
    teacher-forced decode steps. Returns the record stored in ``Variant.validation``; raises
    ``LogitsMismatch`` or ``GreedyMismatch`` (naming the prompt and step) when it fails."""
    tol = tolerance or FP32
    ref = TorchStepper(torch_model)
    err_prefill = err_decode = 0.0
    matched = ties = total = 0
    identical_prefix: list[int] = []
    for p, prompt in enumerate(prompts_token_ids):
        ids = np.asarray(prompt, dtype=np.int64)
        want, got = ref.prefill(ids), stepper.prefill(ids)
        for s in range(steps + 1):
            where = f"prompt {p} ({len(ids)} tokens), " + ("prefill" if s == 0 else f"decode step {s}")
            if got.shape != want.shape:
                raise OutputShapeMismatch(f"{where}: logits shape {got.shape}, PyTorch {want.shape}")
            err, over = _excess(got, want, tol)
            if s == 0:
                err_prefill = max(err_prefill, err)
            else:
                err_decode = max(err_decode, err)
            if over > 0:
                raise LogitsMismatch(f"{where}: max |ort - torch| = {err:.3g} exceeds {_bound(tol)}")
            if s == steps:
                break
            token, picked = int(want.argmax()), int(got.argmax())
            total += 1
            if picked == token:
                matched += 1
            elif want[token] - want[picked] <= tol.tie_margin:
                ties += 1
            elif len(identical_prefix) == p:
                identical_prefix.append(s)
            want, got = ref.step(token), stepper.step(token)
        if len(identical_prefix) == p:
            identical_prefix.append(steps)
    agreement = (matched + ties) / max(total, 1)
    # greedy_identical_prefix, per prompt: steps before the first non-tie disagreement, i.e. how long
    # ORT's free-running greedy output stays identical to PyTorch's.
    result: dict[str, Any] = {
        "status": "passed",
        "onnxruntime": ort.__version__,
        "torch": torch.__version__.split("+")[0],
        "prompts": len(prompts_token_ids),
        "prompt_tokens": [len(p) for p in prompts_token_ids],
        "steps": steps,
        "atol": tol.atol,
        "rtol": tol.rtol,
        "scale_rtol": tol.scale_rtol,
        "tie_margin": tol.tie_margin,
        "max_abs_err_prefill": err_prefill,
        "max_abs_err_decode": err_decode,
        "greedy_steps_matched": matched,
        "greedy_ties": ties,
        "greedy_steps_total": total,
        "greedy_agreement": round(agreement, 4),
        "min_greedy_agreement": tol.min_greedy_agreement,
        "greedy_identical_prefix": identical_prefix,
    }
    if agreement < tol.min_greedy_agreement:
        first = next(i for i, n in enumerate(identical_prefix) if n < steps)
        raise GreedyMismatch(
            f"greedy agreement {agreement:.1%} < {tol.min_greedy_agreement:.0%} "
            f"({matched} exact + {ties} ties of {total}); prompt {first} first differs at step "
            f"{identical_prefix[first]}"
        )
    return result


def check_graph(
    session: ort.InferenceSession,
    torch_model: torch.nn.Module,
    spec: ArchSpec,
    shape: ModelShape,
    tolerance: Tolerance,
) -> None:
    """Structural checks of a standard past/present graph: exact input and output names, then one
    batched run (batch 2, 3 new tokens on 5 cached) whose output shapes and values match PyTorch's."""
    want_in, want_out = spec.input_names(shape.num_layers), spec.output_names(shape.num_layers)
    have_in = [i.name for i in session.get_inputs()]
    have_out = [o.name for o in session.get_outputs()]
    if sorted(have_in) != sorted(want_in):
        raise InputNameMismatch(f"graph inputs {_diff(have_in, want_in)}")
    if have_out != want_out:
        raise OutputNameMismatch(f"graph outputs {_diff(have_out, want_out)} (order matters)")
    feeds = _realistic_inputs(torch_model, spec, shape, batch=2, seq=3, past=5)
    wrapper = PastPresentWrapper(torch_model, shape.num_layers, spec.position_ids_input).eval()
    with torch.no_grad():
        expected = [t.float().numpy() for t in wrapper(*feeds.values())]
    kv_dtype = _NP_DTYPES[next(i.type for i in session.get_inputs() if i.name == want_in[-1])]
    np_feeds = {k: v.numpy().astype(kv_dtype) if v.is_floating_point() else v.numpy() for k, v in feeds.items()}
    got = session.run(None, np_feeds)
    for name, g, e in zip(want_out, got, expected, strict=True):
        if g.shape != e.shape:
            raise OutputShapeMismatch(f"output '{name}' has shape {list(g.shape)}, PyTorch {list(e.shape)}")
        err, over = _excess(g, e, tolerance)
        if over > 0:
            raise LogitsMismatch(
                f"output '{name}' (batch 2, past 5): max |ort - torch| = {err:.3g} exceeds {_bound(tolerance)}"
            )


def _realistic_inputs(
    torch_model: torch.nn.Module, spec: ArchSpec, shape: ModelShape, batch: int, seq: int, past: int
) -> dict[str, torch.Tensor]:
    """Random token ids, with the past filled by PyTorch's own keys/values for a random prefix
    (random cache tensors would put attention, and an int8 graph's errors, far off real use)."""
    feeds = sample_inputs(spec, shape, batch, seq, past, seed=1)
    prefix = torch.randint(0, shape.vocab_size, (batch, past), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        cache = torch_model(input_ids=prefix, use_cache=True).past_key_values
    io = spec.io_names()
    for i, layer in enumerate(cache.layers):
        feeds[io.past_key.format(i=i)] = layer.keys
        feeds[io.past_value.format(i=i)] = layer.values
    return feeds


def _diff(have: list[str], want: list[str]) -> str:
    missing = [n for n in want if n not in have]
    extra = [n for n in have if n not in want]
    return f"missing {missing[:4]}, unexpected {extra[:4]}, have {have[:4]}…"
