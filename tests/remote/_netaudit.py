"""``python tests/remote/_netaudit.py ARGS``: run ``codegen-lsp ARGS`` with an audit hook that appends
every network connection attempt (``socket.connect``, ``socket.getaddrinfo``) to the file named by
``$CODEGEN_NET_LOG``, one ``event address`` per line. The hook only records; the tests decide."""

from __future__ import annotations

import os
import sys
from typing import Any


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        where = args[1]
    elif event == "socket.getaddrinfo":
        where = (args[0], args[1])
    else:
        return
    with open(os.environ["CODEGEN_NET_LOG"], "a", encoding="utf-8") as fh:
        fh.write(f"{event} {where!r}\n")


if __name__ == "__main__":
    sys.path.insert(0, str(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
    sys.addaudithook(_hook)
    from codegen_lsp.cli import main

    sys.exit(main(sys.argv[1:]))
