"""Our own execution testbed: small everyday functions with doctests, written for this project (not
taken from any published benchmark). ``python -m models.evaluate --exec --testbed`` regenerates each
body from its signature and docstring and runs the doctests; the bodies here are the references."""

from __future__ import annotations


def slugify(title: str) -> str:
    """Lower-case ``title`` and join its alphanumeric words with single hyphens.

    >>> slugify("Hello, World!")
    'hello-world'
    >>> slugify("  Many   spaces here ")
    'many-spaces-here'
    """
    words = "".join(c.lower() if c.isalnum() else " " for c in title).split()
    return "-".join(words)


def chunked(items: list, size: int) -> list[list]:
    """Split ``items`` into consecutive lists of ``size`` elements; the last may be shorter.

    >>> chunked([1, 2, 3, 4, 5], 2)
    [[1, 2], [3, 4], [5]]
    >>> chunked([], 3)
    []
    """
    return [items[i:i + size] for i in range(0, len(items), size)]


def count_words(text: str) -> dict[str, int]:
    """Count how often each word occurs in ``text``, ignoring case.

    >>> count_words("the cat and The hat")
    {'the': 2, 'cat': 1, 'and': 1, 'hat': 1}
    """
    counts: dict[str, int] = {}
    for word in text.lower().split():
        counts[word] = counts.get(word, 0) + 1
    return counts


def flatten(nested: list) -> list:
    """Flatten arbitrarily nested lists into one list, keeping order.

    >>> flatten([1, [2, [3, 4]], [], 5])
    [1, 2, 3, 4, 5]
    """
    out = []
    for item in nested:
        if isinstance(item, list):
            out.extend(flatten(item))
        else:
            out.append(item)
    return out


def parse_duration(text: str) -> int:
    """Convert a duration such as ``"1h30m"`` or ``"45s"`` (units h, m, s) to seconds.

    >>> parse_duration("1h30m")
    5400
    >>> parse_duration("2m5s")
    125
    >>> parse_duration("45s")
    45
    """
    total, number = 0, ""
    for ch in text:
        if ch.isdigit():
            number += ch
        else:
            total += int(number) * {"h": 3600, "m": 60, "s": 1}[ch]
            number = ""
    return total


def is_balanced(text: str) -> bool:
    """True when every bracket in ``text`` ((), [] and {}) is closed in the right order.

    >>> is_balanced("f(a[0], {b: c})")
    True
    >>> is_balanced("(]")
    False
    >>> is_balanced("((")
    False
    """
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    for ch in text:
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack


