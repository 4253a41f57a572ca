"""The retrievers' tokenizer: identifiers and words split on snake_case and camelCase, lower-cased,
punctuation dropped, then a BPE trained on the corpus's docstrings and code (``tokenizers``).

Why not reuse a tokenizer: the generator's byte-level BPE (``models/codefusion/tokenizer.py``) keeps
``read_config`` / ``readConfig`` / `` Read`` as unrelated tokens and spends a third of a code
sequence on punctuation and indentation. A bag of words needs the parts of identifiers to meet the
words of a docstring (CodeSearchNet split identifiers the same way), so the splitting is done by the
normalizer, which lives in ``tokenizer.json``: the runtime reads the same rules from the package.

Ids: 0 ``<pad>``, 1 ``<unk>`` (a character the BPE never saw; the normalizer leaves only a-z 0-9).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1

_CAMEL = r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])"
"""Zero-width points between camelCase parts: getHTTPResponse -> get HTTP Response."""


def normalizer() -> normalizers.Normalizer:
    return normalizers.Sequence([
        normalizers.Replace(Regex(_CAMEL), " "),
        normalizers.Replace(Regex(r"[^A-Za-z0-9]+"), " "),  # underscores too: snake_case splits
        normalizers.Lowercase(),
    ])


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = normalizer()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, UNK], min_frequency=2,
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    assert [tok.token_to_id(s) for s in (PAD, UNK)] == [PAD_ID, UNK_ID]
    return tok


def load(path: Path) -> Tokenizer:
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.no_truncation()
    return tok


def encode_batch(tok: Tokenizer, texts: list[str], max_len: int) -> list[list[int]]:
    return [e.ids[:max_len] for e in tok.encode_batch(texts, add_special_tokens=False)]
