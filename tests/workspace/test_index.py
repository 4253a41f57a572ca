"""The workspace index and the prompt context it gives: what it reads and skips, incremental updates,
the persisted cache, and which definitions reach a site's prompt within the budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from codegen_lsp.analysis.document import Document
from codegen_lsp.analysis.sites import find_sites
from codegen_lsp.workspace.context import Workspace, gather, render
from codegen_lsp.workspace.index import IndexLimits, WorkspaceIndex
from export.scripted import Rule, build_scripted_package

MONEY = '''class Money:
    """An amount in cents and a currency code."""

    def __init__(self, cents: int, currency: str) -> None:
        self.cents = cents
        self.currency = currency

    def add(self, other: "Money") -> "Money":
        """Sum of two amounts in the same currency."""
        return Money(self.cents + other.cents, self.currency)


def parse_amount(text: str) -> int:
    """Parse a decimal amount like '12.50' into cents."""
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])
'''

HEADER = 'def total_price(items: list[Money], currency: str) -> Money:\n    """Sum the prices of items."""'
MAIN = "from shop.money import Money, parse_amount\n\n\n" + HEADER + "\n    pass\n"


def _workspace(root: Path) -> Path:
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "money.py").write_text(MONEY)
    (root / "shop" / "main.py").write_text(MAIN)
    for skipped in (".venv/lib", "env/lib", "node_modules/x", "build", "generated"):
        (root / skipped).mkdir(parents=True)
        (root / skipped / "hidden.py").write_text("def hidden_helper():\n    pass\n")
    (root / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")  # a virtualenv by any name
    (root / ".gitignore").write_text("# comment\ngenerated/\n*.tmp.py\n")
    (root / "scratch.tmp.py").write_text("def scratch():\n    pass\n")
    (root / "big.py").write_text("def big():\n    return 1\n" + "# filler\n" * 2000)
    return root


def test_reads_the_project_and_skips_environments_build_dirs_ignored_and_large_files(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws")
    index = WorkspaceIndex(root, IndexLimits(max_file_bytes=4096), cache_dir=tmp_path / "cache")
    stats = index.build()
    assert sorted(f.relative_to(root).as_posix() for f in index.walk()) == ["big.py", "shop/main.py", "shop/money.py"]
    assert stats.files == 2 and stats.skipped_files == 1  # big.py is over the size limit
    assert [s.key for s in index.named("Money")] == ["shop/money.py::Money"]
    assert [s.kind for s in index.named("add")] == ["method"] and index.named("hidden_helper") == []
    assert index.search("parse a decimal amount into cents", 1)[0][0].qualname == "parse_amount"


def test_a_restart_reuses_the_persisted_index_and_updates_are_incremental(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws")
    first = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    assert first.build().parsed_files == 3
    again = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    stats = again.build()
    assert stats.parsed_files == 0 and stats.symbols == first.stats.symbols
    again.update(root / "shop" / "money.py", (MONEY + "\n\ndef to_euros(cents: int) -> float:\n    return cents / 100\n").encode())
    assert [s.qualname for s in again.named("to_euros")] == ["to_euros"]
    assert again.recent == ["shop/money.py::to_euros"]  # new or changed definitions, newest last
    again.remove(root / "shop" / "money.py")
    assert again.named("Money") == [] and again.search("parse amount cents", 3) == []


def test_context_brings_the_definitions_a_site_mentions_within_the_budget(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws")
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    index.build()
    doc = Document.from_text(MAIN)
    site = find_sites(doc)[0]
    pieces = gather(index, doc, site, "shop/main.py", "definitions")
    assert [p.label for p in pieces] == ["definition:shop/money.py::Money", "definition:shop/money.py::parse_amount"]
    assert gather(index, doc, site, "shop/main.py", "off") == []

    def count(text: str) -> int:
        return len(text.split())

    text, labels = render(pieces, count, budget=1000, current_path="shop/main.py")
    assert labels == ["definition:shop/money.py::parse_amount", "definition:shop/money.py::Money"]  # most relevant last
    assert text.startswith("# file: shop/money.py\n") and text.endswith("# file: shop/main.py\n")
    assert "class Money:" in text and "return Money(" in text
    assert text.count("# file: shop/money.py\n") == 1  # pieces of one file share its header
    sep, _ = render(pieces, count, budget=1000, current_path="shop/main.py", file_sep="<|file_sep|>")
    assert sep.startswith("<|file_sep|>shop/money.py\n") and sep.endswith("<|file_sep|>shop/main.py\n")
    assert "# file:" not in sep and sep.count("<|file_sep|>") == 2
    small, kept = render(pieces, count, budget=40, current_path="shop/main.py")
    assert count(small) <= 40 and kept and "return Money(" not in small  # shortened to its header
    ws = Workspace([index])
    assert ws.index_for(root / "shop" / "main.py") == (index, "shop/main.py")


def test_generate_json_says_what_went_into_the_prompt(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws")
    (root / ".git").mkdir()  # the workspace root the CLI finds by itself
    pkg = build_scripted_package(tmp_path / "pkg", [Rule("# file: shop/main.py\n" + MAIN[:MAIN.index("\n    pass")],
                                                          ["\n    return items[0]"])])
    out = subprocess.run([sys.executable, "-m", "codegen_lsp", "generate", str(root / "shop" / "main.py"), "--json",
                          "--model", str(pkg), "--workspace-context", "definitions"],
                         capture_output=True, text=True, timeout=300, env={"XDG_CACHE_HOME": str(tmp_path / "cache"),
                                                                          "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    site = json.loads(out.stdout.splitlines()[0])
    assert site["context"] == ["definition:shop/money.py::parse_amount", "definition:shop/money.py::Money"]
    assert site["body"] == "    return items[0]"


def test_generate_context_share_and_items_options_bound_the_context(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws")
    (root / ".git").mkdir()
    pkg = build_scripted_package(tmp_path / "pkg", [Rule("# file: shop/main.py\n" + MAIN[:MAIN.index("\n    pass")],
                                                          ["\n    return items[0]"])])

    def contexts(*extra: str) -> tuple[list[str], str]:
        out = subprocess.run([sys.executable, "-m", "codegen_lsp", "generate", str(root / "shop" / "main.py"),
                              "--json", "--model", str(pkg), "--workspace-context", "definitions", *extra],
                             capture_output=True, text=True, timeout=300,
                             env={"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
        return json.loads(out.stdout.splitlines()[0])["context"], out.stderr

    assert contexts("--context-share", "0")[0] == []  # no share of the budget: nothing from the workspace
    full, _ = contexts("--context-share", "0.8")
    assert len(full) == 2
    fixed, err = contexts("--context-share", "3")  # out of range: the default, with one line saying so
    assert fixed == full and "contextShare=3.0 is invalid" in err
