"""Which Python files on this machine may feed the corpus, grouped by the package they belong to.

Sources are the standard library (one package per top-level module, e.g. ``stdlib/json``) and the
site-packages directories (one package per installed distribution, so ``torch``, ``functorch`` and
``torchgen`` are all ``torch``). Tests, vendored copies and anything that is a benchmark or
evaluation data set are excluded: a function from HumanEval/MBPP in the training data would make
every later evaluation worthless.
"""

from __future__ import annotations

import re
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

STDLIB_LICENSE = "PSF-2.0"

# Benchmark / evaluation data sets, matched against every path component (lower-cased, "-" -> "_").
BENCHMARK_NAMES = re.compile(
    r"human_?eval|mbpp|evalplus|bigcodebench|ds_?1000|code_?contests|livecodebench|multipl_?e"
    r"|apps_?eval|crux_?eval|codexglue|code_?search_?net|swe_?bench"
)
TEST_DIRS = frozenset({"test", "tests", "testing", "unittests", "idle_test", "test_data", "testdata"})
# Vendored copies (pip/_vendor, setuptools/_distutils = stdlib distutils) would put one package's code
# in two splits.
SKIP_DIRS = frozenset(
    {"__pycache__", "site-packages", "dist-packages", "_vendor", "vendor", "_vendored", "vendored",
     "extern", "_bundled", "_distutils", "turtledemo", "examples", "benchmarks", "benchmark"}
)
# Our own code would let later evaluations on this repository leak into training.
OWN_DISTRIBUTIONS = frozenset({"codegen_lsp"})
MAX_FILE_BYTES = 1_000_000  # generated tables, not code anyone writes by hand


@dataclass(frozen=True)
class SourceFile:
    """One Python file and the package it is attributed to."""

    package: str
    """Split unit: ``stdlib/<module>`` or the distribution name (normalized)."""
    path: str
    """Path relative to its root (the stdlib or site-packages directory)."""
    file: Path
    license: str | None


def normalize_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def is_excluded(rel: Path) -> bool:
    """Tests, vendored code, caches and benchmark data sets; ``rel`` is relative to its root."""
    parts = [p.lower().replace("-", "_") for p in rel.parts]
    if any(BENCHMARK_NAMES.search(p) for p in parts):
        return True
    if any(p in TEST_DIRS or p in SKIP_DIRS or p.endswith("_tests") for p in parts[:-1]):
        return True
    name = parts[-1]
    return name.startswith("test_") or name.endswith("_test.py") or name in {"conftest.py", "tests.py"}


def _field(dist: metadata.Distribution, key: str) -> str | None:
    try:
        value = dist.metadata[key]
    except KeyError:  # newer Pythons raise where 3.11 returns None
        return None
    return str(value) if value else None


def _license_of(dist: metadata.Distribution) -> str | None:
    meta = dist.metadata
    expr = _field(dist, "License-Expression")
    if expr:
        return expr
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return "; ".join(classifiers)
    text = _field(dist, "License")
    if text and len(text) <= 80 and "\n" not in text:
        return text
    return None


def _top_level_owners(site_dir: Path) -> dict[str, tuple[str, str | None]]:
    """Map each top-level name in ``site_dir`` to (distribution, licence) from the dist-info records."""
    owners: dict[str, tuple[str, str | None]] = {}
    for dist in metadata.distributions(path=[str(site_dir)]):
        name = _field(dist, "Name")
        if not name:
            continue
        lic = _license_of(dist)
        for f in dist.files or []:
            top = f.parts[0] if f.parts else ""
            if not top or top.endswith((".dist-info", ".egg-info", ".pth")) or top == "..":
                continue
            owners.setdefault(top.removesuffix(".py"), (normalize_dist(name), lic))
    return owners


def _py_files(root: Path, start: Path) -> Iterator[Path]:
    if start.is_file():
        if start.suffix == ".py":
            yield start
        return
    for p in sorted(start.rglob("*.py")):
        rel = p.relative_to(root)
        if not is_excluded(rel) and p.is_file() and p.stat().st_size <= MAX_FILE_BYTES:
            yield p


def stdlib_files(stdlib: Path) -> Iterator[SourceFile]:
    for entry in sorted(stdlib.iterdir()):
        top = entry.name.removesuffix(".py")
        if is_excluded(Path(entry.name)) or entry.name.lower() in TEST_DIRS | SKIP_DIRS:
            continue
        if not (entry.suffix == ".py" or (entry.is_dir() and (entry / "__init__.py").exists())):
            continue
        for f in _py_files(stdlib, entry):
            yield SourceFile(f"stdlib/{top}", str(f.relative_to(stdlib)), f, STDLIB_LICENSE)


def site_files(site_dir: Path) -> Iterator[SourceFile]:
    owners = _top_level_owners(site_dir)
    for entry in sorted(site_dir.iterdir()):
        top = entry.name.removesuffix(".py")
        if entry.name.startswith(("_", ".")) and entry.is_file():
            continue  # *.pth helpers, editable finders
        if entry.suffix != ".py" and not entry.is_dir():
            continue
        if entry.name.endswith((".dist-info", ".egg-info", ".libs", ".data")):
            continue
        package, lic = owners.get(top, (normalize_dist(top), None))
        if package in OWN_DISTRIBUTIONS or is_excluded(Path(entry.name)) or BENCHMARK_NAMES.search(package):
            continue
        for f in _py_files(site_dir, entry):
            yield SourceFile(package, str(f.relative_to(site_dir)), f, lic)


def default_roots() -> tuple[Path, list[Path]]:
    """The running interpreter's standard library and its purelib/platlib directories."""
    paths = sysconfig.get_paths()
    sites = sorted({Path(paths["purelib"]), Path(paths["platlib"])})
    return Path(paths["stdlib"]), [s for s in sites if s.is_dir()]


def discover(stdlib: Path | None, site_dirs: list[Path]) -> list[SourceFile]:
    """All admissible files, sorted by (package, path) so builds are deterministic."""
    files: list[SourceFile] = []
    if stdlib is not None:
        files += stdlib_files(stdlib)
    for site in site_dirs:
        files += site_files(site)
    return sorted(files, key=lambda s: (s.package, s.path))
