"""Execution-based evaluation: does the generated body pass the function's own doctests?

Held-out pairs whose docstring carries ``>>>`` examples are run in a subprocess: the function's
own module is imported (the installed library the corpus pair came from), the candidate function
(decorators, signature, docstring, generated body) is executed in a copy of that module's
namespace, and its doctests run there; a fresh temp dir as cwd, a timeout, address-space and CPU
limits, and ``socket`` disabled before anything is imported. A pair counts only if its *reference*
body passes this way (an example with random or environment-dependent output is left out, whatever
the model writes), and only if a control body that just raises fails them (an example that calls
the library's own copy, not the candidate, proves nothing). Before the examples run, every module
attribute that held the original function points at the candidate, so ``nx.func(...)`` in an
example calls the generated body. Evaluation only: the server never executes generated code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .pairs import EvalPair

TIMEOUT_S = 10.0
MEMORY_BYTES = 1 << 30

# Runs inside the subprocess: no network, then the module's doctests for one function.
_RUNNER = r"""
import doctest, importlib, json, socket, sys, textwrap
def _refuse(*a, **k):
    raise OSError("network disabled during evaluation")
socket.socket = _refuse
socket.create_connection = _refuse
source_path, module_name, name = sys.argv[1:4]
module = importlib.import_module(module_name) if module_name else None
ns = dict(vars(module)) if module else {"__name__": "candidate"}
original = ns.get(name)
source = textwrap.dedent(open(source_path, encoding="utf-8").read())
exec(compile(source, source_path, "exec"), ns)
fn = ns[name]
if original is not None:  # examples often call it through its package (nx.func): point every alias at it
    for m in list(sys.modules.values()):
        if getattr(m, name, None) is original:
            setattr(m, name, fn)
out = sys.stdout
runner = doctest.DocTestRunner(verbose=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
for test in doctest.DocTestFinder(recurse=False).find(fn, name, globs=ns):
    runner.run(test, out=lambda s: None)
r = runner.summarize(verbose=False)
out.write(json.dumps({"attempted": r.attempted, "failed": r.failed}) + "\n")
"""


@dataclass(frozen=True)
class ExecResult:
    passed: bool
    detail: str
    """``ok``, ``N of M examples failed``, ``timeout``, ``error: ...``."""


def has_doctests(pair: EvalPair) -> bool:
    """A module-level function (decorated or not) whose docstring holds examples."""
    return ">>>" in pair.prompt and pair.prompt.startswith(("def ", "async def ", "@"))


def module_name(path: str) -> str:
    """``networkx/algorithms/cluster.py`` -> ``networkx.algorithms.cluster``."""
    parts = path.removesuffix(".py").split("/")
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _limits() -> None:  # pragma: no cover - runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (int(TIMEOUT_S) + 1, int(TIMEOUT_S) + 1))
    os.setsid()


def run_doctests(pair: EvalPair, body: str, timeout: float = TIMEOUT_S) -> ExecResult:
    """Run ``pair``'s doctests against ``body`` (body form, no leading newline) in a subprocess."""
    source = f"{pair.prompt}\n{body}\n"
    with tempfile.TemporaryDirectory(prefix="codegen-exec-") as tmp:
        module = Path(tmp) / "candidate.py"
        module.write_text(source, encoding="utf-8")
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-c", _RUNNER, str(module), module_name(pair.path) if pair.path else "",
                 pair.name], cwd=tmp, env=env,
                capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                preexec_fn=_limits if os.name == "posix" else None,
            )
        except subprocess.TimeoutExpired:
            return ExecResult(False, "timeout")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return ExecResult(False, f"error: {err[:200]}")
    try:
        r = json.loads(lines[-1])
    except json.JSONDecodeError:
        return ExecResult(False, "error: no result line")
    if r["attempted"] == 0:
        return ExecResult(False, "error: no examples ran")
    if r["failed"]:
        return ExecResult(False, f"{r['failed']} of {r['attempted']} examples failed")
    return ExecResult(True, "ok")


CONTROL_BODY = "    raise NotImplementedError('evaluation control')"
"""A body that must fail a pair's doctests: if it passes, the examples do not exercise the function."""


def runnable_pairs(pairs: list[EvalPair], cache: Path | None = None) -> list[EvalPair]:
    """The pairs whose doctests their reference body passes and a body that only raises fails
    (cached by package and index)."""
    known: dict[str, bool] = {}
    if cache is not None and cache.is_file():
        known = json.loads(cache.read_text(encoding="utf-8"))
    out = []
    for p in pairs:
        if not has_doctests(p):
            continue
        key = f"{p.package}:{p.index}"
        if key not in known:
            known[key] = run_doctests(p, p.reference).passed and not run_doctests(p, CONTROL_BODY).passed
        if known[key]:
            out.append(p)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known, indent=0, sort_keys=True), encoding="utf-8")
    return out


TESTBED = Path(__file__).resolve().parents[2] / "benchmarks" / "testbed" / "utilities.py"


def testbed_pairs(path: Path = TESTBED) -> list[EvalPair]:
    """Our own testbed as pairs: every module-level function with a docstring; the prompt is its
    header and docstring as written, the reference its body. Run standalone (no module import)."""
    import ast

    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    out = []
    for i, node in enumerate(ast.parse(source).body):
        if not isinstance(node, ast.FunctionDef) or ast.get_docstring(node) is None:
            continue
        doc = node.body[0]
        start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
        prompt = "\n".join(lines[start:doc.end_lineno])
        body = "\n".join(lines[doc.end_lineno:node.end_lineno])
        out.append(EvalPair(i, "testbed", node.name, prompt, "\n" + body))
    return out
