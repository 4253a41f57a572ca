"""Repository testbed: real pure-Python projects with their own tests, holes cut from their functions.

    .venv/bin/python benchmarks/repo_testbed.py --holes 20 --stand-in original,pass,model --json out.json

In the style of huggingface/llm-ls's testbed (the idea only; this code is our own): take a pinned
source distribution of a pure-Python project that ships its tests (toolz, boltons), pick documented
top-level functions deterministically, and for each one ("a hole") cut the body (signature and
docstring stay, the body becomes ``pass``), fill it again with a *stand-in*, run the project's tests
for that module, and restore the file. The share of holes whose tests pass is the score.

Stand-ins:
  ``original`` splices the original body back through the same cut/splice path: must pass (100%);
  ``pass``     leaves the cut body as ``pass``: must fail (0%);
  ``model``    runs ``codegen-lsp generate FILE --function NAME --write`` (optionally ``--model``,
               ``--workspace-context MODE``) and tests what it wrote.
A candidate hole is kept only if ``original`` passes and ``pass`` fails on it (the validation runs for
every candidate, so the first two rows of the table are 100% and 0% by construction; the number of
candidates dropped, and why, is the real check of the harness and of the tests' coverage).

Safety: the sdists are downloaded with ``pip download --no-binary :all: --no-deps`` into
``$XDG_CACHE_HOME/codegen-lsp/testbed`` (or ``~/.cache/...``), their sha256 checked against the pins
below, and unpacked into a fresh temporary work copy per run (the cache is never modified). Generated
code is executed only by the project's tests, inside this benchmark, in a subprocess with a timeout,
an address-space limit, no proxies, and (where ``unshare -n`` works) no network namespace at all.
This is a benchmark, not a sandbox: run it on code you would run anyway.

(Named ``repo_testbed.py`` because ``benchmarks/testbed/`` already holds the doctest testbed's data.)
"""

from __future__ import annotations

import argparse
import ast
import datetime
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STAND_INS = ("original", "pass", "model")
CONTEXTS = ("off", "definitions", "retrieval", "all")


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    sha256: str  # of the sdist as PyPI serves it
    package: str  # the import package, a directory at the root of the unpacked sdist

    @property
    def sdist(self) -> str:
        return f"{self.name}-{self.version}.tar.gz"


# Pinned 2026-12-02 (the newest release of each on PyPI that day). Both sdists ship their tests:
# toolz in toolz/tests/ (and toolz/sandbox/tests/), boltons in tests/ at the root.
PROJECTS: dict[str, Project] = {
    "toolz": Project("toolz", "1.2.0", "9667a038e9d6ecba37995e26cb2f59ec6420b6ad8dd9677de59db9b956b08490", "toolz"),
    "boltons": Project("boltons", "26.2.0", "d39cfd15c1a1c3bd4d705c82252fa9edb8e4f5e8cc039f8e39afac7b1b47e92c",
                       "boltons"),
}


class TestbedError(RuntimeError):
    pass


class DownloadError(TestbedError):
    pass


# --------------------------------------------------------------------------------------------------
# sdists: cache, hash, work copy


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codegen-lsp" / "testbed"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_sdist(project: Project, cache: Path | None = None, log: Callable[[str], None] = lambda s: None) -> Path:
    """The pinned sdist in the cache, downloaded (``pip download``) and hash-checked if missing."""
    cache = cache or cache_dir()
    target = cache / project.sdist
    if target.is_file():
        if sha256_of(target) == project.sha256:
            return target
        raise TestbedError(f"{target}: sha256 does not match the pin {project.sha256}; delete it to re-download")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
               "--disable-pip-version-check", "-d", tmp, f"{project.name}=={project.version}"]
        log(f"downloading {project.name}=={project.version} (pip download --no-binary :all: --no-deps)")
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        got = Path(tmp) / project.sdist
        if res.returncode != 0 or not got.is_file():
            tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-5:])
            raise DownloadError(f"pip download {project.name}=={project.version} failed:\n{tail}")
        digest = sha256_of(got)
        if digest != project.sha256:
            raise TestbedError(f"{project.sdist}: sha256 {digest} does not match the pin {project.sha256}")
        os.replace(got, target)
    return target


