"""The HTTP side of the ``openai`` backend: the configured endpoint, its API key, and one streamed
``/completions`` request that another thread can abort. Standard library only.

The API key is read from the environment variable the user names and only ever sent in the
``Authorization`` header: it is never part of a message, a log line or a ``repr``."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CONNECT_TIMEOUT_S = 3.0
"""A shared server on the local network answers a TCP connect in milliseconds; a dead one should
cost the user no more than this."""
READ_TIMEOUT_S = 60.0
"""Longest silence between two streamed chunks (a busy server may queue a request this long; the
caller's time budget usually ends a request much earlier)."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EndpointError(Exception):
    """The endpoint cannot be used: unreachable, refusing, or answering something else. The message
    is one line for the user and never holds the API key."""


def valid_env_name(name: str) -> bool:
    return bool(_ENV_NAME.fullmatch(name))


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: ``scheme://host:port`` + ``base`` (the API root, ``/v1`` by default)."""

    scheme: str
    host: str
    port: int
    base: str
    api_key: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, url: str, api_key: str | None = None) -> Endpoint:
        """``http://gpu-box:8000`` or ``http://gpu-box:8000/v1`` (an empty path means ``/v1``);
        ValueError with the reason for anything else (the message does not echo the URL, which may
        carry credentials)."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"not a URL ({exc})") from None
        if parts.scheme not in ("http", "https"):
            raise ValueError("must start with http:// or https://")
        if not parts.hostname:
            raise ValueError("has no host")
        if parts.username or parts.password:
            raise ValueError("must not hold credentials (name an environment variable in apiKeyEnv)")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        base = parts.path.rstrip("/") or "/v1"
        return cls(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), base, api_key)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.base}"

    def headers(self) -> dict[str, str]:
        out = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.api_key:
            out["Authorization"] = f"Bearer {self.api_key}"
        return out

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


def api_key_from_env(name: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The key held by environment variable ``name`` (None when no name is configured);
    EndpointError when the named variable is unset or empty."""
    if not name:
        return None
    value = (os.environ if environ is None else environ).get(name, "")
    if not value.strip():
        raise EndpointError(f"codegenLsp.apiKeyEnv names ${name}, which is not set in the language server's "
                            "environment (set it where the editor starts, or clear apiKeyEnv)")
    return value.strip()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"host not found ({exc.strerror or exc})"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}".splitlines()[0][:200]


def _http_error(endpoint: Endpoint, path: str, status: int, body: bytes) -> EndpointError:
    detail = body.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
    hint = " (check apiKeyEnv)" if status in (401, 403) else ""
    return EndpointError(f"{endpoint}{path}: HTTP {status}{hint}: {detail}")


def request_json(endpoint: Endpoint, method: str, path: str, body: Any = None,
                 timeout: float = READ_TIMEOUT_S) -> Any:
    """One plain JSON request (listing models, probing what the server supports)."""
    conn = endpoint.connection(CONNECT_TIMEOUT_S)
    try:
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(timeout)
        conn.request(method, endpoint.base + path, body=None if body is None else json.dumps(body),
                     headers=endpoint.headers())
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise EndpointError(f"{endpoint} is unreachable: {_reason(exc)}") from None
    finally:
        conn.close()
    if resp.status != 200:
        raise _http_error(endpoint, path, resp.status, data)
    try:
        return json.loads(data)
    except ValueError:
        raise EndpointError(f"{endpoint}{path}: the answer is not JSON") from None


class CompletionStream:
    """One streamed ``POST /completions``: :meth:`events` yields each server-sent JSON chunk;
    :meth:`close` (from any thread) drops the connection at once, which is how the server learns
    that nobody wants the rest (vLLM and llama.cpp's servers stop generating for it)."""

    def __init__(self, endpoint: Endpoint, body: dict[str, Any], read_timeout: float = READ_TIMEOUT_S) -> None:
        self.endpoint = endpoint
        self.body = {**body, "stream": True}
        self.read_timeout = read_timeout
        self._conn: http.client.HTTPConnection | None = None
        self._sock: socket.socket | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            sock, conn = self._sock, self._conn
        if sock is not None:
            try:  # wakes a reader blocked in recv() and sends the FIN the server watches for
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if conn is not None:
            conn.close()

    def events(self) -> Iterator[dict[str, Any]]:
        """Chunks until ``[DONE]`` or the end of the stream; nothing after :meth:`close`.
        EndpointError when the server cannot be reached, refuses, or drops the stream."""
        path = "/completions"
        conn = self.endpoint.connection(CONNECT_TIMEOUT_S)
        with self._lock:
            if self._closed.is_set():
                return
            self._conn = conn
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(self.read_timeout)
            with self._lock:
                self._sock = conn.sock
            if self._closed.is_set():
                return
            conn.request("POST", self.endpoint.base + path, body=json.dumps(self.body), headers=self.endpoint.headers())
            resp = conn.getresponse()
            if resp.status != 200:
                raise _http_error(self.endpoint, path, resp.status, resp.read(2048))
            while not self._closed.is_set():
                line = resp.readline()
                if not line:
                    if self._closed.is_set():
                        return
                    raise EndpointError(f"{self.endpoint} closed the stream before it ended")
                data = line.strip()
                if not data.startswith(b"data:"):
                    continue  # blank separators, comments (": ping") and event names
                data = data[5:].strip()
                if data == b"[DONE]":
                    return
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise EndpointError(f"{self.endpoint}: a streamed chunk is not JSON") from None
                if isinstance(chunk, dict) and "error" in chunk:
                    raise EndpointError(f"{self.endpoint}: {str(chunk['error'])[:200]}")
                yield chunk
        except EndpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - OSError, HTTPException, a chunked read cut in half
            if self._closed.is_set():
                return  # our own close() broke the read (http.client may fail in odd ways then)
            raise EndpointError(f"{self.endpoint} is unreachable: {_reason(exc)}") from None
        finally:
            self.close()
            conn.close()  # also when close() came while connecting, before the socket was known
