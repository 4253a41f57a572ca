"""The engine for ``tree-decoder`` packages: a grammar-action model (TRANX-style) whose beam search
runs here in the host over two ONNX graphs, so that every finished hypothesis is a whole Python AST.

Graph contract (names in ``manifest.extra['treedec']['graphs']``): ``encoder`` ``src_ids`` [1, S] ->
``memory``, ``att_keys``, ``copy_keys`` [1, S, H], ``h0``, ``c0`` [1, H]; ``decoder_step``
``prev_action`` [B], ``prev_att`` [B, H], ``parent_att`` [B, H], ``field`` [B], ``h``, ``c`` [B, H],
``memory``, ``att_keys``, ``copy_keys`` [B, S, H] -> ``h_out``, ``c_out``, ``att`` [B, H],
``rule_logits`` [B, R], ``gen_logp`` [B, V], ``copy_logp`` [B, S]. At each step only the actions the
grammar allows at the frontier field are scored; candidates are the best finished hypotheses,
rendered with ``ast.unparse`` at the site's indentation. Cancellation and the time budget are
checked before every step. The sampling settings (temperature, seed) do not apply: beam search is
deterministic.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from ...modelpkg import ManifestInvalid, ModelPackage
from ..config import CancelLike, GenerationConfig, OnLine, run_waiting
from ..generate import open_graphs
from ..providers import ProviderChoice, physical_cores
from ..results import Cancelled, FinishReason, Generation, GenerationResult
from ..sampling import log_softmax
from .grammar import ORDERS, PRIMITIVES, Action, Frontier, Grammar, build_body, copy_value, render, token_fits
from .prompt import function_site

log = logging.getLogger(__name__)

GRAPHS = ("encoder", "decoder_step")
IO = {
    "encoder": (("src_ids",), ("memory", "att_keys", "copy_keys", "h0", "c0")),
    "decoder_step": (("prev_action", "prev_att", "parent_att", "field", "h", "c", "memory", "att_keys", "copy_keys"),
                     ("h_out", "c_out", "att", "rule_logits", "gen_logp", "copy_logp")),
}
END_TOKEN = 0
"""Primitive-vocabulary id 0: ``reduce`` at a primitive field (no value / end of the list)."""
UNK_TOKEN = 1


@dataclass
class Hypothesis:
    actions: list[Action]
    ids: list[int]
    """Action-embedding ids (fed back as ``prev_action``)."""
    frontier: Frontier
    h: np.ndarray
    c: np.ndarray
    att: np.ndarray
    atts: list[np.ndarray]
    """Attentional vector after each step (parent feeding)."""
    score: float = 0.0


@dataclass
class Search:
    """Where a beam search ended."""

    done: list[Hypothesis]
    """Finished hypotheses, best first."""
    live: list[Hypothesis]
    t_prefill: float
    steps: int = 0
    rows: int = 0
    """Hypotheses run through the decoder, summed over steps."""
    stopped: FinishReason | None = None


class TreeDecoderEngine:
    """A loaded tree-decoder package ready to generate."""

    def __init__(self, package: ModelPackage, choice: ProviderChoice, options: Any) -> None:
        self.package = package
        self.manifest = m = package.manifest
        self.choice = choice
        self.threads = getattr(options, "threads", None) or physical_cores()
        self.variant = v = package.choose_variant(choice.provider, getattr(options, "variant", None))
        self._read_spec(m.extra.get("treedec"))
        self.sessions = open_graphs(package, v, GRAPHS, self.threads, choice, self.names)
        self.tokenizer = Tokenizer.from_file(str(package.path(m.tokenizer)))
        self._index = {t: i for i, t in enumerate(self.tokens)}
        self.type_masks = {t: np.asarray([i > UNK_TOKEN and token_fits(t, tok) for i, tok in enumerate(self.tokens)])
                           for t in PRIMITIVES}
        self.dropped = 0
        """Finished hypotheses whose tree did not render to code that parses (kept out of the candidates)."""
        self.info: dict[str, Any] = {
            "model": m.name, "provider": self.sessions["decoder_step"].get_providers()[0]
            .removesuffix("ExecutionProvider").lower(), "reason": choice.reason, "variant": v.name,
            "graph": "tree-decoder", "context_length": m.context_length, "threads": self.threads,
            "order": self.order, "beam_size": self.beam_size, "max_actions": self.max_actions,
        }
        log.info("tree-decoder engine ready: %s", self.info)

    def _read_spec(self, spec: Any) -> None:
        root = self.package.root
        if not isinstance(spec, dict):
            raise ManifestInvalid(root, "kind 'tree-decoder' needs extra.treedec (grammar, order, tokens)")
        try:
            self.grammar = Grammar(spec["grammar"])
            self.order = str(spec["order"])
            self.tokens: list[str] = list(spec["tokens"])
            self.max_src = int(spec["max_src"])
            self.max_actions = int(spec["max_actions"])
            self.beam_size = int(spec["beam_size"])
            self.hidden = int(spec["hidden"])
            self.start_id = int(spec["start_action"])
            self.names = {g: (tuple(spec.get("graphs", {}).get(g, {}).get("inputs", IO[g][0])),
                              tuple(spec.get("graphs", {}).get(g, {}).get("outputs", IO[g][1]))) for g in GRAPHS}
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestInvalid(root, f"extra.treedec is incomplete or invalid: {exc}") from exc
        if self.order not in ORDERS:
            raise ManifestInvalid(root, f"extra.treedec.order {self.order!r} is not one of {list(ORDERS)}")
        if self.start_id != self.grammar.num_rules + len(self.tokens):
            raise ManifestInvalid(root, "extra.treedec.start_action does not follow the rules and tokens")

    # -- the BodyModel interface ---------------------------------------------------------------------
    def source(self, prompt: str) -> tuple[list[int], list[str], str]:
        """The encoder's ids, their exact strings (for copying) and the body indentation."""
        text, indent = function_site(prompt)
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        ids = enc.ids[: self.max_src] or [UNK_TOKEN]
        strings = [text[a:b] for a, b in enc.offsets[: self.max_src]] or [""]
        return ids, strings, indent

    def encode(self, text: str) -> list[int]:
        return self.source(text)[0]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def prompt_budget(self, time_budget_s: float | None, share: float = 0.4) -> int | None:
        return None  # the encoder reads the function's own header and docstring only

    def clear_caches(self) -> None:
        pass

    # -- graphs ----------------------------------------------------------------------------------
    def _run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ins, outs = self.names[graph]
        got = self.sessions[graph].run(list(outs), {n: feeds[k] for n, k in zip(ins, IO[graph][0], strict=True)})
        return dict(zip(IO[graph][1], got, strict=True))

    def copies(self, strings: list[str]) -> dict[str, list[tuple[int, str]]]:
        """Per primitive type, the (source position, token) pairs that copying can write."""
        out: dict[str, list[tuple[int, str]]] = {}
        for type_ in PRIMITIVES:
            values = ((j, copy_value(type_, w)) for j, w in enumerate(strings))
            out[type_] = [(j, v) for j, v in values if v is not None and token_fits(type_, v)]
        return out

    def expansions(self, hyp: Hypothesis, rule_logits: np.ndarray, gen: np.ndarray, copy: np.ndarray,
                   copies: dict[str, list[tuple[int, str]]], k: int) -> list[tuple[float, Action, int]]:
        """The ``k`` best (log-prob, action, action id) the grammar allows at the hypothesis's frontier."""
        slot = hyp.frontier.slot
        g = self.grammar
        if not g.is_primitive(slot.field):
            valid = g.valid_rules(slot)
            logp = log_softmax(rule_logits[valid])
            best = np.argsort(-logp)[:k]
            return [(float(logp[i]), valid[i], valid[i]) for i in best]
        type_ = g.fields[slot.field].type
        scores: dict[str, float] = {}
        allowed = np.flatnonzero(self.type_masks[type_])
        for i in allowed[np.argsort(-gen[allowed])[:k]]:
            scores[self.tokens[i]] = float(gen[i])
        for j, value in copies[type_]:
            prior = scores.get(value)
            if prior is None and value in self._index:
                prior = float(gen[self._index[value]])
            scores[value] = float(np.logaddexp(prior, copy[j])) if prior is not None else float(copy[j])
        out: list[tuple[float, Action, int]] = [
            (s, tok, g.num_rules + self._index.get(tok, UNK_TOKEN)) for tok, s in scores.items()]
        if g.closable(slot):
            out.append((float(gen[END_TOKEN]), g.reduce, g.reduce))
        out.sort(key=lambda x: -x[0])
        return out[:k]

    # -- generation ------------------------------------------------------------------------------
    def generate(self, prompt: str, config: GenerationConfig | None = None, on_line: OnLine | None = None,
                 cancel: CancelLike | None = None) -> GenerationResult:
        config = config or GenerationConfig()
        t0 = time.perf_counter()
        deadline = t0 + config.time_budget_s if config.time_budget_s is not None else None
        ids, strings, indent = self.source(prompt)
        n = config.num_candidates
        if cancel is not None and cancel.is_set():
            raise Cancelled(None)
        max_steps = min(self.max_actions, max(8, 2 * config.max_new_tokens))
        s = self.search(ids, strings, max(n, self.beam_size), max_steps, deadline, cancel)
        if s.stopped == "cancelled":
            raise Cancelled(self._result([], n, ids, t0, s, indent, None))
        return self._result(s.done, n, ids, t0, s, indent, on_line)

    def search(self, ids: list[int], strings: list[str], beam: int, max_steps: int, deadline: float | None = None,
               cancel: CancelLike | None = None) -> Search:
        """Beam search until ``beam`` hypotheses are finished, the step limit, the deadline or a cancel."""
        enc = self._run("encoder", {"src_ids": np.asarray([ids], np.int64)})
        t_prefill = time.perf_counter()
        zeros = np.zeros(self.hidden, np.float32)
        s = Search([], [Hypothesis([], [], Frontier(self.order), enc["h0"][0], enc["c0"][0], zeros, [])], t_prefill)
        copies = self.copies(strings)
        while s.live and len(s.done) < beam:
            if deadline is not None:
                deadline += run_waiting(cancel)
            else:
                run_waiting(cancel)
            if cancel is not None and cancel.is_set():
                s.stopped = "cancelled"
                break
            if deadline is not None and time.perf_counter() >= deadline:
                s.stopped = "time"
                break
            if s.steps >= max_steps:
                s.stopped = "length"
                break
            s.rows += len(s.live)
            s.live = self._step(s.live, s.done, enc, copies, beam)
            s.steps += 1
        s.done.sort(key=lambda hyp: -hyp.score)
        return s

    def _step(self, live: list[Hypothesis], done: list[Hypothesis], enc: dict[str, np.ndarray],
              copies: dict[str, list[tuple[int, str]]], beam: int) -> list[Hypothesis]:
        b = len(live)
        feeds = {
            "prev_action": np.asarray([hyp.ids[-1] if hyp.ids else self.start_id for hyp in live], np.int64),
            "prev_att": np.stack([hyp.att for hyp in live]),
            "parent_att": np.stack([hyp.atts[hyp.frontier.slot.node_step] if hyp.frontier.slot.node_step >= 0
                                    else np.zeros(self.hidden, np.float32) for hyp in live]),
            "field": np.asarray([hyp.frontier.slot.field for hyp in live], np.int64),
            "h": np.stack([hyp.h for hyp in live]), "c": np.stack([hyp.c for hyp in live]),
            **{k: np.repeat(enc[k], b, axis=0) for k in ("memory", "att_keys", "copy_keys")},
        }
        out = self._run("decoder_step", feeds)
        options = []
        for i, hyp in enumerate(live):
            for logp, action, aid in self.expansions(hyp, out["rule_logits"][i], out["gen_logp"][i],
                                                     out["copy_logp"][i], copies, beam):
                options.append((hyp.score + logp, i, action, aid))
        options.sort(key=lambda x: -x[0])
        nxt: list[Hypothesis] = []
        for score, i, action, aid in options[: beam - len(done)]:
            hyp = live[i]
            step = len(hyp.actions)
            new = Hypothesis(hyp.actions + [action], hyp.ids + [aid], hyp.frontier.after(self.grammar, action, step),
                             out["h_out"][i], out["c_out"][i], out["att"][i], hyp.atts + [out["att"][i]], score)
            (done if new.frontier.done else nxt).append(new)
        return nxt

    def _result(self, done: list[Hypothesis], n: int, ids: list[int], t0: float, s: Search, indent: str,
                on_line: OnLine | None) -> GenerationResult:
        gens: list[Generation] = []
        for hyp in done:
            if len(gens) == n:
                break
            try:
                text = render(build_body(self.grammar, self.order, hyp.actions), indent)
            except ValueError as exc:
                self.dropped += 1
                log.debug("dropped a hypothesis: %s", exc)
                continue
            gens.append(self._candidate(len(gens), hyp, text, on_line))
        if not gens:
            gens = [Generation("", [], 0.0, s.stopped or "length") for _ in range(n)]
        now = time.perf_counter()
        for gen in gens:
            gen.timings = {"finished_s": now - t0, "steps": float(s.steps), "encoder_s": s.t_prefill - t0}
        return GenerationResult(generations=gens, prompt_tokens=len(ids), prefix_cache_hit_tokens=0,
                                time_to_first_token_s=now - t0, prefill_s=s.t_prefill - t0,
                                decode_s=now - s.t_prefill, decode_tokens=s.rows, prefilled_tokens=len(ids),
                                trimmed_tokens=0)

    @staticmethod
    def _candidate(i: int, hyp: Hypothesis, text: str, on_line: OnLine | None) -> Generation:
        score = hyp.score / max(1, len(hyp.actions))
        if on_line is not None:
            pos = text.find("\n", 1)
            while pos != -1:
                if not on_line(i, text[: pos + 1]):
                    return Generation(text[: pos + 1], hyp.ids, score, "stop")
                pos = text.find("\n", pos + 1)
        return Generation(text, hyp.ids, score, "eos")
