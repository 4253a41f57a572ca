"""A byte-level BPE trained on the corpus with ``tokenizers``: a few thousand entries, so that the
embedding L and the head H stay a small part of a small model (a 32k or 49k vocabulary from a
pretrained code model would be most of the cpu config's parameters). Byte-level means every text
round-trips exactly, indentation and newlines included; the GPT-2 pre-tokenizer keeps runs of
spaces together so BPE learns indentation tokens.

Ids 0..2 are special: ``<pad>`` (fills the fixed-length target after the body; the engine cuts at
the first one, so it is also the eos), ``<mask>`` (CPD pre-training: masked identifiers and
keywords in E's input), ``<unk>`` (never produced by byte-level BPE; kept for completeness).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PAD, MASK, UNK = "<pad>", "<mask>", "<unk>"
PAD_ID, MASK_ID, UNK_ID = 0, 1, 2
SPECIALS = [PAD, MASK, UNK]
_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    assert [tok.token_to_id(s) for s in SPECIALS] == [PAD_ID, MASK_ID, UNK_ID]
    return tok


def load(path: Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))


def encode(tok: Tokenizer, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False).ids


def decode(tok: Tokenizer, ids: Iterable[int]) -> str:
    return tok.decode([i for i in ids if i >= len(SPECIALS)], skip_special_tokens=False)


def word_token_ids(tok: Tokenizer) -> list[int]:
    """Ids whose text is (part of) an identifier or keyword: CPD masks these in E's input."""
    out = []
    for token, i in tok.get_vocab().items():
        text = token.lstrip("\u0120")  # byte-level marker of a leading space
        if i >= len(SPECIALS) and _WORD.match(text):
            out.append(i)
    return sorted(out)