def unpack(sdist: Path, dest: Path) -> Path:
    """Unpack into ``dest`` (a fresh directory); returns the project root inside it."""
    with tarfile.open(sdist, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            for member in tar.getmembers():
                if member.name.startswith("/") or ".." in Path(member.name).parts:
                    raise TestbedError(f"{sdist}: unsafe member {member.name}")
            tar.extractall(dest)
    roots = [p for p in dest.iterdir() if p.is_dir()]
    if len(roots) != 1:
        raise TestbedError(f"{sdist}: expected one top-level directory, found {[p.name for p in roots]}")
    return roots[0]


# --------------------------------------------------------------------------------------------------
# holes


@dataclass
class Hole:
    project: str
    module: str  # path relative to the project root, e.g. toolz/itertoolz.py
    function: str
    line: int  # 1-based line of the def (after decorators)
    body_start: int  # 1-based first line of the cut range (the line after the docstring)
    body_end: int  # 1-based last line of the cut range (end of the last statement)
    indent: str
    test_files: list[str]  # relative to the project root

    @property
    def id(self) -> str:
        return f"{self.project}:{self.module}:{self.function}"


def module_test_files(root: Path, module: Path) -> list[Path]:
    """The module's own test files: ``tests/test_<mod>.py`` and ``tests/test_<mod>_*.py`` next to the
    module (toolz) or at the project root (boltons)."""
    stem = module.stem
    out: list[Path] = []
    for tests in (module.parent / "tests", root / "tests"):
        if tests.is_dir():
            out += [tests / f"test_{stem}.py"] if (tests / f"test_{stem}.py").is_file() else []
            out += sorted(tests.glob(f"test_{stem}_*.py"))
    return sorted(set(out))


def _docstring_end(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int | None:
    first = fn.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first.end_lineno
    return None


def find_holes(project: Project, root: Path) -> tuple[list[Hole], list[dict[str, str]]]:
    """Every eligible hole, sorted by module then line, and the functions skipped with a reason.

    Eligible: a public top-level function (``def`` directly in the module body) with a docstring, at
    least two statements after it, whose name appears as a word in the module's own test files, and
    no other ``def`` of that name anywhere in the module (``--function NAME`` must mean this one)."""
    holes: list[Hole] = []
    skipped: list[dict[str, str]] = []
    pkg = root / project.package
    for module in sorted(pkg.rglob("*.py")):
        rel = module.relative_to(root)
        if "tests" in rel.parts or any(p.startswith("_") for p in rel.parts):
            continue
        tests = module_test_files(root, module)
        if not tests:
            continue
        test_text = "\n".join(t.read_text(encoding="utf-8") for t in tests)
        text = module.read_text(encoding="utf-8")
        tree = ast.parse(text)
        lines = text.splitlines(keepends=True)
        names: dict[str, int] = {}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names[node.name] = names.get(node.name, 0) + 1
        for fn in tree.body:
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or fn.name.startswith("_"):
                continue
            where = f"{rel}:{fn.name}"
            doc_end = _docstring_end(fn)
            if doc_end is None:
                continue  # undocumented: not a site for the generator
            if len(fn.body) - 1 < 2:
                skipped.append({"hole": where, "reason": "fewer than 2 statements after the docstring"})
                continue
            if not re.search(rf"\b{re.escape(fn.name)}\b", test_text):
                skipped.append({"hole": where, "reason": "name not in the module's test files"})
                continue
            if names[fn.name] > 1:
                skipped.append({"hole": where, "reason": "another def of the same name in the module"})
                continue
            second = fn.body[1]
            if second.lineno <= doc_end:
                skipped.append({"hole": where, "reason": "statement on the docstring's line"})
                continue
            first_line = lines[second.lineno - 1]
            indent = first_line[: len(first_line) - len(first_line.lstrip())]
            holes.append(Hole(project.name, str(rel), fn.name, fn.lineno, doc_end + 1, fn.body[-1].end_lineno or 0,
                              indent, [str(t.relative_to(root)) for t in tests]))
    holes.sort(key=lambda h: (h.module, h.line))
    return holes, skipped


def shuffled(holes: list[Hole], seed: int) -> list[Hole]:
    out = list(holes)
    random.Random(f"{seed}:{holes[0].project if holes else ''}").shuffle(out)
    return out


def cut(text: str, hole: Hole) -> tuple[str, str]:
    """(text with the body replaced by ``pass``, the removed body text)."""
    lines = text.splitlines(keepends=True)
    body = "".join(lines[hole.body_start - 1: hole.body_end])
    stub = lines[: hole.body_start - 1] + [f"{hole.indent}pass\n"] + lines[hole.body_end:]
    return "".join(stub), body


def splice(stub_text: str, hole: Hole, body: str) -> str:
    """Put ``body`` (whole lines) back where :func:`cut` left ``pass``."""
    lines = stub_text.splitlines(keepends=True)
    assert lines[hole.body_start - 1].strip() == "pass", "the stub is not where the hole was cut"
    return "".join(lines[: hole.body_start - 1]) + body + "".join(lines[hole.body_start:])


def body_of(text: str, name: str) -> str | None:
    """The statements after the docstring of top-level ``name`` in ``text`` (None if unparsable)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    lines = text.splitlines(keepends=True)
    for fn in tree.body:
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name == name:
            doc_end = _docstring_end(fn)
            start = doc_end + 1 if doc_end is not None else fn.body[0].lineno
            return "".join(lines[start - 1: fn.body[-1].end_lineno])
    return None


# --------------------------------------------------------------------------------------------------
# running tests (the only place generated code runs)


def _probe(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def network_isolation() -> list[str]:
    """A command prefix that runs its command in a fresh network namespace (loopback only), or []."""
    if not sys.platform.startswith("linux") or not shutil.which("unshare"):
        return []
    lo_up = 'ip link set lo up 2>/dev/null; exec "$@"' if shutil.which("ip") else 'exec "$@"'
    for flags in (["-n"], ["-r", "-n"]):
        prefix = ["unshare", *flags, "--", "sh", "-c", lo_up, "sh"]
        if _probe([*prefix, "true"]):
            return prefix
    return []


def sandbox_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if "proxy" not in k.lower() and not k.startswith(("PYTEST", "PYTHON", "COV_", "PIP_"))}
    dead = "http://127.0.0.1:9"  # the discard port: anything that honours proxies gets nowhere
    env.update({
        "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
        "http_proxy": dead, "https_proxy": dead, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "ALL_PROXY": dead,
        "all_proxy": dead, "no_proxy": "localhost,127.0.0.1,::1", "NO_PROXY": "localhost,127.0.0.1,::1",
        "PIP_NO_INDEX": "1", "HF_HUB_OFFLINE": "1",
        # plain pytest: the plugins installed for codegen-lsp's own tests (pytest-asyncio warns, and toolz
        # turns warnings into errors) are none of the project's business
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    })
    return env


def _limit_memory() -> None:  # runs in the child before exec
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    except (ImportError, ValueError, OSError):
        pass


def run_limited(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str, float]:
    """(returncode, combined output, seconds); 124 on timeout, the whole process group killed."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_limit_memory)
    try:
        out, _ = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        rc = 124
    return rc, out.decode("utf-8", "replace"), time.perf_counter() - start


def _summary(output: str, rc: int) -> str:
    if rc == 124:
        return "timeout"
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else f"rc={rc}"


class Runner:
    def __init__(self, root: Path, timeout: float, isolation: list[str]) -> None:
        self.root, self.timeout, self.isolation = root, timeout, isolation
        self.env = sandbox_env(root)

    def check_import(self, package: str) -> str:
        """The file ``package`` imports from under the test environment; must be the work copy."""
        code = f"import {package}, os; print(os.path.realpath({package}.__file__))"
        rc, out, _ = run_limited([*self.isolation, sys.executable, "-c", code], self.root, self.env, 60)
        path = out.strip().splitlines()[-1] if out.strip() else ""
        if rc != 0 or not path.startswith(str(self.root.resolve())):
            raise TestbedError(f"{package} does not import from the work copy {self.root}: {out.strip()[-300:]}")
        return path

    def tests(self, hole: Hole) -> tuple[bool, int, str, float]:
        cmd = [*self.isolation, sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               *hole.test_files]
        rc, out, secs = run_limited(cmd, self.root, self.env, self.timeout)
        return rc == 0, rc, _summary(out, rc), secs


# --------------------------------------------------------------------------------------------------
# the generator (never executes what it writes)


def codegen_command() -> list[str]:
    exe = Path(sys.executable).parent / "codegen-lsp"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("codegen-lsp")
    return [found] if found else [sys.executable, "-m", "codegen_lsp"]


def generate_supports(flag: str) -> bool:
    res = subprocess.run([*codegen_command(), "generate", "--help"], capture_output=True, text=True, timeout=120)
    return flag in res.stdout


@dataclass
class ModelOptions:
    model: str | None = None
    time_budget: float = 60.0
    candidates: int = 1
    timeout: float = 300.0
    show_tests: bool = False  # leave the project's test directories in the workspace while generating
    context_share: float | None = None  # codegen-lsp generate --context-share (None: the CLI's default)
    context_items: int | None = None
    max_tokens: int | None = None  # codegen-lsp generate --max-tokens (None: the CLI's default)


def generate(path: Path, function: str, context: str, opts: ModelOptions, cwd: Path) -> tuple[int, str, float]:
    """``codegen-lsp generate PATH --function NAME --write`` with ``cwd`` as the workspace root."""
    cmd = [*codegen_command(), "generate", str(path), "--function", function, "--write",
           "--time-budget", str(opts.time_budget), "--candidates", str(opts.candidates)]
    if opts.model:
        cmd += ["--model", opts.model]
    if opts.max_tokens is not None:
        cmd += ["--max-tokens", str(opts.max_tokens)]
    if context != "off":
        cmd += ["--workspace-context", context, "--workspace", str(cwd)]
        if opts.context_share is not None:
            cmd += ["--context-share", str(opts.context_share)]
        if opts.context_items is not None:
            cmd += ["--context-items", str(opts.context_items)]
    start = time.perf_counter()
    try:
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=opts.timeout,
                             stdin=subprocess.DEVNULL)
        rc, err = res.returncode, res.stderr
    except subprocess.TimeoutExpired:
        rc, err = 124, "generate timed out"
    return rc, err, time.perf_counter() - start


# --------------------------------------------------------------------------------------------------
# the run


@dataclass
class Result:
    project: str
    hole: str
    module: str
    function: str
    line: int
    stand_in: str
    context: str
    passed: bool
    rc: int
    summary: str
    test_s: float
    gen_s: float = 0.0
    filled: bool = True
    body: str | None = None
    gen_error: str | None = None

    @property
    def total_s(self) -> float:
        return self.gen_s + self.test_s


@dataclass
class ProjectReport:
    project: str
    version: str
    sha256: str
    eligible: int = 0
    examined: int = 0
    kept: list[str] = field(default_factory=list)
    dropped: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    imports_from: str = ""


class HiddenTests:
    """Move every ``tests`` directory of the work copy out of it (next to it) and back: the generator's
    workspace then holds no test of the project, so workspace context cannot copy what grades it."""

    def __init__(self, root: Path, hide: bool) -> None:
        self.moves = [(d, root.parent / f".hidden-{i}-{d.name}")
                      for i, d in enumerate(sorted(root.rglob("tests")))
                      if hide and d.is_dir() and "tests" not in d.relative_to(root).parts[:-1]]

    def __enter__(self) -> HiddenTests:
        for src, dst in self.moves:
            os.rename(src, dst)
        return self

    def __exit__(self, *exc: object) -> None:
        for src, dst in self.moves:
            if dst.exists():
                os.rename(dst, src)


def _restore(path: Path, original: bytes) -> None:
    path.write_bytes(original)
    if path.read_bytes() != original:
        raise TestbedError(f"{path}: could not restore the original file")


def run_project(project: Project, workdir: Path, holes_wanted: int | None, seed: int, stand_ins: list[str],
                contexts: list[str], opts: ModelOptions, test_timeout: float, isolation: list[str],
                log: Callable[[str], None], on_result: Callable[[Result], None], skip: int = 0) -> ProjectReport:
    sdist = fetch_sdist(project, log=log)
    root = unpack(sdist, workdir / project.name)
    report = ProjectReport(project.name, project.version, project.sha256)
    runner = Runner(root, test_timeout, isolation)
    report.imports_from = runner.check_import(project.package)
    candidates, report.skipped = find_holes(project, root)
    report.eligible = len(candidates)
    for hole in shuffled(candidates, seed):
        if holes_wanted is not None and len(report.kept) >= skip + holes_wanted:
            break
        report.examined += 1
        path = root / hole.module
        original = path.read_bytes()
        text = original.decode("utf-8")
        stub, body = cut(text, hole)
        if splice(stub, hole, body) != text:
            raise TestbedError(f"{hole.id}: cut and splice do not round-trip")
        try:
            # validation: the original body (spliced back) must pass, ``pass`` must fail
            path.write_bytes(splice(stub, hole, body).encode("utf-8"))
            ok_orig, rc_o, sum_o, t_o = runner.tests(hole)
            path.write_bytes(stub.encode("utf-8"))
            ok_pass, rc_p, sum_p, t_p = runner.tests(hole)
            if not ok_orig:
                report.dropped.append({"hole": hole.id, "reason": f"original fails: {sum_o}"})
                log(f"  drop {hole.id}: original fails ({sum_o})")
                continue
            if ok_pass:
                report.dropped.append({"hole": hole.id, "reason": "tests pass with `pass` (not covered)"})
                log(f"  drop {hole.id}: tests pass with `pass`")
                continue
            report.kept.append(hole.id)
            if len(report.kept) <= skip:
                continue  # validated (so the kept order matches an unskipped run), not measured
            base: dict[str, Any] = dict(project=hole.project, hole=hole.id, module=hole.module,
                                        function=hole.function, line=hole.line)
            if "original" in stand_ins:
                on_result(Result(**base, stand_in="original", context="-", passed=ok_orig, rc=rc_o, summary=sum_o,
                                 test_s=t_o, body=body))
            if "pass" in stand_ins:
                on_result(Result(**base, stand_in="pass", context="-", passed=ok_pass, rc=rc_p, summary=sum_p,
                                 test_s=t_p, body=f"{hole.indent}pass\n"))
            if "model" in stand_ins:
                for context in contexts:
                    path.write_bytes(stub.encode("utf-8"))
                    with HiddenTests(root, not opts.show_tests):
                        rc_g, err, t_g = generate(path, hole.function, context, opts, root)
                    new = path.read_bytes().decode("utf-8", "replace")
                    filled = new != stub
                    ok, rc, summary, t_t = runner.tests(hole)
                    gen_error = None
                    if rc_g != 0 or not filled:  # the line about this site, else the last one
                        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
                        about = [ln for ln in lines if f": {hole.function}:" in ln or "failed" in ln]
                        line = (about or lines)[-1] if lines else f"rc={rc_g}"
                        gen_error = line.split(f": {hole.function}: ", 1)[-1][-300:]
                    on_result(Result(**base, stand_in="model", context=context, passed=ok, rc=rc, summary=summary,
                                     test_s=t_t, gen_s=t_g, filled=filled, body=body_of(new, hole.function),
                                     gen_error=gen_error))
        finally:
            _restore(path, original)
    if sha256_of(sdist) != project.sha256:
        raise TestbedError(f"{sdist}: the cached sdist changed during the run")
    return report


def summarize(results: Iterable[Result]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.project, r.stand_in, r.context), []).append(r)
        groups.setdefault(("total", r.stand_in, r.context), []).append(r)
    order = {"original": 0, "pass": 1, "model": 2}
    rows = []
    contexts = {c: i for i, c in enumerate(("-", *CONTEXTS))}
    for (proj, stand_in, context), rs in sorted(groups.items(), key=lambda kv: (
            kv[0][0] == "total", kv[0][0], order[kv[0][1]], contexts.get(kv[0][2], 99))):
        n = len(rs)
        rows.append({
            "project": proj, "stand_in": stand_in, "context": context, "holes": n,
            "passed": sum(r.passed for r in rs), "share": sum(r.passed for r in rs) / n if n else 0.0,
            "filled": sum(r.filled for r in rs),
            "mean_s": sum(r.total_s for r in rs) / n if n else 0.0,
            "mean_gen_s": sum(r.gen_s for r in rs) / n if n else 0.0,
            "mean_test_s": sum(r.test_s for r in rs) / n if n else 0.0,
        })
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| project | stand-in | context | holes | tests pass | share | filled | mean s/hole | generate s "
           "| tests s |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        filled = r["filled"] if r["stand_in"] == "model" else "-"
        out.append(f"| {r['project']} | {r['stand_in']} | {r['context']} | {r['holes']} | {r['passed']} "
                   f"| {r['share']:.0%} | {filled} | {r['mean_s']:.1f} | {r['mean_gen_s']:.1f} "
                   f"| {r['mean_test_s']:.1f} |")
    return "\n".join(out)


