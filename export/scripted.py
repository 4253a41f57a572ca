"""A scripted causal LM: a real model package whose next token is an exact lookup of the last bytes.

Tests of the protocol, the editors, the generation glue and the CLI need a model that writes known
bodies, and whose text is bit-for-bit the same on every CPU and thread count (a trained tiny model
is not: its weights, and so its text, move with the machine). This package goes through the real
path (manifest, ONNX Runtime session, KV cache, engine, grammar check), but its graph is pure
integer arithmetic plus a table lookup, built from a script of :class:`Rule` s without training:

* the tokenizer is byte-level with no merges, so a window of tokens is a window of UTF-8 bytes;
* the "KV cache" (one layer, one head, head size 1) carries the token ids as floats (exact below
  2**24), so the graph sees the whole history at every step;
* the graph hashes the last ``window`` ids with two polynomial hashes in int64 (modulo two primes
  below 2**31: no overflow, no rounding), finds the hash among the script's contexts with ``Equal``,
  and gathers that context's logits row: 0 for each scripted next token, -1e4 for every other.
  A context the script does not know writes ``<|endoftext|>``.

Several continuations of one rule branch with equal probability (greedy takes the lowest token
id); a rule may write an invalid body on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from codegen_lsp.modelpkg import (
    IONames,
    Manifest,
    PromptConvention,
    Provenance,
    SpecialTokens,
    Variant,
    file_entries,
    write_manifest,
)

from .errors import ExportError

EOS = 0
EOS_TEXT = "<|endoftext|>"
WINDOW = 48
CONTEXT_LENGTH = 8192
OFF = -1.0e4
_P1, _P2 = 2_147_483_647, 2_147_483_629  # primes below 2**31: every product fits in int64
_B1, _B2 = 1_000_003, 998_244_353
GRAPH = "cpu-fp32/model.onnx"
TOKENIZER = "tokenizer.json"


class ScriptError(ExportError):
    """The script cannot be compiled: a rule too short for the window, or two rules that disagree."""


@dataclass(frozen=True)
class Rule:
    """After a prompt that ends with ``after``, write one of ``write`` (each followed by end of text)."""

    after: str
    """The end of the prompt, at least ``window`` bytes: usually the signature and docstring."""
    write: Sequence[str]
    """Continuations; several branch with equal probability at the first byte where they differ."""


@dataclass
class _Context:
    next_ids: set[int] = field(default_factory=set)
    rule: int = -1


def byte_tokenizer(special: Sequence[str] = ()) -> Tokenizer:
    """One token per byte (ids 1..256), ``<|endoftext|>`` = 0, no merges; ``special`` tokens (e.g.
    FIM markers) get ids 257, 258, ..."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {EOS_TEXT: EOS, **{ch: i + 1 for i, ch in enumerate(alphabet)}}
    vocab.update({tok: 257 + i for i, tok in enumerate(special)})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOS_TEXT, *special])
    return tok


def _hash_weights(window: int) -> tuple[np.ndarray, np.ndarray]:
    a1 = np.array([pow(_B1, window - 1 - j, _P1) for j in range(window)], dtype=np.int64)
    a2 = np.array([pow(_B2, window - 1 - j, _P2) for j in range(window)], dtype=np.int64)
    return a1, a2


def context_key(ids: Sequence[int], window: int) -> int:
    """The graph's hash of the last ``window`` ids (ids + 1, zero-padded on the left)."""
    a1, a2 = _hash_weights(window)
    tail = [i + 1 for i in ids[-window:]]
    v = np.array([0] * (window - len(tail)) + tail, dtype=np.int64)
    return int((v * a1).sum() % _P1) * _P2 + int((v * a2).sum() % _P2)


