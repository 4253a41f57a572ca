"""The decoder graph runner: one ONNX Runtime session plus the KV cache it reads and writes.

Two graph styles share one interface:

* growing past (``torch.onnx`` graphs): ``present`` = concat(``past``, new) and becomes the next
  step's ``past``; ORT allocates each present on the device and the engine rebinds it as-is;
* shared buffer (GroupQueryAttention graphs, ``IONames.past_present_share_buffer``): one
  preallocated ``[B, H, capacity, D]`` buffer per tensor is bound as both past and present and the
  attention mask spans the valid prefix only, so a step never copies the cache.

Inputs and outputs go through I/O binding with OrtValues, so on CUDA the cache never leaves the GPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ..modelpkg import IONames, Manifest, ManifestInvalid

log = logging.getLogger(__name__)

_ORT_INT = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}

HostKV = list[tuple[np.ndarray, np.ndarray]]
"""Per layer (key, value), each ``[1, kv_heads, length, head_size]`` on the host."""


@dataclass
class KVState:
    """The KV cache of one batch: per layer key/value OrtValues and how many positions are valid."""

    batch: int
    length: int
    keys: list[ort.OrtValue]
    values: list[ort.OrtValue]
    capacity: int | None = None
    """Positions the shared buffers hold; None for the growing style."""
    host: list[np.ndarray] = field(default_factory=list)
    """numpy arrays backing CPU shared buffers (the OrtValues alias them; keep them alive)."""
    binding: Any = None
    """Shared-buffer style: the I/O binding with the cache bound once; each step rebinds only the
    token ids, mask and logits (rebinding 2 x layers cache tensors per token costs ~10% of a step)."""
    logits_buf: np.ndarray | None = None
    """Preallocated [B, 1, V] output for single-position logits, so a step allocates nothing."""


@dataclass(frozen=True)
class KVDims:
    """The shapes a decoder session needs (from a manifest, or from the exporter before one exists)."""

    num_layers: int
    num_kv_heads: int
    head_size: int
    vocab_size: int

    @classmethod
    def of(cls, manifest: Manifest) -> KVDims:
        return cls(manifest.num_layers, manifest.num_kv_heads, manifest.head_size, manifest.vocab_size)


class DecoderSession:
    """Runs prefill and decode steps of a decoder graph with a KV cache. The engine serves through
    it and the exporter validates through it, so a validated package has exercised this code."""

    def __init__(
        self,
        graph: Path,
        dims: KVDims,
        io: IONames,
        providers: list[str],
        options: ort.SessionOptions,
    ) -> None:
        self.dims = dims
        self.io: IONames = io
        self.session = ort.InferenceSession(str(graph), sess_options=options, providers=providers)
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        types = {i.name: i.type for i in self.session.get_inputs()}
        self._ids_dtype = _ORT_INT.get(types.get(self.io.input_ids, ""), np.int64)
        self._mask_dtype = _ORT_INT.get(types.get(self.io.attention_mask, ""), np.int64)
        self._pos_dtype = _ORT_INT.get(types.get(self.io.position_ids or "", ""), np.int64)
        past0 = self.io.past_key.format(i=0)
        self.kv_dtype = np.float16 if types.get(past0) == "tensor(float16)" else np.float32
        self.shared_buffer = self.io.past_present_share_buffer
        n = dims.num_layers
        self._past = [(self.io.past_key.format(i=i), self.io.past_value.format(i=i)) for i in range(n)]
        self._present = [(self.io.present_key.format(i=i), self.io.present_value.format(i=i)) for i in range(n)]
        self._kv_shape = (dims.num_kv_heads, dims.head_size)
        out_types = {o.name: o.type for o in self.session.get_outputs()}
        self._logits_dtype = np.float16 if out_types.get(self.io.logits) == "tensor(float16)" else np.float32
        logits_shape: list[Any] = next((o.shape for o in self.session.get_outputs() if o.name == self.io.logits), [])
        if logits_shape and isinstance(logits_shape[-1], int) and logits_shape[-1] != dims.vocab_size:
            raise ManifestInvalid(graph.parent, f"vocab_size is {dims.vocab_size} but the graph's "
                                  f"{self.io.logits} has {logits_shape[-1]} entries")
        self.logits_last_only = self.io.logits_last_only or (len(logits_shape) == 3 and logits_shape[1] == 1)

    @property
    def style(self) -> str:
        return "shared-buffer" if self.shared_buffer else "growing"

    # -- KV state ------------------------------------------------------------------------------
    def _ortvalue(self, arr: np.ndarray) -> ort.OrtValue:
        if self.device == "cuda":
            return ort.OrtValue.ortvalue_from_numpy(arr, "cuda", 0)
        return ort.OrtValue.ortvalue_from_numpy(arr)

    def new_state(self, batch: int, capacity: int, prefix: HostKV | None = None) -> KVState:
        """A batch whose every row starts from ``prefix`` (or empty); ``capacity`` bounds the
        positions a shared buffer must hold (prompt + new tokens)."""
        h, d = self._kv_shape
        plen = prefix[0][0].shape[2] if prefix else 0
        keys: list[ort.OrtValue] = []
        values: list[ort.OrtValue] = []
        host: list[np.ndarray] = []
        for layer in range(self.dims.num_layers):
            for j, out in enumerate((keys, values)):
                if self.shared_buffer:
                    arr = np.zeros((batch, h, capacity, d), dtype=self.kv_dtype)
                    if prefix:
                        arr[:, :, :plen] = prefix[layer][j]
                else:
                    src = prefix[layer][j] if prefix else np.zeros((1, h, 0, d), self.kv_dtype)
                    arr = np.ascontiguousarray(np.broadcast_to(src, (batch, h, plen, d)))
                ov = self._ortvalue(arr)
                out.append(ov)
                if self.device == "cpu":
                    host.append(arr)
        state = KVState(batch, plen, keys, values, capacity if self.shared_buffer else None, host)
        if self.shared_buffer:
            state.binding = self.session.io_binding()
            state.binding.bind_output(self.io.logits, "cpu")  # first: get_outputs()[0] is the logits
            for layer, ((pk, pv), (ok, ov)) in enumerate(zip(self._past, self._present, strict=True)):
                state.binding.bind_ortvalue_input(pk, keys[layer])
                state.binding.bind_ortvalue_input(pv, values[layer])
                state.binding.bind_ortvalue_output(ok, keys[layer])
                state.binding.bind_ortvalue_output(ov, values[layer])
        state.logits_buf = np.empty((batch, 1, self.dims.vocab_size), dtype=self._logits_dtype)
        return state

    def to_host(self, state: KVState, length: int | None = None) -> HostKV:
        """Copy row 0's first ``length`` positions to the host (prefix cache, batch replication)."""
        n = state.length if length is None else length
        if state.host and state.capacity is not None:  # CPU shared buffers: slice the numpy arrays the OrtValues alias instead of copying whole buffers
            pairs = [(state.host[2 * i], state.host[2 * i + 1]) for i in range(len(state.keys))]
        else:
            pairs = [(k.numpy(), v.numpy()) for k, v in zip(state.keys, state.values, strict=True)]
        return [(np.array(k[:1, :, :n]), np.array(v[:1, :, :n])) for k, v in pairs]

    def replicate(self, state: KVState, batch: int) -> KVState:
        """A new state whose ``batch`` rows all hold row 0 of ``state``."""
        if batch == state.batch:
            return state
        cap = state.capacity if state.capacity is not None else state.length
        return self.new_state(batch, cap, self.to_host(state))

    # -- running -------------------------------------------------------------------------------
    def step(self, state: KVState, ids: np.ndarray) -> np.ndarray:
        """Run ``ids`` ([B, S]) after the cached positions; returns last-position logits [B, V]
        (float32) and advances ``state`` in place."""
        batch, seq = ids.shape
        if batch != state.batch:
            raise ValueError(f"ids batch {batch} != KV batch {state.batch}")
        total = state.length + seq
        if state.capacity is not None and total > state.capacity:
            raise ValueError(f"KV buffer holds {state.capacity} positions, step needs {total}")
        io = state.binding if state.binding is not None else self.session.io_binding()
        io.bind_cpu_input(self.io.input_ids, np.ascontiguousarray(ids, dtype=self._ids_dtype))
        io.bind_cpu_input(self.io.attention_mask, np.ones((batch, total), dtype=self._mask_dtype))
        if self.io.position_ids:
            pos = np.broadcast_to(np.arange(state.length, total, dtype=self._pos_dtype), (batch, seq))
            io.bind_cpu_input(self.io.position_ids, np.ascontiguousarray(pos))
        buf = state.logits_buf
        into_buf = buf is not None and (seq == 1 or self.logits_last_only)
        if into_buf:
            assert buf is not None
            io.bind_output(self.io.logits, "cpu", 0, buf.dtype, list(buf.shape), buf.ctypes.data)
        else:  # prefill of a graph that returns every position: [B, S, V], allocated by ORT
            io.bind_output(self.io.logits, "cpu")
        if not self.shared_buffer:
            for layer, ((pk, pv), (ok, ov)) in enumerate(zip(self._past, self._present, strict=True)):
                io.bind_ortvalue_input(pk, state.keys[layer])
                io.bind_ortvalue_input(pv, state.values[layer])
                io.bind_output(ok, self.device)
                io.bind_output(ov, self.device)
        self.session.run_with_iobinding(io)
        if not self.shared_buffer:
            outs = io.get_outputs()  # binding order: logits, then key/value per layer
            state.keys = [outs[1 + 2 * i] for i in range(len(self._past))]
            state.values = [outs[2 + 2 * i] for i in range(len(self._past))]
            state.host = []  # the cache now lives in ORT-allocated outputs
        state.length = total
        if into_buf:
            assert buf is not None
            return np.array(buf[:, 0, :], dtype=np.float32)  # a copy: the buffer is reused next step
        return np.asarray(io.get_outputs()[0].numpy()[:, -1, :], dtype=np.float32)
