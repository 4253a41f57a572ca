"""User settings: typed, documented, camelCase on the wire, invalid values fall back with a warning."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, get_type_hints

_DEVICES = ("auto", "cpu", "cuda")
CONTEXT_MODES = ("off", "definitions", "retrieval", "all")
BACKENDS = ("local", "openai")


@dataclass
class Settings:
    """Settings accepted in ``initializationOptions`` and ``workspace/didChangeConfiguration``
    (under the ``codegenLsp`` section or at the top level)."""

    model_path: str | None = None
    """Model package directory or catalog name (``codegen-lsp models list``); default:
    ``$CODEGEN_LSP_MODEL`` or the catalog default in the per-user data dir."""
    variant: str | None = None
    """A variant of the package to use by name (e.g. ``cpu-int8``) instead of the provider's first."""
    device: str = "auto"
    """``auto`` (CUDA when it loads, else CPU), ``cpu`` or ``cuda``."""
    candidates: int = 3
    """How many bodies to sample per site (1..8); completions and inline items show the valid ones."""
    max_tokens: int = 160
    """Most tokens to generate for one body (8..1024)."""
    temperature: float = 0.2
    """0 = greedy for the first candidate only; others are always sampled at this temperature."""
    top_p: float = 0.95
    """Nucleus sampling mass (0 < top_p <= 1)."""
    time_budget_ms: int = 4000
    """Stop decoding after this long and offer what parses so far (100..60000)."""
    enable_completion: bool = True
    """Offer a "generate body" item in textDocument/completion."""
    enable_inline: bool = True
    """Answer textDocument/inlineCompletion with ghost-text bodies."""
    enable_code_actions: bool = True
    """Offer "Generate body" code actions on stubs."""
    log_level: str = "info"
    """Server log level: debug, info, warning, error."""
    prefix_cache_mb: int = 256
    """Most MiB of KV state the prefix cache keeps for re-requests while typing (0..8192; 0 = off)."""
    result_cache_mb: int = 64
    """Most MiB of document snapshots the per-version result cache may pin (1..4096)."""
    steps: int = 0
    """Refinement steps for iterative model kinds (diffusion): fewer is faster and rougher
    (docs/codefusion.md); 0 = the package's default (0..1000)."""
    workspace_context: str = "off"
    """Code from the rest of the workspace in the prompt: ``off``, ``definitions`` (of the names the
    function's signature, docstring and the file's imports mention), ``retrieval`` (the most similar
    definitions, BM25) or ``all`` (both, plus recently edited functions). Anything but ``off`` indexes
    the workspace folders in the background."""
    context_share: float = 0.3
    """Share of the prompt's token budget workspace context may take (0..0.8)."""
    context_items: int = 4
    """Most definitions retrieval adds (1..16)."""
    retriever_path: str | None = None
    """A ``retriever`` model package to combine with BM25 for workspace retrieval (``python -m
    models.retrieval export``); default: BM25 alone, which ranked better than either trained
    retriever alone (docs/retrieval.md)."""
    index_max_files: int = 20000
    """Most Python files the workspace index reads (100..1000000)."""
    index_max_file_kb: int = 512
    """Files larger than this are not indexed (1..65536)."""
    index_max_mb: int = 32
    """Most MiB of source the workspace index holds (1..4096)."""
    debounce_ms: int = 250
    """Longest an automatic inline request waits for typing to pause before generating; the wait
    adapts to the measured typing pace (1.5 typical gaps between edits, at least 30 ms). 0 = no wait;
    an explicitly invoked suggestion never waits (0..2000)."""
    backend: str = "local"
    """``local`` (the model package runs in the server) or ``openai``: an OpenAI-compatible
    completions server at ``endpoint`` writes the bodies (vLLM, llama.cpp's server; docs/team.md).
    Prompts, grammar checks, stops and ranking stay in the server either way."""
    endpoint: str | None = None
    """Base URL of the server for ``backend: openai``, e.g. ``http://gpu-box:8000/v1``; the only host
    the language server ever connects to. No credentials in the URL: see ``apiKeyEnv``."""
    api_key_env: str | None = None
    """Name of the environment variable holding the endpoint's API key (sent as a bearer token). The
    key itself is never put in settings, messages or logs."""
    remote_model: str | None = None
    """Model name to request from the endpoint; default: the first one it lists."""
    local_fallback: bool = True
    """With ``backend: openai``: when the endpoint cannot be reached, use the local model package
    (``modelPath``) if it is installed."""

    @property
    def engine_key(self) -> tuple[object, ...]:
        """The settings the loaded engine depends on: a change means loading again."""
        return (self.model_path, self.device, self.variant, self.prefix_cache_mb, self.steps,
                self.backend, self.endpoint, self.api_key_env, self.remote_model, self.local_fallback)

    def validated(self) -> tuple[Settings, list[str]]:
        """Return a copy with out-of-range values replaced by defaults, and one warning per fix."""
        d = Settings()
        out = dataclasses.replace(self)
        warnings: list[str] = []

        def fix(name: str, ok: bool) -> None:
            if not ok:
                warnings.append(f"setting {_camel(name)}={getattr(out, name)!r} is invalid; using {getattr(d, name)!r}")
                setattr(out, name, getattr(d, name))

        fix("device", out.device in _DEVICES)
        fix("candidates", 1 <= out.candidates <= 8)
        fix("max_tokens", 8 <= out.max_tokens <= 1024)
        fix("temperature", 0.0 <= out.temperature <= 2.0)
        fix("top_p", 0.0 < out.top_p <= 1.0)
        fix("time_budget_ms", 100 <= out.time_budget_ms <= 60000)
        fix("log_level", out.log_level.lower() in ("debug", "info", "warning", "error"))
        fix("prefix_cache_mb", 0 <= out.prefix_cache_mb <= 8192)
        fix("result_cache_mb", 1 <= out.result_cache_mb <= 4096)
        fix("steps", 0 <= out.steps <= 1000)
        fix("workspace_context", out.workspace_context in CONTEXT_MODES)
        fix("context_share", 0.0 <= out.context_share <= 0.8)
        fix("context_items", 1 <= out.context_items <= 16)
        fix("index_max_files", 100 <= out.index_max_files <= 1_000_000)
        fix("index_max_file_kb", 1 <= out.index_max_file_kb <= 65536)
        fix("index_max_mb", 1 <= out.index_max_mb <= 4096)
        fix("debounce_ms", 0 <= out.debounce_ms <= 2000)
        warnings += _validate_remote(out)
        return out, warnings


