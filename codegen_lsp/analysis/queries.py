"""The Python grammar and the tree-sitter queries shipped as package data (``queries/*.scm``)."""

from __future__ import annotations

import functools
from importlib import resources

import tree_sitter_python
from tree_sitter import Language, Parser, Query

LANGUAGE = Language(tree_sitter_python.language())
"""The tree-sitter Python grammar every parser and query in the package uses."""

QUERY_NAMES = ("sites", "context")
"""Every query file in ``queries/``, without the ``.scm`` suffix."""


def new_parser() -> Parser:
    """A fresh parser; parsers are not thread-safe, so each document owns one."""
    return Parser(LANGUAGE)


def query_source(name: str) -> str:
    """The text of ``queries/<name>.scm``."""
    return resources.files(__package__).joinpath("queries", f"{name}.scm").read_text(encoding="utf-8")


@functools.cache
def load_query(name: str) -> Query:
    """The compiled query ``queries/<name>.scm`` (compiled once per process)."""
    return Query(LANGUAGE, query_source(name))
