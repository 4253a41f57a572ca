"""Text helpers."""

import re


def is_palindrome(text: str) -> bool:
    """Return True if text reads the same forwards and backwards, ignoring case."""
    pass


def count_words(text: str) -> int:
    """Return the number of whitespace-separated words in text."""
    ...


def slugify(title: str) -> str:
    """Lower-case the title and replace every run of non-alphanumeric characters with a dash."""
    raise NotImplementedError
