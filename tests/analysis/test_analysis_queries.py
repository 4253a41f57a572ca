"""The .scm queries ship as package data and compile against the grammar."""

from __future__ import annotations

from importlib import resources

import pytest

from codegen_lsp.analysis.queries import QUERY_NAMES, load_query, query_source


def test_every_query_file_is_listed() -> None:
    files = {p.name for p in resources.files("codegen_lsp.analysis").joinpath("queries").iterdir()}
    assert files == {f"{name}.scm" for name in QUERY_NAMES}


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_query_compiles(name: str) -> None:
    query = load_query(name)
    assert query.pattern_count >= 1
    assert query_source(name).strip()


def test_capture_names() -> None:
    sites = load_query("sites")
    assert {sites.capture_name(i) for i in range(sites.capture_count)} == {"function", "name", "docstring"}
    context = load_query("context")
    assert {context.capture_name(i) for i in range(context.capture_count)} == {
        "docstring", "import", "assignment", "definition"}