def compile_script(rules: Sequence[Rule], tok: Tokenizer, window: int) -> dict[int, _Context]:
    """Every context the script passes through -> the tokens that may follow it."""
    table: dict[int, _Context] = {}
    seen: dict[int, tuple[int, ...]] = {}
    for r, rule in enumerate(rules):
        start = len(tok.encode(rule.after).ids)
        if start < window:
            raise ScriptError(f"rule {r}: 'after' is {start} bytes; it must hold at least {window}: {rule.after!r}")
        if not rule.write:
            raise ScriptError(f"rule {r}: nothing to write")
        for text in rule.write:
            ids = tok.encode(rule.after + text).ids + [EOS]
            for i in range(start, len(ids)):
                ctx = tuple(ids[i - window:i])
                key = context_key(ctx, window)
                if key in seen and seen[key] != ctx:
                    raise ScriptError(f"rule {r}: hash collision between two contexts; change the text")
                seen[key] = ctx
                entry = table.setdefault(key, _Context(rule=r))
                if entry.rule != r and ids[i] not in entry.next_ids:
                    shown = tok.decode(list(ctx))
                    raise ScriptError(f"rules {entry.rule} and {r} continue {shown!r} differently; "
                                      f"make the texts differ within the last {window} bytes")
                entry.next_ids.add(ids[i])
    return table


