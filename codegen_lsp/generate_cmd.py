"""`codegen-lsp generate`: fill every stubbed function in the given files with a checked body."""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .analysis.document import Document
from .analysis.grammar import body_edit
from .analysis.sites import FunctionSite, find_sites
from .config import Settings
from .generation import BodyGenerator, ModelUnavailable, SiteResult
from .modelpkg import ModelPackageError
from .workspace.context import Workspace
from .workspace.dense import attach_retriever
from .workspace.index import IndexLimits, WorkspaceIndex

log = logging.getLogger("codegen_lsp.generate")

_SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", ".mypy_cache", ".ruff_cache", ".tox"}


def iter_python_files(paths: list[str]) -> Iterator[tuple[Path, str | None]]:
    """Yield (file, error) for every .py file under the paths; error is set for unusable paths."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
                for name in sorted(files):
                    if name.endswith(".py"):
                        yield Path(root) / name, None
        elif p.is_file():
            yield p, None
        else:
            yield p, "no such file or directory"


def _read(path: Path) -> tuple[str | None, bytes, str | None]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, b"", f"cannot read: {exc.strerror or exc}"
    try:
        return data.decode("utf-8"), data, None
    except UnicodeDecodeError as exc:
        return None, data, f"not UTF-8 text (byte {exc.start}); skipped"


def _wanted(site: FunctionSite, names: list[str] | None) -> bool:
    return not names or site.name in names or site.qualname in names


def apply_bodies(doc: Document, bodies: list[tuple[FunctionSite, str]]) -> str:
    """New text with every body spliced in; edits applied bottom-up so positions stay valid."""
    work = Document.from_text(doc.text)
    edits = [body_edit(doc, site, body) for site, body in bodies]
    for (sl, sc), (el, ec), text in sorted(edits, key=lambda e: e[0], reverse=True):
        work.apply_change(sl, sc, el, ec, text)
    return work.text


def write_atomically(path: Path, original: bytes, new_text: str) -> bool:
    """Replace ``path`` only if it still holds ``original`` (an editor may have saved meanwhile)."""
    if path.read_bytes() != original:
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(new_text)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def _site_json(path: Path, res: SiteResult) -> dict[str, object]:
    site = res.site
    return {
        "file": str(path),
        "function": site.qualname,
        "line": site.header_start.line + 1,
        "body": res.candidates[0].body if res.candidates else None,
        "partial": bool(res.candidates and res.candidates[0].partial),
        "candidates": [{"body": c.body, "score": round(c.score, 4), "partial": c.partial} for c in res.candidates],
        "refused": res.refused,
        "context": res.context,
        "unfilled": res.unfilled_reason,
        "raw": [{"text": t, "score": round(s, 4), "finish": f} for t, s, f in res.raw],
        "timings": {
            "seconds": round(res.seconds, 4),
            "first_token_s": round(res.first_token_s, 4),
            "prompt_tokens": res.prompt_tokens,
            "cached_prompt_tokens": res.cached_prompt_tokens,
        },
    }


def workspace_root(paths: list[str]) -> Path:
    """The git root above the first path, else the path's folder."""
    first = Path(paths[0]).resolve()
    start = first if first.is_dir() else first.parent
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def _index_workspace(args: argparse.Namespace, settings: Settings) -> Workspace:
    root = Path(args.workspace) if args.workspace else workspace_root(args.paths)
    index = WorkspaceIndex(root, IndexLimits(settings.index_max_files, settings.index_max_file_kb << 10,
                                             settings.index_max_mb << 20))
    stats = index.build()
    log.info("indexed %s: %d files, %d definitions in %.1f s", root, stats.files, stats.symbols, stats.seconds)
    ws = Workspace([index])
    if args.retriever:
        ws.searchers[index.root] = attach_retriever(index, args.retriever)
    return ws


