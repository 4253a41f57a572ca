"""The prompt/target convention shared by the corpus, training and the server's prompts.

A pair is cut from a function that opens with a docstring::

    @decorator                      <- prompt starts at the start of the first line
    def name(args) -> T:               of the definition (decorators and indentation kept)
        \"\"\"Docstring.\"\"\"           <- prompt ends right after the closing quotes
        body line 1                 <- target = "\\n" + the body lines, indentation kept
        body line 2

The prompt never ends with a newline: subword tokenizers merge a newline with the following
indentation, so the model must produce ``"\\n" + indent`` itself (``PromptConvention.
end_before_newline`` in the manifest). The target is everything after the docstring up to the end
of the function node: it starts with ``"\\n"`` and has no trailing newline. ``prompt + target`` is
the function exactly as in the (newline-normalized) file. A JSONL record's ``body`` is implied:
``target[1:]``.
"""

from __future__ import annotations

from dataclasses import dataclass


class PromptFormatError(ValueError):
    """A (prompt, target) pair breaks the convention above."""


@dataclass(frozen=True)
class PromptTarget:
    """One training/evaluation example."""

    prompt: str
    """Definition + docstring, ending right after the docstring's closing quotes."""
    target: str
    """``"\\n"`` + body lines with their indentation; what the model must continue with."""


def cut(source: str, def_line_start: int, docstring_end: int, function_end: int) -> PromptTarget:
    """Cut a pair from ``source`` (offsets in characters: start of the definition's first line,
    end of the docstring literal, end of the function)."""
    pair = PromptTarget(source[def_line_start:docstring_end], source[docstring_end:function_end])
    check(pair)
    return pair


def check(pair: PromptTarget) -> None:
    """Raise ``PromptFormatError`` when the pair does not follow the convention."""
    if pair.prompt.endswith(("\n", " ", "\t")):
        raise PromptFormatError("prompt must end right after the docstring's closing quotes")
    if not pair.prompt.endswith(('"', "'")):
        raise PromptFormatError("prompt must end with the docstring's closing quote")
    if not pair.target.startswith("\n"):
        raise PromptFormatError("target must start with a newline (the docstring ends its line)")
    if pair.target.endswith("\n"):
        raise PromptFormatError("target must not end with a newline")


def training_text(pair: PromptTarget) -> str:
    """The text a language model is trained on: the function as written."""
    return pair.prompt + pair.target


def body_indent(target: str) -> str:
    """Indentation of the first non-blank body line (what the model's first line must use)."""
    for line in target.split("\n")[1:]:
        if line.strip():
            return line[: len(line) - len(line.lstrip())]
    return ""
