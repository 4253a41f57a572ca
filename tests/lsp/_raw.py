"""A minimal raw JSON-RPC client over a subprocess, for what pytest-lsp cannot express: requests
before initialize, malformed params, byte-exact stdout checks and process lifetime."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Any


def frame(msg: dict[str, Any]) -> bytes:
    body = json.dumps(msg).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_frames(data: bytes) -> list[dict[str, Any]]:
    """Parse every frame in ``data``; raises if anything that is not a frame is found."""
    out = []
    i = 0
    while i < len(data):
        head_end = data.index(b"\r\n\r\n", i)
        headers = data[i:head_end].decode("ascii").split("\r\n")
        length = None
        for h in headers:
            name, _, value = h.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            raise ValueError(f"not an LSP frame at byte {i}: {data[i:i + 80]!r}")
        start = head_end + 4
        out.append(json.loads(data[start:start + length]))
        i = start + length
    return out


class RawServer:
    def __init__(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self._id = 0
        self._out = bytearray()
        self._err = bytearray()
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for t in self._readers:
            t.start()

    @staticmethod
    def _pump(stream: Any, sink: bytearray) -> None:
        while chunk := stream.read1(65536):
            sink.extend(chunk)

    def wait_reply(self, rid: int | None, timeout: float = 60) -> dict[str, Any]:
        """Block until the response to request ``rid`` has arrived."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            complete = bytes(self._out)
            try:
                frames = read_frames(complete)
            except (ValueError, json.JSONDecodeError):
                frames = []  # a frame still arriving
            for f in frames:
                if f.get("id") == rid and "method" not in f:
                    return f
            time.sleep(0.05)
        raise TimeoutError(f"no reply to request {rid}")

    def send(self, method: str, params: Any = None, *, request: bool = True) -> int | None:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        rid = None
        if request:
            self._id += 1
            rid = msg["id"] = self._id
        assert self.proc.stdin is not None
        self.proc.stdin.write(frame(msg))
        self.proc.stdin.flush()
        return rid

    def finish(self, timeout: float = 30) -> tuple[list[dict[str, Any]], bytes, int]:
        """Close stdin, wait for exit; return (frames on stdout, stderr, exit code)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=timeout)
        for t in self._readers:
            t.join(timeout=5)
        return read_frames(bytes(self._out)), bytes(self._err), self.proc.returncode

    def wait_exit(self, timeout: float) -> int | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return self.proc.returncode
            time.sleep(0.1)
        return None