def run_generate(args: argparse.Namespace) -> int:
    out = sys.stdout
    failures = unfilled = total = 0
    settings = Settings(
        model_path=args.model, device=args.device, candidates=max(1, args.candidates),
        max_tokens=args.max_tokens, temperature=args.temperature,
        time_budget_ms=int(min(max(args.time_budget, 0.1), 60.0) * 1000),
        workspace_context=args.workspace_context, steps=max(0, args.steps),
        backend=args.backend, endpoint=args.endpoint, api_key_env=args.api_key_env, remote_model=args.remote_model,
    )
    if args.backend == "openai" or args.endpoint:
        settings, problems = settings.validated()
        if problems:
            problem = problems[0].rsplit("; ", 1)[0]  # the CLI stops instead of ignoring or falling back
            for setting, flag in (("setting apiKeyEnv", "--api-key-env"), ("in apiKeyEnv", "in --api-key-env"),
                                  ("setting ", "--")):
                problem = problem.replace(setting, flag)
            log.error("%s", problem)
            return 1
    if args.context_share is not None:
        settings.context_share = args.context_share
    if args.context_items is not None:
        settings.context_items = args.context_items
    settings, warnings = settings.validated()
    for warning in warnings:
        log.warning("%s", warning.replace("setting ", "option ", 1))
    generator = None if args.dry_run else BodyGenerator(settings)
    if generator is not None:
        try:
            generator.ensure_engine()
        except ModelUnavailable as exc:
            log.error("%s", exc)
            return 1
        if args.workspace_context != "off":
            try:
                generator.workspace = _index_workspace(args, settings)
            except ModelPackageError as exc:  # --retriever names no usable package
                log.error("%s", exc)
                return 1
    for path, err in iter_python_files(args.paths):
        if err:
            log.error("%s: %s", path, err)
            failures += 1
            continue
        text, original, err = _read(path)
        if text is None:
            log.error("%s: %s", path, err)
            failures += 1
            continue
        doc = Document.from_text(text)
        sites = [s for s in find_sites(doc) if _wanted(s, args.function)]
        if args.dry_run:
            for s in sites:
                out.write(f"{path}:{s.header_start.line + 1}: {s.qualname} ({s.kind})\n")
            continue
        assert generator is not None
        chosen: list[tuple[FunctionSite, str]] = []
        for site in sites:
            try:
                res = generator.bodies(doc, site, path=path)
            except Exception as exc:  # noqa: BLE001 - e.g. ONNX Runtime out of memory: report, go on
                log.error("%s:%d: %s: generation failed: %s: %s", path, site.header_start.line + 1, site.qualname,
                          type(exc).__name__, (str(exc).splitlines() or [""])[0][:300])
                failures += 1
                continue
            if args.json:
                out.write(json.dumps(_site_json(path, res)) + "\n")
            if res.candidates and res.candidates[0].partial and not args.allow_partial:
                unfilled += 1
                log.warning("%s:%d: %s: only a partial body (decoding stopped by --time-budget or --max-tokens); "
                            "left as it was (--allow-partial writes it)", path, site.header_start.line + 1,
                            site.qualname)
            elif res.candidates:
                chosen.append((site, res.candidates[0].body))
            else:
                unfilled += 1
                log.warning("%s:%d: %s", path, site.header_start.line + 1, res.unfilled_reason)
            total += 1
        if not chosen or args.json:
            continue
        new_text = apply_bodies(doc, chosen)
        if args.write:
            if write_atomically(path, original, new_text):
                log.info("%s: wrote %d bodies", path, len(chosen))
            else:
                log.error("%s: changed on disk while generating; not written", path)
                failures += 1
        else:
            out.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True), new_text.splitlines(keepends=True),
                    fromfile=f"{path} (original)", tofile=f"{path} (generated)",
                )
            )
    out.flush()
    if unfilled:
        log.warning("%d of %d functions got no valid body and were left as they were (reasons above)", unfilled, total)
    return 1 if failures else 0
