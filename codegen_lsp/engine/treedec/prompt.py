"""What a tree decoder reads from a prompt: the function's ``def`` line(s) and docstring (the
prompt may carry other code before them), and the indentation its body goes at."""

from __future__ import annotations

import ast

MAX_LINES = 400


def function_site(prompt: str) -> tuple[str, str]:
    """(header + docstring text, body indentation). The prompt ends right after the docstring's
    closing quotes; the docstring's first line gives the indentation."""
    lines = prompt.split("\n")
    start = None
    for k in range(len(lines) - 1, max(-1, len(lines) - MAX_LINES), -1):
        chunk = "\n".join(lines[k:]).strip()
        if not chunk or chunk[0] not in "\"'rRuUbB":
            continue
        try:
            tree = ast.parse(chunk)
        except SyntaxError:
            continue
        if (len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr)
                and isinstance(tree.body[0].value, ast.Constant) and isinstance(tree.body[0].value.value, str)):
            start = k
            break
    if start is None:  # no docstring found: the last lines, one level under the last def
        head = max((i for i, line in enumerate(lines) if line.lstrip().startswith(("def ", "async def "))),
                   default=max(0, len(lines) - 20))
        line = lines[head]
        return "\n".join(lines[head:]), line[: len(line) - len(line.lstrip())] + "    "
    indent_line = lines[start]
    indent = indent_line[: len(indent_line) - len(indent_line.lstrip())]
    head = start
    for i in range(start - 1, max(-1, start - MAX_LINES), -1):
        if lines[i].lstrip().startswith(("def ", "async def ")) and len(lines[i]) - len(lines[i].lstrip()) < len(indent):
            head = i
            break
    return "\n".join(lines[head:]), indent
