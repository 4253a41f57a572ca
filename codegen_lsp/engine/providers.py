"""Choosing the execution provider (auto | cpu | cuda) without ever writing to stdout.

stdout carries the LSP stream, but ``onnxruntime.preload_dlls()`` prints "Failed to load ..." lines
there on machines without CUDA libraries, and those prints come from both C and Python. The probe
therefore points file descriptor 1 at stderr for its duration (:func:`stdout_to_stderr`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import onnxruntime as ort

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
_DRIVER_LIB = "nvcuda.dll" if os.name == "nt" else "libcuda.so.1"
_CUDA_PROVIDER_LIB = "onnxruntime_providers_cuda.dll" if os.name == "nt" else "libonnxruntime_providers_cuda.so"


@dataclass(frozen=True)
class ProviderChoice:
    """The provider the engine will use and why."""

    provider: Literal["cpu", "cuda"]
    reason: str

    @property
    def ort_providers(self) -> list[str]:
        if self.provider == "cuda":
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to fd 1 (by Python or native code) to fd 2 until the block ends.

    Process-wide: do not run it while another thread writes protocol messages to stdout (the
    engine probes once, at load time, before it is handed to the server).
    """
    try:
        sys.stdout.flush()
    except (AttributeError, ValueError, OSError):
        pass
    try:
        saved = os.dup(1)
    except OSError:  # no fd 1 at all (e.g. pythonw): nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _load_error(lib: str) -> str | None:
    try:
        ctypes.CDLL(lib)
    except OSError as exc:
        return str(exc)
    return None


def probe_cuda() -> str | None:
    """None when CUDA should work in this process, else why not (one line, for the log).

    The driver is checked first, with a plain ``dlopen``: on a machine without one nothing tries
    to load the CUDA provider or its libraries, so their loaders print nothing at all.
    """
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"this onnxruntime build ({ort.__version__}) has no CUDA provider"
    err = _load_error(_DRIVER_LIB)
    if err is not None:
        return f"no NVIDIA driver ({err.split(':')[0]} not found)"
    with stdout_to_stderr():
        preload = getattr(ort, "preload_dlls", None)
        if preload is not None:
            try:
                preload()  # loads pip-installed nvidia-* libraries; prints failures to stdout
            except Exception as exc:  # noqa: BLE001 - any failure just means "no CUDA"
                log.debug("onnxruntime.preload_dlls failed: %s", exc)
        # Loading the provider library resolves every CUDA/cuDNN library it links against, and its
        # error names the first missing one: a clearer reason than the session's fallback log.
        provider_lib = Path(ort.__file__).parent / "capi" / _CUDA_PROVIDER_LIB
        if provider_lib.is_file():
            err = _load_error(str(provider_lib))
            if err is not None:
                return f"CUDA libraries missing ({err})"
    return None


def choose_provider(device: str, has_cuda_variant: bool = True) -> ProviderChoice:
    """Resolve ``auto | cpu | cuda`` to a provider.

    ``cuda`` requested but unusable falls back to CPU with a warning rather than failing: the
    server stays useful and ``Engine.info['reason']`` says why (mirrors how settings fall back).
    """
    if device not in ("auto", "cpu", "cuda"):
        log.warning("unknown device %r, using auto", device)
        device = "auto"
    if device == "cpu":
        return ProviderChoice("cpu", "cpu requested")
    if not has_cuda_variant:  # nothing to run on CUDA: do not even probe for it
        why_not: str | None = "the model package has no cuda variant"
    else:
        why_not = probe_cuda()
    if why_not is None:
        return ProviderChoice("cuda", f"{device}: CUDA available")
    if device == "cuda":
        log.warning("cuda requested but unavailable: %s; falling back to CPU", why_not)
        return ProviderChoice("cpu", f"cuda requested but unavailable: {why_not}; using CPU")
    return ProviderChoice("cpu", f"auto: {why_not}; using CPU")


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads share a core's matmul units)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:
        allowed = os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    try:
        phys = core = ""
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "physical id":
                phys = value.strip()
            elif key == "core id":
                core = value.strip()
                cores.add((phys, core))
    except OSError:
        pass
    n = len(cores) if cores else allowed
    return max(1, min(n, allowed))
