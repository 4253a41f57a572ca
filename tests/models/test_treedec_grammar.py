"""The abstract grammar and the body <-> actions converter: exact round trips in both orders on a
sample of real code (functions of a few stdlib modules), the two orders as permutations of the same
actions, and replay refusing sequences that are not a tree."""

from __future__ import annotations

import ast
import importlib
import inspect
from collections import Counter

import pytest
import torch

from codegen_lsp.engine.treedec.grammar import Grammar, build_body, unparse_body
from models.evaluate.pairs import EvalPair
from models.treedec.asdl import Unsupported, body_statements, check_roundtrip, encode, grammar_spec
from models.treedec.data import actions_of

SAMPLE_MODULES = ("textwrap", "json.encoder", "argparse", "dataclasses", "ast", "string", "fractions")
"""Real code with comprehensions, f-strings, try/except, lambdas, star-args, decorators, walrus..."""


@pytest.fixture(scope="module")
def grammar() -> Grammar:
    return Grammar(grammar_spec())


def sample_bodies() -> list[tuple[str, list[ast.stmt]]]:
    out = []
    for name in SAMPLE_MODULES:
        tree = ast.parse(inspect.getsource(importlib.import_module(name)))
        out += [(f"{name}.{n.name}", n.body) for n in ast.walk(tree)
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return out


def test_every_sampled_body_round_trips_in_both_orders(grammar: Grammar) -> None:
    bodies = sample_bodies()
    assert len(bodies) > 300
    failures = {}
    for name, body in bodies:
        try:
            check_roundtrip(grammar, body)
        except ValueError as exc:
            failures[name] = str(exc)
    assert failures == {}


def test_orders_are_permutations_aligned_by_tree_position(grammar: Grammar) -> None:
    for _, body in sample_bodies()[:200]:
        pre, pre_keys = encode(grammar, "preorder", body)
        bfs, bfs_keys = encode(grammar, "bfs", body)
        assert Counter(map(str, pre)) == Counter(map(str, bfs)) and len(set(pre_keys)) == len(pre)
        where = {k: i for i, k in enumerate(pre_keys)}
        assert all(pre[where[k]] == a for k, a in zip(bfs_keys, bfs, strict=True))


def test_the_orders_differ_as_traversals(grammar: Grammar) -> None:
    body = ast.parse("x = f(a, 1)\nreturn x").body
    pre, _ = encode(grammar, "preorder", body)
    bfs, _ = encode(grammar, "bfs", body)
    names = lambda acts: [a if isinstance(a, str) else grammar.constructors[a].name  # noqa: E731
                          if a < grammar.reduce else "<reduce>" for a in acts]
    assert names(pre)[:4] == ["Assign", "Name", "x", "<reduce>"]  # depth first: the target's subtree
    assert names(bfs)[:3] == ["Assign", "Return", "<reduce>"]  # level by level: both statements first
    assert unparse_body(build_body(grammar, "bfs", bfs)) == unparse_body(build_body(grammar, "preorder", pre))


def test_replay_refuses_what_is_not_a_tree(grammar: Grammar) -> None:
    actions, _ = encode(grammar, "preorder", ast.parse("return x").body)
    with pytest.raises(ValueError, match="incomplete"):
        build_body(grammar, "preorder", actions[:-1])
    with pytest.raises(ValueError, match="after the tree is complete"):
        build_body(grammar, "preorder", actions + [grammar.reduce])
    with pytest.raises(ValueError, match="needs a value"):
        build_body(grammar, "preorder", [grammar.reduce])  # a body needs a statement
    with pytest.raises(ValueError, match="token"):
        build_body(grammar, "preorder", ["x"])
    expr = grammar.by_sort["expr"][0]
    with pytest.raises(ValueError, match="does not build a stmt"):
        build_body(grammar, "preorder", [expr])
    with pytest.raises(ValueError, match="order"):
        encode(grammar, "postorder", ast.parse("return x").body)


def test_corpus_pairs_and_their_limits(grammar: Grammar) -> None:
    pair = EvalPair(0, "p", "f", '    def f(self):\n        """Doc."""', "\n        # a comment\n        return self.x")
    assert [type(s).__name__ for s in body_statements(pair.prompt, pair.target)] == ["Return"]
    assert set(actions_of(grammar, pair)) == {"preorder", "bfs"}
    with pytest.raises(Unsupported, match="empty body"):
        actions_of(grammar, EvalPair(0, "p", "f", 'def f():\n    """Doc."""', ""))
    with pytest.raises(SyntaxError):
        body_statements('def f():\n    """Doc."""', "\n    return (")


def test_grammar_is_derived_from_the_ast_module(grammar: Grammar) -> None:
    spec = grammar_spec()
    names = {c["name"] for c in spec["constructors"]}
    assert {"If", "BinOp", "Constant", "comprehension", "arguments", "Add", "MatchAs"} <= names
    assert not names & {"Load", "Store", "Module", "Num"}  # contexts are omitted, deprecated nodes skipped
    field_if = [grammar.fields[f] for f in grammar.constructors[next(
        i for i, c in enumerate(grammar.constructors) if c.name == "If")].fields]
    assert [(f.name, f.type, f.card, f.min) for f in field_if] == [
        ("test", "expr", "1", 0), ("body", "stmt", "*", 1), ("orelse", "stmt", "*", 0)]
    assert Grammar(spec).num_rules == len(spec["constructors"]) + 2


def test_mutual_learning_compares_the_same_tree_positions(grammar: Grammar) -> None:
    from models.treedec.data import Vocab, make_example, train_tokenizer
    from models.treedec.train import aligned, collate, kl

    pairs = [EvalPair(i, "p", "f", p, t) for i, (p, t) in enumerate([
        ('def f(a, b):\n    """Add a and b."""', "\n    total = a + b\n    return [total, 'b']"),
        ('def g(x):\n    """Loop over x."""', "\n    for i in x:\n        print(i)\n    return None")])]
    encoded = [actions_of(grammar, p) for p in pairs]
    tok = train_tokenizer([p.prompt for p in pairs], 100)
    vocab = Vocab.build(grammar, [e["preorder"][0] for e in encoded], 50, min_count=1)
    examples = [make_example(vocab, tok, p, e, 16) for p, e in zip(pairs, encoded, strict=True)]
    batch = collate(examples, vocab, ("preorder", "bfs"))
    pre, bfs = batch["preorder"], batch["bfs"]
    for key in ("rule", "token", "field"):
        (moved,) = aligned((bfs[key][..., None].float(),), batch["pre_to_bfs"])
        assert torch.equal(moved[..., 0].long() * pre["valid"], pre[key] * pre["valid"])
    assert pre["copy"].any()  # 'b' and 'a' can be copied from the docstring
    logp = torch.log_softmax(torch.randn(*pre["rule"].shape, 7), -1)
    other = torch.log_softmax(torch.randn(*pre["rule"].shape, 7), -1)
    outs = (logp, logp[..., :3], logp[..., 3:])
    assert float(kl(outs, outs, pre)) == pytest.approx(0.0, abs=1e-5)
    assert float(kl((other, other[..., :3], other[..., 3:]), outs, pre)) > 0
