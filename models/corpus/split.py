"""Deterministic train/valid/test assignment by package: a package never spans two splits."""

from __future__ import annotations

import hashlib
from typing import Literal

Split = Literal["train", "valid", "test"]
SPLITS: tuple[Split, ...] = ("train", "valid", "test")
TRAIN_PERCENT = 80
VALID_PERCENT = 10


def split_of(package: str) -> Split:
    """80/10/10 by a stable hash of the package name (not Python's salted ``hash``)."""
    bucket = int.from_bytes(hashlib.sha256(package.encode("utf-8")).digest()[:8], "big") % 100
    if bucket < TRAIN_PERCENT:
        return "train"
    if bucket < TRAIN_PERCENT + VALID_PERCENT:
        return "valid"
    return "test"
