"""Every registered architecture has a tiny random model, and specs read configs correctly."""

from __future__ import annotations

import pytest
from transformers import GPTNeoXConfig

from export.errors import UnsupportedArchitecture
from export.specs import SPECS, spec_for_config
from export.tiny import TINY_BUILDERS, build_tiny_model


def test_every_spec_has_a_tiny_model() -> None:
    missing = sorted(set(SPECS) - set(TINY_BUILDERS))
    assert not missing, f"architectures without a tiny random model in export/tiny.py: {missing}"


@pytest.mark.parametrize("arch", sorted(SPECS))
def test_tiny_model_matches_its_spec(arch: str) -> None:
    model, tok = build_tiny_model(arch)
    spec = spec_for_config(model.config)
    assert spec.name == arch and model.config.model_type in spec.model_types
    shape = spec.read_shape(model.config)
    assert shape.vocab_size == tok.get_vocab_size()
    assert shape.num_layers == 2 and shape.hidden_size == 64 and shape.context_length == 256
    assert shape.head_size * shape.num_heads == shape.hidden_size
    assert shape.num_heads % shape.num_kv_heads == 0


def test_kv_heads_and_head_size_fall_back() -> None:
    gpt2, _ = build_tiny_model("gpt2")  # multi-head attention, no num_key_value_heads / head_dim
    shape = SPECS["gpt2"].read_shape(gpt2.config)
    assert (shape.num_heads, shape.num_kv_heads, shape.head_size) == (4, 4, 16)
    llama, _ = build_tiny_model("llama")
    assert SPECS["llama"].read_shape(llama.config).num_kv_heads == 2


def test_dynamic_axes_cover_every_tensor() -> None:
    spec = SPECS["llama"]
    axes = spec.dynamic_axes(num_layers=2)
    assert set(axes) == set(spec.input_names(2)) | set(spec.output_names(2))
    assert axes["past_key_values.1.value"] == {0: "batch", 2: "past_sequence"}
    assert axes["present.0.key"] == {0: "batch", 2: "total_sequence"}


def test_unregistered_architecture_is_refused() -> None:
    with pytest.raises(UnsupportedArchitecture, match="gpt_neox"):
        spec_for_config(GPTNeoXConfig())
