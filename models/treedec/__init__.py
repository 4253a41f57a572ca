"""Tree-structured decoding (issue 16): Python grammar actions, pre-order / BFS decoders, mutual learning."""
