"""`codegen-lsp generate` as a user runs it: a real subprocess on the scripted model package."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

GOOD = '''def get_total(total, value):
    """Return the sum of total and value."""
    pass


def make_score(score, size):
    """Return score multiplied by size."""
    ...
'''


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "codegen_lsp", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def _project(tmp: Path) -> Path:
    proj = tmp / "proj"
    (proj / "pkg").mkdir(parents=True)
    (proj / "pkg" / "good.py").write_text(GOOD)
    (proj / "pkg" / "latin1.py").write_bytes(b'def f():\n    """caf\xe9"""\n')  # not UTF-8
    (proj / ".venv").mkdir()
    (proj / ".venv" / "ignored.py").write_text(GOOD)
    return proj


def test_dry_run_lists_sites_without_a_model(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    r = run("generate", str(proj), "--dry-run", "--model", str(tmp_path / "no-model"))
    assert "good.py:1: get_total (stub)" in r.stdout and "good.py:6: make_score (stub)" in r.stdout
    assert ".venv" not in r.stdout
    assert r.returncode == 1 and "latin1.py: not UTF-8" in r.stderr  # reported, others still listed


def test_diff_on_a_directory_reports_each_bad_file_and_goes_on(tmp_path: Path, scripted_pkg: Path) -> None:
    proj = _project(tmp_path)
    missing = tmp_path / "missing.py"
    r = run("--log-level", "warning", "generate", str(proj), str(missing), "--model", str(scripted_pkg))
    assert r.returncode == 1
    errors = [ln for ln in r.stderr.splitlines() if " ERROR " in ln]
    assert len(errors) == 2, r.stderr
    assert any("latin1.py: not UTF-8" in e for e in errors) and any("missing.py: no such file" in e for e in errors)
    assert "+++ " in r.stdout and "-    pass" in r.stdout and "-    ..." in r.stdout
    assert (proj / "pkg" / "good.py").read_text() == GOOD  # a diff never writes


def test_write_fills_stubs_atomically_and_json_reports(tmp_path: Path, scripted_pkg: Path) -> None:
    proj = _project(tmp_path)
    target = proj / "pkg" / "good.py"
    r = run("generate", str(target), "--json", "--candidates", "2", "--model", str(scripted_pkg))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["function"] for row in rows] == ["get_total", "make_score"]
    for row in rows:
        assert row["body"] and row["candidates"] and row["timings"]["prompt_tokens"] > 0
    r = run("generate", str(target), "--write", "--model", str(scripted_pkg))
    assert r.returncode == 0, r.stderr
    text = target.read_text()
    ast.parse(text)
    assert "pass" not in text and "..." not in text and not list(target.parent.glob(".good.py.*"))


def test_missing_and_corrupt_models_give_one_clear_line(tmp_path: Path, scripted_pkg: Path) -> None:
    proj = _project(tmp_path)
    r = run("generate", str(proj), "--model", str(tmp_path / "nowhere"))
    assert r.returncode == 1 and r.stdout == ""
    assert [ln for ln in r.stderr.splitlines() if "ERROR" in ln] and "make model" in r.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json")
    r = run("generate", str(proj), "--model", str(bad))
    assert r.returncode == 1 and "not readable JSON" in r.stderr


BROKEN = '''def broken_ratio(total, count):
    """Return total divided by count."""
    pass
'''


def test_sites_without_a_valid_body_are_reported_and_the_rest_written(tmp_path: Path, scripted_pkg: Path) -> None:
    target = tmp_path / "mixed.py"
    target.write_text(GOOD + "\n\n" + BROKEN)
    r = run("generate", str(target), "--json", "--candidates", "2", "--model", str(scripted_pkg))
    assert r.returncode == 0, r.stderr
    rows = {row["function"]: row for row in map(json.loads, r.stdout.splitlines())}
    assert rows["get_total"]["unfilled"] is None and rows["get_total"]["refused"] == []
    broken = rows["broken_ratio"]
    assert broken["body"] is None and len(broken["refused"]) == 2
    assert broken["unfilled"].startswith("broken_ratio: no valid body — 2 candidates refused: line 1: ")
    r = run("generate", str(target), "--write", "--model", str(scripted_pkg))
    assert r.returncode == 0, r.stderr
    assert "mixed.py:11: broken_ratio: no valid body" in r.stderr
    assert "1 of 3 functions got no valid body" in r.stderr
    text = target.read_text()
    assert "return total + value" in text and text.endswith(BROKEN)


def test_models_list_verify_and_install_errors(tmp_path: Path, scripted_pkg: Path) -> None:
    env_home = tmp_path / "data"
    installed = env_home / "codegen-lsp" / "models" / "smollm2-135m-instruct"
    installed.parent.mkdir(parents=True)
    shutil.copytree(scripted_pkg, installed)  # any valid package stands in for an installed entry

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "codegen_lsp", *args], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "XDG_DATA_HOME": str(env_home)})

    listed = cli("models", "list")
    assert listed.returncode == 0
    lines = {ln.split()[1] if ln.startswith("*") else ln.split()[0]: ln for ln in listed.stdout.splitlines()[:3]}
    assert lines["qwen2.5-coder-0.5b-instruct"].startswith("*") and "available" in lines["qwen2.5-coder-0.5b-instruct"]
    assert "installed" in lines["smollm2-135m-instruct"]
    ok = cli("models", "verify")
    assert ok.returncode == 0 and ok.stdout.startswith("smollm2-135m-instruct: ok")
    (installed / "tokenizer.json").write_text("{}")
    bad = cli("models", "verify", "smollm2-135m-instruct")
    assert bad.returncode == 1 and "broken:" in bad.stdout
    missing = cli("models", "verify", "qwen2.5-coder-1.5b-instruct")
    assert missing.returncode == 1 and "not installed" in missing.stdout
    unknown = cli("models", "install", "gpt-17")
    assert unknown.returncode == 2 and "no catalog entry 'gpt-17'" in unknown.stderr and "Traceback" not in unknown.stderr
    # a catalog name works wherever a package path does
    r = cli("generate", str(tmp_path / "none.py"), "--model", "qwen2.5-coder-1.5b-instruct")
    assert r.returncode == 1 and "qwen2.5-coder-1.5b-instruct" in r.stderr and "Traceback" not in r.stderr


def _graph_that_fails_at_run_time(pkg: Path) -> None:
    """Swap the scripted graph for one with the same inputs and outputs whose Reshape cannot hold a
    prompt's tokens: ONNX Runtime raises while generating, as it does when it runs out of memory."""
    import onnx
    from onnx import TensorProto, helper

    from codegen_lsp.modelpkg import file_entries, write_manifest

    n = helper.make_node
    kv = ["batch", 1, "past", 1]
    graph = helper.make_graph(
        [n("Cast", ["input_ids"], ["f"], to=TensorProto.FLOAT),
         n("Reshape", ["f", "shape"], ["logits"]),
         n("Identity", ["past_key_values.0.key"], ["present.0.key"]),
         n("Identity", ["past_key_values.0.value"], ["present.0.value"])],
        "broken",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
         helper.make_tensor_value_info("past_key_values.0.key", TensorProto.FLOAT, kv),
         helper.make_tensor_value_info("past_key_values.0.value", TensorProto.FLOAT, kv)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1, 257]),
         helper.make_tensor_value_info("present.0.key", TensorProto.FLOAT, kv),
         helper.make_tensor_value_info("present.0.value", TensorProto.FLOAT, kv)],
        [helper.make_tensor("shape", TensorProto.INT64, [3], [-1, 1, 257])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(pkg / "cpu-fp32" / "model.onnx"))
    from codegen_lsp.modelpkg.manifest import Manifest, from_dict

    manifest = from_dict(Manifest, json.loads((pkg / "manifest.json").read_text()))
    manifest.files = file_entries(pkg, [f.path for f in manifest.files])
    write_manifest(pkg, manifest)


