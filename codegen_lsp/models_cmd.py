"""`codegen-lsp models list | install NAME | verify [NAME]`: the model catalog from the command line.

``list`` and ``verify`` need only the runtime (package files and hashes); ``install`` builds with the
exporter (``python -m export models install NAME``), which needs the ``export`` extra (torch).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from typing import TextIO

from .modelpkg import ModelPackageError, load_package
from .modelpkg.catalog import CATALOG, catalog_entry, installed_dir


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    m = sub.add_parser("models", help="list, install or verify catalog models")
    msub = m.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="catalog entries, whether installed, and where")
    i = msub.add_parser("install", help="download the pinned sources and build a catalog entry")
    i.add_argument("name")
    i.add_argument("--force", action="store_true", help="rebuild even if an up-to-date package exists")
    v = msub.add_parser("verify", help="check installed packages' files and hashes (all, or NAME)")
    v.add_argument("name", nargs="?")


def status(name: str) -> str:
    """``ok``, ``not installed`` or what is wrong, for one catalog entry."""
    path = installed_dir(name)
    if not path.exists():
        return "not installed"
    try:
        load_package(path, verify_hashes=True)
    except ModelPackageError as exc:
        return f"broken: {exc}"
    return "ok"


def run_models(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    if args.models_command == "list":
        for e in CATALOG:
            installed = installed_dir(e.name).is_dir()
            mark = "*" if e.default else " "
            out.write(f"{mark} {e.name:30} {'installed' if installed else 'available':9}  ~{e.download_mib} MiB  "
                      f"{e.license}  {e.summary}\n")
        out.write("(* the default; `modelPath` and --model accept these names)\n")
        return 0
    name = getattr(args, "name", None)
    if name is not None and catalog_entry(name) is None:
        sys.stderr.write(f"error: no catalog entry '{name}'; `codegen-lsp models list` shows them\n")
        return 2
    if args.models_command == "install":
        if importlib.util.find_spec("torch") is None or importlib.util.find_spec("export") is None:
            sys.stderr.write("error: building a model needs the exporter: install codegen-lsp[export] "
                             "(torch==2.13.0 first) in a source checkout, or run `make model`\n")
            return 1
        cmd = [sys.executable, "-m", "export", "models", "install", str(name), *(["--force"] if args.force else [])]
        return subprocess.run(cmd).returncode
    names = [name] if name else [e.name for e in CATALOG if installed_dir(e.name).exists()]
    bad = 0
    for n in names:
        verdict = status(n)
        bad += verdict != "ok"
        out.write(f"{n}: {verdict} ({installed_dir(n)})\n")
    if not names:
        out.write("no catalog model is installed (`codegen-lsp models install NAME`)\n")
    return 1 if bad else 0
