"""JSON-RPC strictness pygls leaves out: answer malformed requests and early requests with errors.

pygls drops a request whose params fail to deserialize (the client would wait forever) and serves
requests sent before ``initialize``. Here both get a proper JSON-RPC error response instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from lsprotocol import types
from pygls.protocol import LanguageServerProtocol

log = logging.getLogger(__name__)

SERVER_NOT_INITIALIZED = -32002
INVALID_PARAMS = -32602
_ALLOWED_BEFORE_INIT = {types.INITIALIZE, types.EXIT, types.SHUTDOWN}


@dataclass
class _Rejected:
    """A request that could not be deserialized; answered with INVALID_PARAMS."""

    id: Any
    method: str
    jsonrpc: str = "2.0"


class StrictProtocol(LanguageServerProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_seen = False

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except Exception:
            if isinstance(data, dict) and "id" in data and "method" in data:
                return _Rejected(id=data["id"], method=str(data["method"]))
            raise

    def handle_message(self, message: Any) -> None:
        if isinstance(message, _Rejected):
            log.warning("malformed params for %s (id %s)", message.method, message.id)
            self._send_error(message.id, INVALID_PARAMS, f"Invalid params for {message.method}")
            return
        method = getattr(message, "method", None)
        if method == types.INITIALIZE:
            self.initialize_seen = True
        elif method is not None and not self.initialize_seen and method not in _ALLOWED_BEFORE_INIT:
            msg_id = getattr(message, "id", None)
            if msg_id is not None:  # notifications before initialize are dropped, per the spec
                self._send_error(msg_id, SERVER_NOT_INITIALIZED, "Server not initialized")
            return
        super().handle_message(message)

    def _send_error(self, msg_id: Any, code: int, message: str) -> None:
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}})
