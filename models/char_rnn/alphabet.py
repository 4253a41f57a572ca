"""The character vocabulary: id 0 is the unknown character, id 1 ends a function, then the characters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

UNK = "<|unk|>"
EOS = "<|endoftext|>"
UNK_ID = 0
EOS_ID = 1


@dataclass
class Alphabet:
    """``symbols[i]`` is the text of id ``i``; the two specials are multi-character markers."""

    symbols: list[str]
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.symbols[:2] != [UNK, EOS]:
            raise ValueError("alphabet must start with the unknown and end-of-text markers")
        self._index = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def from_texts(cls, texts: Iterable[str], min_count: int = 5, max_size: int = 254) -> Alphabet:
        """Characters seen at least ``min_count`` times (the most frequent ``max_size``), in code point
        order so the same corpus always yields the same ids."""
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(t)
        chars = [c for c, n in counts.most_common(max_size) if n >= min_count]
        return cls([UNK, EOS, *sorted(chars)])

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> list[int]:
        get = self._index.get
        return [get(c, UNK_ID) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        """Specials decode to nothing: an unknown character cannot be recovered."""
        return "".join(self.symbols[i] for i in ids if i > EOS_ID)

    def write_tokenizer(self, path: Path) -> None:
        """A Hugging Face ``tokenizers`` JSON that maps text to exactly the ids of ``encode``: a BPE model
        with single-character vocabulary and no merges (so every character is its own token), the
        unknown marker for unseen characters, and a Fuse decoder that joins tokens without spaces."""
        from tokenizers import AddedToken, Tokenizer, decoders, models

        tok = Tokenizer(models.BPE(vocab=dict(self._index), merges=[], unk_token=UNK))
        tok.add_special_tokens([AddedToken(UNK, special=True), AddedToken(EOS, special=True)])
        tok.decoder = decoders.Fuse()
        tok.save(str(path))
