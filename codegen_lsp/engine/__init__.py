"""The inference engine: ONNX Runtime sessions, providers, KV cache, sampling, stop rules,
cancellation and a prefix cache. numpy + onnxruntime + tokenizers only; no LSP types."""

from .config import CancelToken, GenerationConfig, OnLine
from .generate import Engine, release_heap
from .kinds import KINDS, BodyModel, EngineOptions, load_engine
from .providers import ProviderChoice, choose_provider
from .results import Cancelled, FinishReason, Generation, GenerationResult

__all__ = [
    "KINDS", "BodyModel", "CancelToken", "EngineOptions", "Cancelled", "Engine", "FinishReason", "Generation", "GenerationConfig",
    "GenerationResult", "OnLine", "ProviderChoice", "choose_provider", "load_engine", "release_heap",
]