def test_a_runtime_failure_is_one_line_per_site_not_a_traceback(tmp_path: Path, scripted_pkg: Path) -> None:
    pkg = tmp_path / "broken"
    shutil.copytree(scripted_pkg, pkg)
    _graph_that_fails_at_run_time(pkg)
    target = tmp_path / "good.py"
    target.write_text(GOOD)
    r = run("generate", str(target), "--model", str(pkg))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    failed = [ln for ln in r.stderr.splitlines() if "generation failed:" in ln]
    assert len(failed) == 2 and "get_total" in failed[0] and "make_score" in failed[1]
    assert target.read_text() == GOOD


LONG = '''def long_sum(a, b, c):
    """Return the sum of a, b and c, one step at a time."""
    pass
'''


def test_a_body_cut_short_is_marked_partial_and_not_written_unless_asked(tmp_path: Path, scripted_pkg: Path) -> None:
    target = tmp_path / "long.py"
    target.write_text(LONG)
    r = run("generate", str(target), "--json", "--max-tokens", "25", "--model", str(scripted_pkg))
    row = json.loads(r.stdout)
    assert row["partial"] is True and row["raw"][0]["finish"] == "length" and row["body"].startswith("    total = a + b")
    r = run("generate", str(target), "--write", "--max-tokens", "25", "--model", str(scripted_pkg))
    assert r.returncode == 0 and "only a partial body" in r.stderr and target.read_text() == LONG
    r = run("generate", str(target), "--write", "--max-tokens", "25", "--allow-partial", "--model", str(scripted_pkg))
    assert r.returncode == 0 and "total = a + b" in target.read_text()
    target.write_text(LONG)
    whole = run("generate", str(target), "--json", "--model", str(scripted_pkg))  # the default limit lets it finish
    assert json.loads(whole.stdout)["partial"] is False
