"""Scoring a model package on held-out corpus pairs through the server's own path (prompt builder,
engine, incremental grammar check, ranking): BLEU, exact match, validity, token-limit hits, latency."""
