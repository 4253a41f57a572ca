"""Protocol messages from worker threads (model loading status, log records) are sent from the event
loop, never written to the transport concurrently from another thread."""

from __future__ import annotations

import asyncio
import logging
import threading

from codegen_lsp.features.log import ClientLogHandler
from codegen_lsp.server import create_server


async def test_status_and_log_messages_from_a_worker_are_sent_on_the_loop() -> None:
    srv = create_server()
    srv.bind_loop()
    srv.client_ready = True
    sent: list[tuple[str, int]] = []
    srv.protocol.notify = lambda method, params=None: sent.append((method, threading.get_ident()))  # type: ignore[method-assign]
    srv.window_log_message = lambda params: sent.append(("window/logMessage", threading.get_ident()))  # type: ignore[method-assign]
    handler = ClientLogHandler(srv)
    logger = logging.getLogger("codegen_lsp.test_threads")
    logger.addHandler(handler)
    try:
        worker = threading.Thread(target=lambda: (srv.report_status("loading", "from a worker"),
                                                  logger.warning("from a worker")))
        worker.start()
        worker.join()
        for _ in range(50):
            if len(sent) >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        logger.removeHandler(handler)
    loop_thread = threading.get_ident()
    assert sorted(m for m, _ in sent) == ["codegenLsp/status", "window/logMessage"]
    assert {t for _, t in sent} == {loop_thread}
