"""GGUF checkpoints -> plain Hugging Face checkpoints (fp32 safetensors + tokenizer.json).

transformers dequantizes a GGUF file on load (it needs ``accelerate`` for that), but refuses to
``save_pretrained`` the result, and its tokenizer conversion drops llama.cpp's digit splitting. This
module rebuilds a clean model from the config, fixes the tokenizer and checks it round-trips code.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import ExportError

# llama.cpp pre-tokenizer types that split every digit on its own before the byte-level regex
# (llama-vocab.cpp: STARCODER, SMOLLM, REFACT, ...). The original SmolLM2 tokenizer.json has the
# same Digits(individual_digits) step; transformers' GGUF converter leaves it out.
_DIGIT_SPLITTING_PRE = {"smollm", "starcoder", "refact", "codeshell"}

ROUND_TRIP_SAMPLES = (
    'def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n    return a + b\n',
    "class Stack:\n\tdef push(self, x):\n\t\tself._items.append(x)  # O(1)\n",
    "for i in range(10_000):\n        if i % 3 == 0 and i > 127:\n            print(f'{i:>8} {i/7:.3f}')\n",
    "x = [0x1F, 3.14e-10, -42, 'naïve', \"ünïcødé ✓\", b'\\x00']\r\n\n\n    \n",
    "    async def fetch(url):\n        '''GET url; raise on 4xx/5xx.'''\n        ...\n",
)


class TokenizerConversionError(ExportError):
    """The tokenizer converted from GGUF metadata does not reproduce text exactly."""


def gguf_metadata(path: Path) -> dict[str, Any]:
    """Scalar GGUF metadata (arrays such as the vocabulary are left out)."""
    from gguf import GGUFReader

    out: dict[str, Any] = {}
    for key, f in GGUFReader(str(path)).fields.items():
        if key.startswith("tokenizer.ggml.") and key.split(".")[-1] in {"tokens", "merges", "token_type", "scores"}:
            continue
        try:
            out[key] = f.contents()
        except Exception:  # noqa: BLE001 - exotic field types are not needed
            continue
    return out


def load_gguf(path: str | Path) -> tuple[Any, Path]:
    """Load a GGUF file as a dequantized fp32 transformers model plus a checked ``tokenizer.json``.

    The tokenizer file is written next to nothing: it lives in a fresh temporary directory that the
    caller owns (``dequantize_to_checkpoint`` moves it into the checkpoint)."""
    from transformers import AutoModelForCausalLM

    path = Path(path)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype="float32")
    model.eval()
    tok_dir = Path(tempfile.mkdtemp(prefix="gguf-tokenizer-"))
    tokenizer_json = _convert_tokenizer(path, tok_dir)
    return model, tokenizer_json


def _convert_tokenizer(path: Path, out_dir: Path) -> Path:
    from tokenizers import Tokenizer, pre_tokenizers
    from transformers import AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    hf_tok.save_pretrained(str(out_dir))
    tok_file = out_dir / "tokenizer.json"
    meta = gguf_metadata(path)
    tok = Tokenizer.from_file(str(tok_file))
    if meta.get("tokenizer.ggml.pre") in _DIGIT_SPLITTING_PRE:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
            ]
        )
        tok.save(str(tok_file))
    check_round_trip(tok_file)
    return tok_file


def check_round_trip(tokenizer_json: Path, samples: tuple[str, ...] = ROUND_TRIP_SAMPLES) -> None:
    """Encode then decode Python snippets (tabs, CRLF, unicode, digits); any difference is fatal."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    for text in samples:
        ids = tok.encode(text, add_special_tokens=False).ids
        back = tok.decode(ids, skip_special_tokens=False)
        if back != text:
            raise TokenizerConversionError(f"{tokenizer_json}: round trip changed {text!r} into {back!r}")
        if len(ids) > len(text.encode()):
            raise TokenizerConversionError(f"{tokenizer_json}: {len(ids)} tokens for {len(text)} chars")


def dequantize_to_checkpoint(gguf_path: str | Path, out_dir: str | Path, tie_embeddings: bool = False) -> Path:
    """Write a clean HF checkpoint (config.json, fp32 model.safetensors, tokenizer files) for a GGUF.

    ``tie_embeddings``: the GGUF's ``output.weight`` is only a re-quantized copy of ``token_embd``
    (Qwen2.5-Coder's 0.5B ties them upstream): drop it and tie the head to the embedding, so the
    builder can share one quantized table between the two (``shared_embeddings``)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    loaded, tokenizer_json = load_gguf(gguf_path)
    cfg_dict = loaded.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        cfg_dict.pop(key, None)
    model_type = cfg_dict.pop("model_type")
    config = AutoConfig.for_model(model_type, **cfg_dict)
    config.architectures = [type(loaded).__name__]
    config.dtype = torch.float32
    state = loaded.state_dict()
    if tie_embeddings:
        config.tie_word_embeddings = True
        state = {k: v for k, v in state.items() if k != "lm_head.weight"}
    with torch.device("meta"):
        clean = AutoModelForCausalLM.from_config(config)
    clean.load_state_dict(state, assign=True, strict=not tie_embeddings)
    clean.tie_weights()
    out_dir.mkdir(parents=True, exist_ok=True)
    clean.save_pretrained(str(out_dir), safe_serialization=True)
    for f in tokenizer_json.parent.iterdir():
        if f.name in {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}:
            shutil.copy2(f, out_dir / f.name)
    shutil.rmtree(tokenizer_json.parent, ignore_errors=True)
    meta = gguf_metadata(gguf_path)
    (out_dir / "gguf_metadata.json").write_text(json.dumps(meta, indent=1, default=str) + "\n")
    return out_dir