def _graph(table: dict[int, _Context], window: int, vocab: int) -> onnx.ModelProto:
    keys = np.array(sorted(table), dtype=np.int64)
    logits = np.full((len(keys) + 1, vocab), OFF, dtype=np.float32)
    logits[0, EOS] = 0.0  # row 0: an unknown context ends the text
    for row, key in enumerate(keys, start=1):
        logits[row, sorted(table[int(key)].next_ids)] = 0.0
    a1, a2 = _hash_weights(window)
    consts = {
        "keys": keys, "rows": np.arange(1, len(keys) + 1, dtype=np.int64), "table": logits,
        "a1": a1, "a2": a2, "p1": np.array(_P1, np.int64), "p2": np.array(_P2, np.int64),
        "one": np.array(1, np.int64), "axes13": np.array([1, 3], np.int64), "axis1": np.array([1], np.int64),
        "pads": np.array([0, window, 0, 0], np.int64), "start": np.array([-window], np.int64),
        "end": np.array([np.iinfo(np.int64).max], np.int64),
    }
    n = helper.make_node
    nodes = [
        n("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
        n("Unsqueeze", ["ids_f", "axes13"], ["ids_kv"]),  # [B, 1, S, 1]
        n("Concat", ["past_key_values.0.key", "ids_kv"], ["present.0.key"], axis=2),
        n("Identity", ["present.0.key"], ["present.0.value"]),
        n("Squeeze", ["present.0.key", "axes13"], ["seq_f"]),  # [B, T]: every id so far
        n("Cast", ["seq_f"], ["seq"], to=TensorProto.INT64),
        n("Add", ["seq", "one"], ["seq1"]),
        n("Pad", ["seq1", "pads"], ["padded"]),  # zeros before the first id
        n("Slice", ["padded", "start", "end", "axis1"], ["win"]),  # [B, window]
        n("Mul", ["win", "a1"], ["w1"]), n("ReduceSum", ["w1", "axis1"], ["s1"], keepdims=0),
        n("Mod", ["s1", "p1"], ["h1"]),
        n("Mul", ["win", "a2"], ["w2"]), n("ReduceSum", ["w2", "axis1"], ["s2"], keepdims=0),
        n("Mod", ["s2", "p2"], ["h2"]),
        n("Mul", ["h1", "p2"], ["h1s"]), n("Add", ["h1s", "h2"], ["key"]),  # [B]
        n("Unsqueeze", ["key", "axis1"], ["key_col"]),  # [B, 1]
        n("Equal", ["key_col", "keys"], ["hit"]),  # [B, K]
        n("Cast", ["hit"], ["hit_i"], to=TensorProto.INT64),
        n("Mul", ["hit_i", "rows"], ["hit_rows"]), n("ReduceSum", ["hit_rows", "axis1"], ["row"], keepdims=0),
        n("Gather", ["table", "row"], ["last"], axis=0),  # [B, V]
        n("Unsqueeze", ["last", "axis1"], ["logits"]),  # [B, 1, V]
    ]
    kv = ["batch", 1, "past", 1]
    graph = helper.make_graph(
        nodes, "scripted",
        inputs=[
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
            helper.make_tensor_value_info("past_key_values.0.key", TensorProto.FLOAT, kv),
            helper.make_tensor_value_info("past_key_values.0.value", TensorProto.FLOAT, kv),
        ],
        outputs=[
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1, vocab]),
            helper.make_tensor_value_info("present.0.key", TensorProto.FLOAT, ["batch", 1, "total", 1]),
            helper.make_tensor_value_info("present.0.value", TensorProto.FLOAT, ["batch", 1, "total", 1]),
        ],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="codegen-lsp scripted")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _replay(graph: Path, tok: Tokenizer, rules: Sequence[Rule]) -> None:
    """Greedy decode of every rule through ONNX Runtime must give its first continuation's greedy path."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    for r, rule in enumerate(rules):
        ids = tok.encode(rule.after).ids
        past = np.zeros((1, 1, 0, 1), np.float32)
        feed, out = ids, []
        for _ in range(max(len(tok.encode(t).ids) for t in rule.write) + 1):
            logits, past, _ = sess.run(None, {
                "input_ids": np.array([feed], np.int64), "attention_mask": np.ones((1, past.shape[2] + len(feed)), np.int64),
                "past_key_values.0.key": past, "past_key_values.0.value": past})
            nxt = int(np.argmax(logits[0, -1]))
            if nxt == EOS:
                break
            out.append(nxt)
            feed = [nxt]
        text = tok.decode(out)
        if text not in rule.write:
            raise ScriptError(f"rule {r}: the graph wrote {text!r}, the script says one of {list(rule.write)!r}")


def build_scripted_package(out_dir: Path, rules: Sequence[Rule], name: str = "scripted",
                           window: int = WINDOW, fim: tuple[str, str, str] | None = None) -> Path:
    """Compile ``rules`` into a model package at ``out_dir`` and replay each rule through ONNX Runtime.
    ``fim``: prefix, suffix and middle markers; the package then declares a fill-in-the-middle prompt
    and the rules' ``after`` texts contain the markers."""
    out = Path(out_dir)
    tok = byte_tokenizer(fim or ())
    vocab = tok.get_vocab_size()
    table = compile_script(rules, tok, window)
    (out / GRAPH).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(_graph(table, window, vocab), str(out / GRAPH))
    tok.save(str(out / TOKENIZER))
    _replay(out / GRAPH, tok, rules)
    script = json.dumps([{"after": r.after, "write": list(r.write)} for r in rules], sort_keys=True)
    import hashlib

    manifest = Manifest(
        name=name, kind="causal-lm", architecture="scripted", tokenizer=TOKENIZER,
        num_layers=1, num_attention_heads=1, num_kv_heads=1, head_size=1, hidden_size=1,
        vocab_size=vocab, context_length=CONTEXT_LENGTH,
        special_tokens=SpecialTokens(eos=[EOS]),
        prompt=PromptConvention(template="fim" if fim else "raw", end_before_newline=True, add_bos=False,
                                **({"fim_prefix": fim[0], "fim_suffix": fim[1], "fim_middle": fim[2]} if fim else {})),
        provenance=Provenance(
            source=f"script of {len(rules)} rules", source_sha256=hashlib.sha256(script.encode()).hexdigest(),
            license="Apache-2.0", exporter_version="codegen-lsp export.scripted",
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            notes=f"scripted lookup model for tests: next byte = table[last {window} bytes]; not trained",
        ),
        # One graph for both providers: integer ops and a gather are exact on either, and a cuda
        # variant makes loading it exercise the same provider choice as a real package.
        variants=[Variant(
            name=f"{provider}-fp32", provider=provider, graph=GRAPH, builder="codegen-lsp scripted",
            io=IONames(position_ids=None, logits_last_only=True),
            validation={"status": "exact", "replayed_rules": len(rules), "contexts": len(table)},
        ) for provider in ("cpu", "cuda")],
        files=file_entries(out, [GRAPH, TOKENIZER]),
        extra={"window": window},
    )
    write_manifest(out, manifest)
    return out
