"""Export failures, one type per way an exported graph can disagree with PyTorch."""

from __future__ import annotations


class ExportError(Exception):
    """Base class for everything the exporter reports as a failed export."""


class UnsupportedArchitecture(ExportError):
    """The checkpoint's architecture has no registered spec."""


class ValidationError(ExportError):
    """Base class: the exported graph does not reproduce the PyTorch model."""


class OutputNameMismatch(ValidationError):
    """The graph's output names differ from the spec's."""


class OutputShapeMismatch(ValidationError):
    """An output has a different shape from PyTorch's."""


class LogitsMismatch(ValidationError):
    """Logits differ from PyTorch's by more than the tolerance (prefill or a cached decode step)."""


class GreedyMismatch(ValidationError):
    """Greedy decoding through ONNX Runtime picked a different token from PyTorch's."""


class InputNameMismatch(ValidationError):
    """The graph's input names differ from the spec's."""


class ProviderUnavailable(ExportError):
    """A variant's execution provider cannot run here (a cuda variant is then validated on cpu)."""
