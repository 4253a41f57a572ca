"""Fine-tuning a causal LM on the corpus in the server's prompt format (LoRA or full), merging the
result into the base weights and exporting it to a model package. See ``docs/training.md``."""
