"""Logging for the server: stderr (or a file) plus window/logMessage; stdout is the protocol's."""

from __future__ import annotations

import logging
import sys
from typing import Any

from lsprotocol import types

_LEVELS = {
    logging.ERROR: types.MessageType.Error,
    logging.WARNING: types.MessageType.Warning,
    logging.INFO: types.MessageType.Info,
    logging.DEBUG: types.MessageType.Log,
}


class ClientLogHandler(logging.Handler):
    """Forwards records to the client as window/logMessage once the connection is up."""

    def __init__(self, server: Any) -> None:
        super().__init__(logging.INFO)
        self.server = server
        self._sending = False

    def emit(self, record: logging.LogRecord) -> None:
        if self._sending or not getattr(self.server, "client_ready", False):
            return
        try:
            level = max((lv for lv in _LEVELS if lv <= record.levelno), default=logging.DEBUG)
            params = types.LogMessageParams(type=_LEVELS[level], message=self.format(record))
            # Records come from worker threads too: the message is sent from the event loop.
            self.server.on_loop(self._send, params)
        except Exception:  # noqa: BLE001 - logging must never take the server down
            pass

    def _send(self, params: types.LogMessageParams) -> None:
        if self._sending:
            return
        self._sending = True  # a failure while sending must not log (and send) again
        try:
            self.server.window_log_message(params)
        except Exception:  # noqa: BLE001
            pass
        finally:
            self._sending = False


def setup_logging(level: str = "info", log_file: str | None = None) -> None:
    """Root logger to stderr (or ``log_file``). Never stdout."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("pygls").setLevel(logging.WARNING)
