"""Corpus pairs -> training examples: source tokens (the prompt's ``def`` + docstring through a
word-level tokenizer, the strings kept for copying) and, per order, the action sequence as ids with
its frontier fields, parent steps and copy positions; plus the vocabularies."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from codegen_lsp.engine.treedec.grammar import ORDERS, Action, Frontier, Grammar, copy_value
from codegen_lsp.engine.treedec.prompt import function_site
from models.evaluate.pairs import EvalPair
from models.treedec.asdl import Unsupported, body_statements, encode

PAD, UNK = "<pad>", "<unk>"
SPECIAL_TOKENS = [PAD, UNK]
"""Source vocabulary ids 0 and 1; the primitive-token vocabulary starts with the same two, where
id 0 means ``reduce`` at a primitive field (no value, end of a list of names)."""


def train_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    """Word-level: ``\\w+`` and punctuation runs, case kept (identifiers are copied as written)."""
    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                                             min_frequency=2, show_progress=False))
    return tok


def source(tok: Tokenizer, prompt: str, max_len: int) -> tuple[list[int], list[str]]:
    """Ids and exact strings of the first ``max_len`` tokens of the prompt's def + docstring."""
    text, _ = function_site(prompt)
    enc = tok.encode(text, add_special_tokens=False)
    spans = enc.offsets[:max_len]
    return enc.ids[:max_len] or [1], [text[a:b] for a, b in spans] or [UNK]


@dataclass
class Sequence:
    """One order's actions for one example (length T)."""

    rule: np.ndarray          # [T] rule id at rule steps, 0 elsewhere
    token: np.ndarray         # [T] primitive-vocab id at token steps (UNK when out of vocabulary), -1 elsewhere
    prev: np.ndarray          # [T] action-embedding id of the previous action (START first)
    field: np.ndarray         # [T] frontier field id
    parent: np.ndarray        # [T] step that created the frontier node, -1 for the root
    closable: np.ndarray      # [T] bool: reduce is valid here
    copy: list[tuple[int, int]]  # (step, source position) whose copy writes the gold token
    keys: list[tuple[Any, ...]]  # tree position of each action (aligns the orders)


@dataclass
class Example:
    src: list[int]
    src_strings: list[str]
    seqs: dict[str, Sequence] = field(default_factory=dict)
    n_actions: int = 0


class Vocab:
    """Primitive tokens (ids 0 pad, 1 unk) and the action-embedding layout: rules, then tokens, then START."""

    def __init__(self, grammar: Grammar, tokens: list[str]) -> None:
        self.grammar = grammar
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}
        self.start = grammar.num_rules + len(tokens)
        self.num_actions = self.start + 1

    @classmethod
    def build(cls, grammar: Grammar, action_lists: list[list[Action]], size: int, min_count: int = 2) -> Vocab:
        counts = Counter(a for acts in action_lists for a in acts if isinstance(a, str))
        kept = [t for t, c in counts.most_common(size - len(SPECIAL_TOKENS)) if c >= min_count]
        return cls(grammar, SPECIAL_TOKENS + kept)

    def action_id(self, action: Action) -> int:
        if isinstance(action, str):
            return self.grammar.num_rules + self.index.get(action, 1)
        return action


def actions_of(grammar: Grammar, pair: EvalPair) -> dict[str, tuple[list[Action], list[tuple[Any, ...]]]]:
    """Both orders' (actions, keys); Unsupported / SyntaxError / ValueError when the body does not fit."""
    body = body_statements(pair.prompt, pair.target)
    if not body:
        raise Unsupported("empty body after the docstring")
    return {o: encode(grammar, o, body) for o in ORDERS}


def make_example(vocab: Vocab, tok: Tokenizer, pair: EvalPair, encoded: dict[str, tuple[list[Action], list[Any]]],
                 max_src: int) -> Example:
    g = vocab.grammar
    src, strings = source(tok, pair.prompt, max_src)
    ex = Example(src, strings)
    for order, (actions, keys) in encoded.items():
        t = len(actions)
        rule, token = np.zeros(t, np.int64), np.full(t, -1, np.int64)
        prev, fld = np.zeros(t, np.int64), np.zeros(t, np.int64)
        parent, closable = np.zeros(t, np.int64), np.zeros(t, bool)
        copies: list[tuple[int, int]] = []
        frontier = Frontier(order)
        for s, a in enumerate(actions):
            slot = frontier.slot
            fld[s], parent[s], closable[s] = slot.field, slot.node_step, g.closable(slot)
            prev[s] = vocab.start if s == 0 else vocab.action_id(actions[s - 1])
            if isinstance(a, str):
                token[s] = vocab.index.get(a, 1)
                type_ = g.fields[slot.field].type
                copies += [(s, j) for j, w in enumerate(strings) if copy_value(type_, w) == a]
            elif g.is_primitive(slot.field):  # reduce at a primitive field is the END token (id 0)
                token[s] = 0
            else:
                rule[s] = a
            frontier = frontier.after(g, a, s)
        ex.seqs[order] = Sequence(rule, token, prev, fld, parent, closable, copies, keys)
        ex.n_actions = t
    return ex


def alignment(ex: Example) -> np.ndarray:
    """For each BFS step, the pre-order step at the same tree position."""
    where = {k: i for i, k in enumerate(ex.seqs["preorder"].keys)}
    return np.asarray([where[k] for k in ex.seqs["bfs"].keys], np.int64)


def coverage_reason(exc: Exception) -> str:
    if isinstance(exc, SyntaxError):
        return "does not parse under this Python"
    return str(exc).split(":")[0][:60] if not isinstance(exc, Unsupported) else str(exc)[:60]
