"""Fixtures for the remote backend's tests: a closed localhost port, and an audited server process.

Tests marked ``remote`` need a real engine (llama.cpp's server); they run only under
``make test-remote`` (``CODEGEN_LSP_TEST_REMOTE=1``) and are deselected, not skipped, elsewhere."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lsp._raw import RawServer

AUDITED_CMD = [sys.executable, str(Path(__file__).with_name("_netaudit.py")), "--log-level", "debug", "serve"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CODEGEN_LSP_TEST_REMOTE") == "1":
        return
    keep = [i for i in items if i.get_closest_marker("remote") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("remote") is not None])
        items[:] = keep


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A localhost port nothing listens on: bound (so nobody else takes it) but not listening, so a
    connect is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def audited_server(net_log: Path, env: dict[str, str] | None = None) -> RawServer:
    """The real server process over stdio, recording its connection attempts in ``net_log``."""
    return RawServer(AUDITED_CMD, env={**os.environ, **(env or {}), "CODEGEN_NET_LOG": str(net_log)})


def connections(net_log: Path) -> list[str]:
    return net_log.read_text(encoding="utf-8").splitlines() if net_log.exists() else []
