"""The repository testbed's harness (benchmarks/repo_testbed.py).

The stand-ins decide every verdict here, never a real model: ``original`` (the cut body spliced back)
must pass the project's tests, ``pass`` must fail them. The offline tests run the whole harness on a
small project packed as an sdist in a temporary cache, the model stand-in on a scripted model package;
the smoke test downloads the pinned toolz and boltons sdists (PyPI, cached in the user cache dir) and
runs 3 holes (2 + 1).
"""

from __future__ import annotations

import ast
import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from benchmarks import repo_testbed as rt

OPS = '''"""Small ops for the harness test."""


def double(x):
    """Return x multiplied by two, as an integer."""
    # a comment inside the body goes with it
    y = x * 2
    return int(y)


def halve(x):
    """Return x divided by two, rounded down to an integer."""
    y = x // 2
    return y


def untested(x):
    """Return x plus one, although no test calls it."""
    y = x + 1
    return y


def shout(text):
    """Return text in upper case."""
    out = text.upper()
    return out


def tiny(x):
    """Only one statement."""
    return x


def _private(x):
    """Private helpers are no holes."""
    y = x
    return y
'''

TESTS = '''from fakeproj.ops import double, halve, shout, tiny


def test_double():
    assert double(3) == 6


def test_halve():
    assert halve(7) == 3 and isinstance(halve(7), int)


def test_shout_is_only_imported():
    assert callable(shout) and tiny(1) == 1
'''


def _fake_project(cache: Path, name: str = "fakeproj", version: str = "1.0") -> rt.Project:
    src = cache.parent / "src" / f"{name}-{version}"
    (src / name).mkdir(parents=True)
    (src / "tests").mkdir()
    (src / name / "__init__.py").write_text("")
    (src / name / "ops.py").write_text(OPS)
    (src / "tests" / "test_ops.py").write_text(TESTS)
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / f"{name}-{version}.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(src, arcname=src.name)
    return rt.Project(name, version, hashlib.sha256(sdist.read_bytes()).hexdigest(), name)


def test_cut_and_splice_round_trip_and_keep_the_docstring() -> None:
    tree = ast.parse(OPS)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "double")
    hole = rt.Hole("p", "p/ops.py", "double", fn.lineno, (fn.body[0].end_lineno or 0) + 1, fn.body[-1].end_lineno or 0,
                   "    ", [])
    stub, body = rt.cut(OPS, hole)
    assert '"""Return x multiplied by two, as an integer."""\n    pass\n\n\ndef halve' in stub
    assert body == "    # a comment inside the body goes with it\n    y = x * 2\n    return int(y)\n"
    assert rt.splice(stub, hole, body) == OPS
    assert rt.body_of(OPS, "double") == body and rt.body_of(stub, "double") == "    pass\n"


def test_hole_selection_is_documented_tested_and_sorted(tmp_path: Path) -> None:
    project = _fake_project(tmp_path / "cache")
    root = rt.unpack(tmp_path / "cache" / project.sdist, tmp_path / "work")
    holes, skipped = rt.find_holes(project, root)
    assert [h.function for h in holes] == ["double", "halve", "shout"]  # module order, then line
    assert holes[0].test_files == ["tests/test_ops.py"]
    reasons = {s["hole"]: s["reason"] for s in skipped}
    assert reasons == {"fakeproj/ops.py:untested": "name not in the module's test files",
                       "fakeproj/ops.py:tiny": "fewer than 2 statements after the docstring"}
    assert rt.shuffled(holes, 3) == rt.shuffled(holes, 3)  # deterministic


def test_a_wrong_hash_is_refused(tmp_path: Path) -> None:
    project = _fake_project(tmp_path / "cache")
    bad = rt.Project(project.name, project.version, "0" * 64, project.package)
    with pytest.raises(rt.TestbedError, match="sha256"):
        rt.fetch_sdist(bad, tmp_path / "cache")