def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping or touching closed intervals; return them sorted by start.

    >>> merge_intervals([(5, 7), (1, 3), (2, 4), (8, 8)])
    [(1, 4), (5, 7), (8, 8)]
    >>> merge_intervals([(1, 2), (2, 5)])
    [(1, 5)]
    """
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def rle_encode(text: str) -> str:
    """Run-length encode ``text``: each run becomes the character followed by its length.

    >>> rle_encode("aaabccdddd")
    'a3b1c2d4'
    >>> rle_encode("")
    ''
    """
    out = []
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[j] == text[i]:
            j += 1
        out.append(f"{text[i]}{j - i}")
        i = j
    return "".join(out)


def median(values: list[float]) -> float:
    """The median of a non-empty list (the mean of the two middle values for an even count).

    >>> median([3, 1, 2])
    2
    >>> median([4, 1, 3, 2])
    2.5
    """
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def invert_dict(mapping: dict) -> dict:
    """Map each value of ``mapping`` to the sorted list of keys that had it.

    >>> invert_dict({"a": 1, "b": 2, "c": 1})
    {1: ['a', 'c'], 2: ['b']}
    """
    out: dict = {}
    for key, value in mapping.items():
        out.setdefault(value, []).append(key)
    return {value: sorted(keys) for value, keys in out.items()}


def caesar(text: str, shift: int) -> str:
    """Shift every ASCII letter of ``text`` by ``shift`` places, wrapping around and keeping case.

    >>> caesar("Hello, World!", 3)
    'Khoor, Zruog!'
    >>> caesar("abc", -1)
    'zab'
    """
    out = []
    for ch in text:
        if "a" <= ch <= "z":
            out.append(chr((ord(ch) - 97 + shift) % 26 + 97))
        elif "A" <= ch <= "Z":
            out.append(chr((ord(ch) - 65 + shift) % 26 + 65))
        else:
            out.append(ch)
    return "".join(out)


def snake_to_camel(name: str) -> str:
    """Turn ``snake_case`` into ``camelCase``.

    >>> snake_to_camel("max_new_tokens")
    'maxNewTokens'
    >>> snake_to_camel("x")
    'x'
    """
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def primes_below(n: int) -> list[int]:
    """All prime numbers smaller than ``n``, in increasing order.

    >>> primes_below(20)
    [2, 3, 5, 7, 11, 13, 17, 19]
    >>> primes_below(2)
    []
    """
    sieve = [True] * max(n, 0)
    out = []
    for i in range(2, n):
        if sieve[i]:
            out.append(i)
            for j in range(i * i, n, i):
                sieve[j] = False
    return out


def dedupe(items: list) -> list:
    """Remove repeated items, keeping the first occurrence of each and the original order.

    >>> dedupe([3, 1, 3, 2, 1])
    [3, 1, 2]
    """
    seen = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def parse_query(query: str) -> dict[str, str]:
    """Parse a URL query string such as ``"a=1&b=two"`` into a dict; a key without ``=`` maps to ``""``.

    >>> parse_query("a=1&b=two&flag")
    {'a': '1', 'b': 'two', 'flag': ''}
    >>> parse_query("")
    {}
    """
    out = {}
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            out[key] = value
    return out


def transpose(matrix: list[list[int]]) -> list[list[int]]:
    """The transpose of a rectangular matrix given as a list of rows.

    >>> transpose([[1, 2, 3], [4, 5, 6]])
    [[1, 4], [2, 5], [3, 6]]
    """
    return [list(row) for row in zip(*matrix)]


def human_size(num_bytes: int) -> str:
    """Format a byte count with one decimal and the largest fitting unit among B, KiB, MiB, GiB.

    >>> human_size(512)
    '512.0 B'
    >>> human_size(1536)
    '1.5 KiB'
    >>> human_size(3 * 1024 ** 3)
    '3.0 GiB'
    """
    size = float(num_bytes)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def longest_common_prefix(words: list[str]) -> str:
    """The longest string that every word in ``words`` starts with.

    >>> longest_common_prefix(["interval", "internet", "interior"])
    'inter'
    >>> longest_common_prefix([])
    ''
    """
    if not words:
        return ""
    prefix = words[0]
    for word in words[1:]:
        while not word.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


def moving_average(values: list[float], window: int) -> list[float]:
    """Averages of each run of ``window`` consecutive values.

    >>> moving_average([1, 2, 3, 4, 5], 2)
    [1.5, 2.5, 3.5, 4.5]
    >>> moving_average([1, 2], 3)
    []
    """
    return [sum(values[i:i + window]) / window for i in range(len(values) - window + 1)]


def group_by_length(words: list[str]) -> dict[int, list[str]]:
    """Group words by their length, keeping the input order inside each group.

    >>> group_by_length(["a", "bb", "c", "dd", "eee"])
    {1: ['a', 'c'], 2: ['bb', 'dd'], 3: ['eee']}
    """
    groups: dict[int, list[str]] = {}
    for word in words:
        groups.setdefault(len(word), []).append(word)
    return groups


def to_roman(number: int) -> str:
    """Write a number between 1 and 3999 in Roman numerals.

    >>> to_roman(1994)
    'MCMXCIV'
    >>> to_roman(4)
    'IV'
    """
    table = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
             (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
    out = []
    for value, letters in table:
        while number >= value:
            out.append(letters)
            number -= value
    return "".join(out)


def clamp(value: float, low: float, high: float) -> float:
    """Limit ``value`` to the closed range [low, high].

    >>> clamp(5, 0, 3)
    3
    >>> clamp(-1, 0, 3)
    0
    >>> clamp(2, 0, 3)
    2
    """
    return max(low, min(high, value))


def wrap_text(text: str, width: int) -> list[str]:
    """Greedily wrap the words of ``text`` into lines of at most ``width`` characters.

    >>> wrap_text("the quick brown fox jumps", 10)
    ['the quick', 'brown fox', 'jumps']
    """
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines


def digits_sum(number: int) -> int:
    """Sum of the decimal digits of a (possibly negative) integer.

    >>> digits_sum(1234)
    10
    >>> digits_sum(-905)
    14
    """
    return sum(int(d) for d in str(abs(number)))


def rotate(items: list, steps: int) -> list:
    """Rotate ``items`` right by ``steps`` places (left for negative steps).

    >>> rotate([1, 2, 3, 4, 5], 2)
    [4, 5, 1, 2, 3]
    >>> rotate([1, 2, 3], -1)
    [2, 3, 1]
    >>> rotate([], 3)
    []
    """
    if not items:
        return []
    steps %= len(items)
    return items[-steps:] + items[:-steps] if steps else list(items)
