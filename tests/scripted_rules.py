"""What the scripted test model (export/scripted.py) writes: after each signature + docstring, the
body the tests expect, exactly, on every machine. Tests that need a body add a rule here.

``BROKEN_*`` rules write invalid bodies on purpose, for the "no valid body" paths.
"""

from __future__ import annotations

from export.scripted import Rule


def _fn(header: str, docstring: str, indent: str = "    ") -> str:
    return f'{header}\n{indent}"""{docstring}"""'


RULES = [
    # tests/lsp/_support.py TINY_DOC and tests/cli GOOD
    Rule(_fn("def get_total(total, value):", "Return the sum of total and value."), ["\n    return total + value"]),
    Rule(_fn("def make_score(score, size):", "Return score multiplied by size."), ["\n    return score * size"]),
    # tests/lsp/_support.py LIVE_DOC: two bodies, so several candidates differ
    Rule(_fn("def check_value(value, size):", "Return True if value is greater than size."),
         ["\n    return value > size", "\n    if value > size:\n        return True\n    return False"]),
    # tests/lsp/test_cancel.py (40 copies) and the VS Code test's stub
    *(Rule(_fn(f"def get_value{i}(value, size):", "Return value multiplied by size."), ["\n    return value * size"])
      for i in range(40)),
    Rule(_fn("def scale(value, size):", "Return value multiplied by size."), ["\n    return value * size"]),
    # the editor tests (Neovim, VS Code)
    Rule(_fn("def add(a, b):", "Return the sum of a and b."), ["\n    return a + b"]),
    Rule(_fn("    def mul(self, a, b):", "Return a multiplied by b.", "        "), ["\n        return a * b"]),
    # tests/models/test_evaluate.py: four exact, one valid but wrong, one invalid
    Rule(_fn("def compute_total(total, count):", "Return the sum of total and count."), ["\n    return total + count"]),
    Rule(_fn("def get_size(size, item):", "Return the length of size."), ["\n    return len(size)"]),
    Rule(_fn("    def make_value(self, value, data):", "Return value multiplied by data.", "        "),
         ["\n        return value * data"]),
    Rule(_fn("def check_score(score, name):", "Return score unchanged if positive, else zero."),
         ["\n    if score > 0:\n        return score\n    return 0"]),
    Rule(_fn("def build_text(text, result):", "Return text as a string."), ["\n    return repr(text)"]),
    Rule(_fn("def parse_item(item, total):", "Return a list with item and total."), ["\n    return [item,"]),
    # tests/lsp/test_editor_experience.py: a string literal being typed
    Rule(_fn("def greet(name):", "Return a greeting for name."), ['\n    return "hello world, " + name']),
    # a body long enough to be cut short by a small token limit (partial bodies)
    Rule(_fn("def long_sum(a, b, c):", "Return the sum of a, b and c, one step at a time."),
         ["\n    total = a + b\n    total = total + c\n    return total"]),
    # "no valid body": every candidate is refused by the grammar check
    Rule(_fn("def broken_ratio(total, count):", "Return total divided by count."),
         ["\n    return (total /", "\n    return total // / count"]),
]
