"""Code retrieval: docstring query -> code, NBoW and bi-GRU dual encoders (CodeSearchNet baselines)."""