def _validate_remote(out: Settings) -> list[str]:
    """The remote backend's settings, fixed in place. Messages never echo ``endpoint`` or
    ``apiKeyEnv``: a user may have pasted a URL with a password, or the key itself, there."""
    from .remote.client import Endpoint, valid_env_name

    warnings: list[str] = []
    for name in ("endpoint", "api_key_env", "remote_model"):  # an editor's empty text field means unset
        if getattr(out, name) is not None and not getattr(out, name).strip():
            setattr(out, name, None)
    if out.backend not in BACKENDS:
        warnings.append(f"setting backend={out.backend!r} is invalid (use {' or '.join(BACKENDS)}); using 'local'")
        out.backend = "local"
    if out.endpoint is not None:
        try:
            Endpoint.parse(out.endpoint)
        except ValueError as exc:
            warnings.append(f"setting endpoint {exc}; ignored")
            out.endpoint = None
    if out.api_key_env is not None and not valid_env_name(out.api_key_env):
        warnings.append("setting apiKeyEnv must be the NAME of an environment variable (letters, digits, _), "
                        "not the key; ignored")
        out.api_key_env = None
    if out.backend == "openai" and out.endpoint is None:
        warnings.append("setting backend='openai' needs an endpoint (e.g. http://gpu-box:8000/v1); using 'local'")
        out.backend = "local"
    return warnings


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def parse_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Merge a client's settings object over ``base``. Unknown keys and wrong types produce warnings,
    never exceptions. Accepts ``{"codegenLsp": {...}}`` or the bare object."""
    settings = dataclasses.replace(base) if base else Settings()
    warnings: list[str] = []
    if raw is None:
        return settings.validated()
    if not isinstance(raw, dict):
        return settings, [f"settings must be an object, got {type(raw).__name__}; ignored"]
    if isinstance(raw.get("codegenLsp"), dict):
        raw = raw["codegenLsp"]
    hints = get_type_hints(Settings)
    for key, value in raw.items():
        name = _snake(key)
        if name not in hints:
            warnings.append(f"unknown setting {key!r} ignored")
            continue
        want = hints[name]
        coerced = _coerce(want, value)
        if coerced is _BAD:
            warnings.append(f"setting {key}={value!r} has the wrong type; keeping {getattr(settings, name)!r}")
            continue
        setattr(settings, name, coerced)
    fixed, more = settings.validated()
    return fixed, warnings + more


_BAD = object()


def _coerce(want: Any, value: Any) -> Any:
    if value is None:
        return None if "None" in str(want) else _BAD
    if want is bool or want == "bool":
        return value if isinstance(value, bool) else _BAD
    if want is int:
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return _BAD
    if want is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _BAD
        return float(value)
    # str and str | None
    return value if isinstance(value, str) else _BAD


SETTINGS_FIELDS = [f.name for f in dataclasses.fields(Settings)]
