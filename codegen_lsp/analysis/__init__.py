"""Document analysis with tree-sitter: generation sites, prompts and grammar checks.

Shared by the CLI, the server and the tests; imports neither pygls nor lsprotocol.
"""

from .document import Document, Position
from .grammar import (
    BodyCheck,
    Candidate,
    IncrementalBodyCheck,
    body_edit,
    check_body,
    continuation_complete,
    normalize_continuation,
    rank_candidates,
    splice,
)
from .prompt import Prompt, build_prompt
from .sites import FunctionSite, SiteKind, find_sites, site_at

__all__ = [
    "BodyCheck",
    "Candidate",
    "Document",
    "FunctionSite",
    "IncrementalBodyCheck",
    "Position",
    "Prompt",
    "SiteKind",
    "body_edit",
    "build_prompt",
    "check_body",
    "continuation_complete",
    "find_sites",
    "normalize_continuation",
    "rank_candidates",
    "site_at",
    "splice",
]