def test_tests_are_hidden_from_the_generator_and_come_back(tmp_path: Path) -> None:
    root = tmp_path / "proj-1.0"
    for d in ("tests", "pkg/tests", "pkg/tests/tests"):
        (root / d).mkdir(parents=True)
        (root / d / "test_x.py").write_text("x = 1\n")
    (root / "pkg" / "mod.py").write_text("y = 2\n")
    with rt.HiddenTests(root, hide=True):
        assert [p.relative_to(root).as_posix() for p in root.rglob("*.py")] == ["pkg/mod.py"]
    assert len(list(root.rglob("test_x.py"))) == 3 and not list(tmp_path.glob(".hidden-*"))
    with rt.HiddenTests(root, hide=False):
        assert len(list(root.rglob("test_x.py"))) == 3


def test_offline_run_validates_the_stand_ins_and_the_model_path(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from export.scripted import Rule, build_scripted_package

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    project = _fake_project(tmp_path / "xdg" / "codegen-lsp" / "testbed")
    monkeypatch.setitem(rt.PROJECTS, project.name, project)
    pkg = build_scripted_package(tmp_path / "model", [
        Rule('def double(x):\n    """Return x multiplied by two, as an integer."""', ["\n    return x * 2"]),
        Rule('def halve(x):\n    """Return x divided by two, rounded down to an integer."""', ["\n    return x / 2"]),
    ])
    sdist_before = (tmp_path / "xdg" / "codegen-lsp" / "testbed" / project.sdist).read_bytes()
    report = rt.run([project.name], stand_ins=["original", "pass", "model"],
                    opts=rt.ModelOptions(model=str(pkg), time_budget=10), json_path=tmp_path / "out.json",
                    keep=tmp_path / "kept", log=lambda line: None)

    rep = report["projects"][project.name]
    assert sorted(rep["kept"]) == [f"{project.name}:fakeproj/ops.py:{f}" for f in ("double", "halve")]
    assert rep["dropped"] == [{"hole": f"{project.name}:fakeproj/ops.py:shout",
                               "reason": "tests pass with `pass` (not covered)"}]
    assert "codegen-repo-testbed-" in rep["imports_from"]  # the work copy, not an installed package
    rows = {(r["project"], r["stand_in"]): r for r in report["summary"] if r["project"] != "total"}
    assert rows[(project.name, "original")]["share"] == 1.0 and rows[(project.name, "original")]["holes"] == 2
    assert rows[(project.name, "pass")]["share"] == 0.0
    model = {r["function"]: r for r in report["results"] if r["stand_in"] == "model"}
    assert model["double"]["passed"] and model["double"]["body"] == "    return x * 2\n"
    assert not model["halve"]["passed"] and model["halve"]["filled"]  # written, wrong: 7 / 2 == 3.5
    assert rows[(project.name, "model")]["share"] == 0.5 and model["double"]["gen_s"] > 0
    # every file restored, the cache untouched, the JSON complete
    kept = tmp_path / "kept" / project.name / f"{project.name}-{project.version}"
    assert (kept / project.name / "ops.py").read_text() == OPS
    assert (kept / "tests" / "test_ops.py").read_text() == TESTS  # hidden while generating, back after
    assert (tmp_path / "xdg" / "codegen-lsp" / "testbed" / project.sdist).read_bytes() == sdist_before
    assert json.loads((tmp_path / "out.json").read_text())["summary"] == report["summary"]


@pytest.mark.slow  # ~2.5 s with the sdists cached; the first run downloads them (~20 s, toolz builds metadata)
def test_smoke_toolz_and_boltons_three_holes() -> None:
    for project in rt.PROJECTS.values():  # needs PyPI once (CI has it); a failed download fails the test
        rt.fetch_sdist(project)
    report = rt.run(["toolz", "boltons"], holes={"toolz": 2, "boltons": 1}, stand_ins=["original", "pass"],
                    log=lambda line: None)
    rows = {(r["project"], r["stand_in"]): r for r in report["summary"]}
    assert rows[("total", "original")]["holes"] == 3 and rows[("total", "original")]["share"] == 1.0
    assert rows[("total", "pass")]["holes"] == 3 and rows[("total", "pass")]["share"] == 0.0
    for name in ("toolz", "boltons"):
        rep = report["projects"][name]
        assert "codegen-repo-testbed-" in rep["imports_from"]
        # a candidate whose original body fails its tests would mean the harness (cut, splice, the test
        # environment) is broken: none among the first candidates
        assert not [d for d in rep["dropped"] if d["reason"].startswith("original fails")], rep["dropped"]
