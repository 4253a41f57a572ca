"""The remote backend's settings and key handling, and the endpoint-down paths, without an engine:
a closed localhost port refuses every connection."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from codegen_lsp.analysis.document import Document
from codegen_lsp.analysis.sites import find_sites
from codegen_lsp.config import Settings, parse_settings
from codegen_lsp.generation import BodyGenerator, ModelUnavailable
from codegen_lsp.remote.client import Endpoint, EndpointError, api_key_from_env
from codegen_lsp.remote.engine import connect

SECRET = "sk-test-5f1b9c0e-never-shown"
DOC = 'def get_total(total, value):\n    """Return the sum of total and value."""\n    pass\n'


def test_default_is_local_and_openai_needs_an_endpoint() -> None:
    assert Settings().backend == "local"
    s, warnings = parse_settings({"codegenLsp": {"backend": "openai"}})
    assert s.backend == "local" and any("needs an endpoint" in w for w in warnings)
    s, warnings = parse_settings({"backend": "openai", "endpoint": "http://gpu-box:8000/v1", "apiKeyEnv": "TEAM_KEY"})
    assert (s.backend, s.endpoint, s.api_key_env, warnings) == ("openai", "http://gpu-box:8000/v1", "TEAM_KEY", [])
    s, warnings = parse_settings({"backend": "triton"})
    assert s.backend == "local" and "backend='triton' is invalid" in warnings[0]


@pytest.mark.parametrize(("url", "why"), [
    ("gpu-box:8000", "http:// or https://"),
    ("ftp://gpu-box/v1", "http:// or https://"),
    ("http://user:hunter2@gpu-box:8000/v1", "credentials"),
    ("http://gpu-box:99999/v1", "not a URL"),
    ("http:///v1", "no host"),
])
def test_bad_endpoint_is_refused_without_echoing_it(url: str, why: str) -> None:
    s, warnings = parse_settings({"backend": "openai", "endpoint": url})
    assert s.endpoint is None and s.backend == "local"
    assert why in warnings[0] and all("hunter2" not in w for w in warnings)


def test_a_key_pasted_into_api_key_env_is_refused_and_not_echoed() -> None:
    s, warnings = parse_settings({"apiKeyEnv": SECRET})
    assert s.api_key_env is None and len(warnings) == 1
    assert "NAME of an environment variable" in warnings[0] and SECRET not in warnings[0]


def test_endpoint_forms_and_engine_key() -> None:
    assert str(Endpoint.parse("http://gpu-box:8000")) == "http://gpu-box:8000/v1"
    assert str(Endpoint.parse("https://llm.example.com/openai/v1/")) == "https://llm.example.com:443/openai/v1"
    a = Settings(backend="openai", endpoint="http://a:1/v1")
    assert a.engine_key != Settings(backend="openai", endpoint="http://b:1/v1").engine_key
    assert a.engine_key != Settings().engine_key


def test_api_key_comes_from_the_named_variable_only() -> None:
    assert api_key_from_env(None, {"OPENAI_API_KEY": SECRET}) is None  # no name, no key: nothing guessed
    assert api_key_from_env("TEAM_KEY", {"TEAM_KEY": SECRET}) == SECRET
    with pytest.raises(EndpointError, match=r"\$TEAM_KEY, which is not set"):
        api_key_from_env("TEAM_KEY", {})
    endpoint = Endpoint.parse("http://gpu-box:8000", SECRET)
    assert endpoint.headers()["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(endpoint) and SECRET not in str(endpoint)


def test_endpoint_down_is_one_clear_error_and_the_key_is_never_logged(
        closed_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TEAM_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    statuses: list[tuple[str, str]] = []
    settings, warnings = Settings(model_path=str(tmp_path / "absent"), backend="openai", api_key_env="TEAM_KEY",
                                  endpoint=f"http://127.0.0.1:{closed_port}").validated()
    assert warnings == []
    gen = BodyGenerator(settings, on_status=lambda state, msg: statuses.append((state, msg)))
    doc = Document.from_text(DOC)
    site = find_sites(doc)[0]
    with pytest.raises(ModelUnavailable) as first:
        gen.bodies(doc, site)
    with pytest.raises(ModelUnavailable) as again:  # remembered for a while: no second connect, same message
        gen.bodies(doc, site)
    message = str(first.value)
    assert message == str(again.value)
    assert message == f"remote backend: http://127.0.0.1:{closed_port}/v1 is unreachable: connection refused"
    assert [s for s in statuses if s[0] == "error"] == [("error", message)]
    assert SECRET not in caplog.text and all(SECRET not in m for _, m in statuses)


def test_endpoint_down_falls_back_to_the_local_package(closed_port: int, scripted_pkg: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    statuses: list[tuple[str, str]] = []
    gen = BodyGenerator(Settings(model_path=str(scripted_pkg), backend="openai",
                                 endpoint=f"http://127.0.0.1:{closed_port}"),
                        on_status=lambda state, msg: statuses.append((state, msg)))
    doc = Document.from_text(DOC)
    result = gen.bodies(doc, find_sites(doc)[0])
    assert [c.body for c in result.candidates] == ["    return total + value"]
    assert statuses[-1][0] == "ready" and "local fallback" in statuses[-1][1]
    assert "connection refused; using the local model" in caplog.text
    with pytest.raises(EndpointError, match="connection refused"):  # no fallback when asked directly
        connect(f"http://127.0.0.1:{closed_port}", model_dir=scripted_pkg)


def test_cli_reports_a_down_endpoint_or_a_missing_one_in_one_line(closed_port: int, tmp_path: Path) -> None:
    import subprocess
    import sys

    src = tmp_path / "m.py"
    src.write_text(DOC)
    base = [sys.executable, "-m", "codegen_lsp", "generate", str(src), "--model", str(tmp_path / "absent")]
    runs = [
        (["--backend", "openai", "--endpoint", f"http://127.0.0.1:{closed_port}/v1"],
         f"remote backend: http://127.0.0.1:{closed_port}/v1 is unreachable: connection refused"),
        (["--backend", "openai"], "--backend='openai' needs an endpoint (e.g. http://gpu-box:8000/v1)"),
        (["--backend", "openai", "--endpoint", "http://u:hunter2@gpu-box/v1"],
         "--endpoint must not hold credentials (name an environment variable in --api-key-env)"),
    ]
    for extra, message in runs:
        proc = subprocess.run(base + extra, capture_output=True, text=True, timeout=60)
        errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
        assert proc.returncode == 1 and proc.stdout == ""
        assert len(errors) == 1 and errors[0].endswith(message), proc.stderr
        assert "Traceback" not in proc.stderr and "hunter2" not in proc.stderr


def test_a_down_endpoint_is_tried_again_after_the_retry_window(closed_port: int, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import codegen_lsp.generation as generation

    statuses: list[str] = []
    gen = BodyGenerator(Settings(model_path=str(tmp_path / "absent"), backend="openai",
                                 endpoint=f"http://127.0.0.1:{closed_port}"), on_status=lambda s, m: statuses.append(s))
    doc = Document.from_text(DOC)
    site = find_sites(doc)[0]
    for _ in range(2):
        with pytest.raises(ModelUnavailable):
            gen.bodies(doc, site)
    assert statuses.count("loading") == 1  # the second request got the remembered failure
    monkeypatch.setattr(generation, "REMOTE_RETRY_S", 0.0)
    with pytest.raises(ModelUnavailable):
        gen.bodies(doc, site)
    assert statuses.count("loading") == 2  # past the window: connected again
