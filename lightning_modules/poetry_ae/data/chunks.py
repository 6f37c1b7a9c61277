"""Words of a poem, and the fixed-length chunks the autoencoders read (the note's "chunked sequences").

Tokens are lowercase words: runs of letters (any script) with inner apostrophes kept, so "don't"
and "o'er" stay one word while quotes around a word ("'tis" -> "tis", "lovers'" -> "lovers") and
all punctuation, digits and hyphens (which split words) are dropped. Curly apostrophes count as
apostrophes. The vector tables keep only entries that are such words (`is_word`), so every
nearest-neighbour word could have come from a poem.

A poem becomes windows of `max_len` tokens, each starting `max_len - overlap` tokens after the
previous one. The tokens after the last full window (the remainder) become one more, shorter chunk
that starts where the next window would (so it shares `overlap` tokens with the one before), when
there are at least `min_len` of them; otherwise they are dropped. A poem of at most `max_len`
tokens is one chunk (dropped when shorter than `min_len`). "Data preservation" is the fraction of
all poem tokens that are in at least one chunk.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ChunkConfig", "tokenize", "is_word", "chunk_poem", "chunk_tokens"]

_LETTERS = r"[^\W\d_]+"
_WORD = re.compile(rf"{_LETTERS}(?:'{_LETTERS})*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def tokenize(text: str) -> list[str]:
    """Lowercase words of `text`: letters with inner apostrophes; punctuation, digits and hyphens dropped.

    Example:
        >>> tokenize("O'er the hills, my love's Light-o'-love -- 1931!")
        ["o'er", 'the', 'hills', 'my', "love's", 'light', 'o', 'love']
    """
    return _WORD.findall(text.translate(_APOSTROPHES).lower())


def is_word(token: str) -> bool:
    """Whether `tokenize` can produce `token` (a vocabulary entry worth keeping)."""
    return _WORD.fullmatch(token) is not None and token == token.lower()


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ChunkConfig:
    """How poems are cut into chunks.

    Args:
        max_len: tokens per chunk (the curriculum's longest sequences: 50).
        overlap: tokens a chunk shares with the one before it in the same poem; below max_len.
        min_len: the fewest new tokens a final remainder (or a whole short poem) needs to be kept.

    Raises:
        ValueError: a value that is not an integer in its range.
    """

    max_len: int = 50
    overlap: int = 10
    min_len: int = 4

    def __post_init__(self) -> None:
        if not (_positive_int(self.max_len) and self.max_len >= 1):
            raise ValueError(f"max_len={self.max_len!r} is not allowed; allowed: an integer >= 1")
        if not (_positive_int(self.overlap) and 0 <= self.overlap < self.max_len):
            raise ValueError(f"overlap={self.overlap!r} is not allowed; allowed: an integer in [0, "
                             f"max_len={self.max_len})")
        if not (_positive_int(self.min_len) and 1 <= self.min_len <= self.max_len):
            raise ValueError(f"min_len={self.min_len!r} is not allowed; allowed: an integer in [1, "
                             f"max_len={self.max_len}]")

    @property
    def stride(self) -> int:
        """Tokens between the starts of consecutive chunks."""
        return self.max_len - self.overlap

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def chunk_poem(tokens: list[str], config: ChunkConfig = ChunkConfig()) -> tuple[list[list[str]], int]:
    """The chunks of one poem's tokens, and how many of its tokens they hold."""
    n = len(tokens)
    if n <= config.max_len:
        return ([list(tokens)], n) if n >= config.min_len else ([], 0)
    starts = range(0, n - config.max_len + 1, config.stride)
    chunks = [list(tokens[s:s + config.max_len]) for s in starts]
    covered = starts[-1] + config.max_len
    remainder = n - covered
    if remainder >= config.min_len:
        chunks.append(list(tokens[starts[-1] + config.stride:]))
        covered = n
    return chunks, covered


def chunk_tokens(poems_tokens: list[list[str]],
                 config: ChunkConfig = ChunkConfig()) -> tuple[list[list[str]], float]:
    """Chunks of every poem (in poem order), and the fraction of tokens kept (0.0 when there are none).

    Example:
        >>> chunk_tokens([list("abcdefgh")], ChunkConfig(max_len=4, overlap=1, min_len=2))
        ([['a', 'b', 'c', 'd'], ['d', 'e', 'f', 'g']], 0.875)
    """
    chunks: list[list[str]] = []
    kept = total = 0
    for tokens in poems_tokens:
        poem_chunks, covered = chunk_poem(tokens, config)
        chunks += poem_chunks
        kept += covered
        total += len(tokens)
    return chunks, (kept / total if total else 0.0)