def run(projects: list[str], holes: int | dict[str, int] | None = None, seed: int = 0, skip: int = 0,
        stand_ins: Iterable[str] = ("original", "pass"), contexts: Iterable[str] = ("off",),
        opts: ModelOptions | None = None, test_timeout: float = 120.0,
        json_path: Path | None = None, isolate: bool = True, keep: Path | None = None,
        log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the testbed; returns the report (also written to ``json_path`` after every hole). ``holes``:
    per project, one number for all or a number for each (None: every eligible hole), after the first
    ``skip`` kept holes of each project (validated, not measured: a later slice of an earlier run)."""
    log = log or _stderr
    stand_ins, contexts, opts = list(stand_ins), list(contexts), opts or ModelOptions()
    for s in stand_ins:
        if s not in STAND_INS:
            raise TestbedError(f"unknown stand-in {s!r} (choose from {', '.join(STAND_INS)})")
    for c in contexts:
        if c not in CONTEXTS:
            raise TestbedError(f"unknown context {c!r} (choose from {', '.join(CONTEXTS)})")
    if "model" in stand_ins and any(c != "off" for c in contexts) and not generate_supports("--workspace-context"):
        raise TestbedError("`codegen-lsp generate` has no --workspace-context flag; run with --context off")
    isolation = network_isolation() if isolate else []
    started = time.perf_counter()
    report: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "pytest": _pytest_version(), "seed": seed, "holes_per_project": holes, "skip": skip,
            "stand_ins": stand_ins,
            "contexts": contexts if "model" in stand_ins else [], "model": opts.model,
            "context_share": opts.context_share, "context_items": opts.context_items,
            "max_tokens": opts.max_tokens,
            "time_budget_s": opts.time_budget, "candidates": opts.candidates, "test_timeout_s": test_timeout,
            "tests_in_workspace_while_generating": opts.show_tests,
            "network_isolation": (" ".join(isolation[: isolation.index("--")]) + " (own network namespace)"
                                  if isolation else "none: environment only (dead proxies)"),
            "codegen_lsp_commit": _git_head(),
        },
        "projects": {}, "results": [], "summary": [],
    }
    results: list[Result] = []

    def save() -> None:
        report["results"] = [dict(asdict(r), total_s=round(r.total_s, 3)) for r in results]
        report["summary"] = summarize(results)
        report["meta"]["wall_s"] = round(time.perf_counter() - started, 1)
        if json_path:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")

    def on_result(r: Result) -> None:
        results.append(r)
        extra = f" generate {r.gen_s:.1f}s{'' if r.filled else ' (unfilled)'}" if r.stand_in == "model" else ""
        log(f"  {r.hole} [{r.stand_in}/{r.context}] {'PASS' if r.passed else 'fail'}{extra} tests {r.test_s:.1f}s"
            f" ({r.summary})")
        save()

    tmp = Path(tempfile.mkdtemp(prefix="codegen-repo-testbed-"))
    try:
        if "model" in stand_ins:  # what every hole's generate pays before decoding: start + model load
            (tmp / "empty.py").write_text("")
            rc, err, secs = generate(tmp / "empty.py", "-", "off", opts, tmp)
            if rc != 0:
                raise TestbedError(f"codegen-lsp generate cannot start: {err.strip()[-300:]}")
            report["meta"]["generate_startup_s"] = round(secs, 2)
            log(f"codegen-lsp generate on an empty file (start + model load): {secs:.1f} s")
        for name in projects:
            if name not in PROJECTS:
                raise TestbedError(f"unknown project {name!r} (choose from {', '.join(PROJECTS)})")
            log(f"{name} {PROJECTS[name].version}")
            wanted = holes.get(name, 0) if isinstance(holes, dict) else holes
            rep = run_project(PROJECTS[name], tmp, wanted, seed, stand_ins, contexts, opts, test_timeout, isolation,
                              log, on_result, skip)
            report["projects"][name] = asdict(rep)
            save()
    finally:
        if keep:
            shutil.copytree(tmp, keep, dirs_exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    save()
    return report


def _git_head() -> str | None:
    try:
        res = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None


def _pytest_version() -> str:
    try:
        import pytest

        return pytest.__version__
    except ImportError:  # pragma: no cover
        return "missing"


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--projects", type=_csv, default=list(PROJECTS), help="comma list (default: all)")
    ap.add_argument("--holes", type=int, default=None, help="holes per project (default: every eligible one)")
    ap.add_argument("--skip", type=int, default=0,
                    help="validate but do not measure the first SKIP kept holes per project (extend a run)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the shuffle that orders the holes")
    ap.add_argument("--stand-in", type=_csv, default=["original", "pass"],
                    help="comma list of original, pass, model (default: original,pass)")
    ap.add_argument("--context", type=_csv, default=["off"],
                    help="comma list of workspace contexts for the model: off, definitions, retrieval, all")
    ap.add_argument("--model", default=None, help="passed to codegen-lsp generate --model")
    ap.add_argument("--time-budget", type=float, default=60.0,
                    help="codegen-lsp generate --time-budget (default 60, the CLI's own)")
    ap.add_argument("--candidates", type=int, default=1, help="codegen-lsp generate --candidates")
    ap.add_argument("--max-tokens", type=int, default=None, help="codegen-lsp generate --max-tokens")
    ap.add_argument("--context-share", type=float, default=None, help="codegen-lsp generate --context-share")
    ap.add_argument("--context-items", type=int, default=None, help="codegen-lsp generate --context-items")
    ap.add_argument("--show-tests", action="store_true",
                    help="leave the project's tests in the workspace while generating (default: moved out)")
    ap.add_argument("--test-timeout", type=float, default=120.0, help="seconds per pytest run")
    ap.add_argument("--no-isolation", action="store_true", help="do not use unshare -n even where it works")
    ap.add_argument("--keep", type=Path, default=None, help="copy the work copies here at the end")
    ap.add_argument("--json", type=Path, default=None, help="write the full report here")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up (restore, temp dir) on kill
    opts = ModelOptions(model=args.model, time_budget=args.time_budget, candidates=args.candidates,
                        show_tests=args.show_tests, context_share=args.context_share,
                        context_items=args.context_items, max_tokens=args.max_tokens)
    try:
        report = run(args.projects, args.holes, args.seed, args.skip, args.stand_in, args.context, opts,
                     args.test_timeout, args.json, not args.no_isolation, args.keep)
    except TestbedError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    out = []
    for name, rep in report["projects"].items():
        out.append(f"{name} {rep['version']}: {rep['eligible']} eligible, {rep['examined']} examined, "
                   f"{len(rep['kept'])} kept, {len(rep['dropped'])} dropped")
        out += [f"  dropped {d['hole']}: {d['reason']}" for d in rep["dropped"]]
    out.append(table(report["summary"]))
    out.append(f"wall {report['meta']['wall_s']} s, network isolation: {report['meta']['network_isolation']}")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
