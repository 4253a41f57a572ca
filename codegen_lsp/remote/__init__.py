"""The ``openai`` backend: bodies written by a shared OpenAI-compatible completions server (vLLM,
llama.cpp's server, ...) instead of a model in this process. Prompt building, per-line grammar checks
and stops, ranking and cancellation stay here; the server only continues text (docs/team.md).

``client`` is the stdlib HTTP/SSE side, ``engine`` the :class:`~codegen_lsp.engine.kinds.BodyModel`
built on it. Nothing is imported here so that reading settings never loads the engine."""
