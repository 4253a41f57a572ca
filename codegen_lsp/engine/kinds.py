"""Model kinds as plug-ins: the interface every engine offers, and the registry keyed by the
manifest's ``kind``.

Adding a kind means one engine module (a class with the :class:`BodyModel` interface and the
constructor ``(package, choice, options)``), one spec in the exporter, and one line in ``KINDS``
below (``docs/model-package.md``, "Adding a model kind"). The registry names modules, so loading a
package imports only its own kind's engine.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Protocol

from ..modelpkg import Manifest, ManifestInvalid, ModelPackage, UnknownKind, load_package
from .config import CancelLike, GenerationConfig, OnLine
from .prefix_cache import DEFAULT_MAX_BYTES
from .providers import ProviderChoice, choose_provider
from .results import GenerationResult


@dataclass
class EngineOptions:
    """How to run a package, whatever its kind (an engine ignores what does not apply to it)."""

    threads: int | None = None
    """Intra-op threads (default: physical cores)."""
    variant: str | None = None
    """A variant name to use instead of the provider's default."""
    prefix_cache_entries: int = 4
    prefix_cache_bytes: int = DEFAULT_MAX_BYTES
    steps: int | None = None
    """Refinement steps for iterative kinds (diffusion): fewer is faster and rougher. None: the
    package's default."""


class BodyModel(Protocol):
    """What ``BodyGenerator``, the CLI, the benchmarks and the evaluation need from an engine."""

    manifest: Manifest
    info: dict[str, Any]
    """``model``, ``provider`` (cpu|cuda), ``reason``, ``variant``, ``graph``, ``context_length``,
    ``threads``, plus kind-specific entries."""

    def generate(
        self,
        prompt: str,
        config: GenerationConfig | None = None,
        on_line: OnLine | None = None,
        cancel: CancelLike | None = None,
    ) -> GenerationResult:
        """Continue ``prompt`` with ``config.num_candidates`` candidates (the first greedy).
        ``on_line(i, text)`` is called as candidate ``i``'s text gains a line; False ends it there.
        ``cancel.is_set()`` raises :class:`~.results.Cancelled` (with the partial result);
        ``config.time_budget_s`` ends active candidates with ``time``; ``run_waiting(cancel)`` is
        called between steps. Safe to call again from inside ``run_waiting`` on the same thread."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in a prompt (for prompt budgets)."""
        ...

    def encode(self, text: str) -> list[int]:
        """Prompt ids as ``generate`` would feed them."""
        ...

    def prompt_budget(self, time_budget_s: float | None, share: float = 0.4) -> int | None:
        """Most prompt tokens this engine reads within ``share`` of a time budget; None = no limit known."""
        ...

    def clear_caches(self) -> None:
        """Forget cached prompt state (benchmarks measure cold requests)."""
        ...


KINDS: dict[str, str] = {
    "causal-lm": "codegen_lsp.engine.generate:Engine",
    "char-rnn": "codegen_lsp.engine.char_rnn:CharRNNEngine",
    "diffusion": "codegen_lsp.engine.diffusion:DiffusionEngine",
    "retriever": "codegen_lsp.engine.retriever:RetrieverEngine",
    "tree-decoder": "codegen_lsp.engine.treedec:TreeDecoderEngine",
}
"""Manifest ``kind`` -> ``module:class`` of its engine. A class's ``role`` (default ``generator``)
says what it is for: ``load_engine`` takes generators, ``load_retriever`` retrievers."""


def engine_class(package: ModelPackage) -> Any:
    """The engine class for the package's kind; :class:`UnknownKind` for a kind this runtime lacks."""
    kind = package.manifest.kind
    target = KINDS.get(kind)
    if target is None:
        raise UnknownKind(package.root, f"kind '{kind}' has no engine in this runtime (have: {', '.join(KINDS)}); "
                          "upgrade codegen-lsp or re-export the model")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def load_engine(
    model_dir: str | os.PathLike[str],
    device: str = "auto",
    threads: int | None = None,
    prefix_cache_entries: int = 4,
    variant: str | None = None,
    prefix_cache_bytes: int = DEFAULT_MAX_BYTES,
    steps: int | None = None,
) -> BodyModel:
    """Load the package at ``model_dir`` on ``auto | cpu | cuda`` (see :func:`choose_provider`) with
    the engine its kind names. ``variant``: a variant name to use instead of the provider's default
    (the first listed for it); its provider wins."""
    package = load_package(model_dir)
    cls = engine_class(package)  # before any provider probe or session
    if getattr(cls, "role", "generator") != "generator":
        raise ManifestInvalid(package.root, f"kind '{package.manifest.kind}' is a {cls.role}, not a model that "
                              "writes bodies (point codegenLsp.modelPath at a generator package)")
    has_cuda = package.manifest.variant_for("cuda") is not None
    choice = choose_provider(device, has_cuda_variant=has_cuda)
    if variant is not None:
        named = [v for v in package.manifest.variants if v.name == variant]
        if named and named[0].provider != choice.provider:
            choice = ProviderChoice(named[0].provider, f"variant '{variant}' requested; {choice.reason}")
    options = EngineOptions(threads=threads, variant=variant, prefix_cache_entries=prefix_cache_entries,
                            prefix_cache_bytes=prefix_cache_bytes, steps=steps)
    engine: BodyModel = cls(package, choice, options)
    return engine


def load_retriever(model_dir: str | os.PathLike[str], threads: int | None = 1) -> Any:
    """Load a package whose kind's engine has ``role = "retriever"`` (code search: texts in, vectors
    out), on the CPU; ManifestInvalid for a package of another role."""
    package = load_package(model_dir)
    cls = engine_class(package)
    if getattr(cls, "role", "generator") != "retriever":
        raise ManifestInvalid(package.root, f"kind '{package.manifest.kind}' is not a retriever")
    return cls(package, ProviderChoice("cpu", "retrievers run on the CPU"), EngineOptions(threads=threads))
