"""Chunks of poems as padded word-vector sequences: what the autoencoders reconstruct.

A token without a vector is dropped from its chunk (the sequences hold only embedded words, so
nothing is ever asked to reconstruct a zero "unknown" vector); `coverage` reports the share of
chunk tokens kept. A chunk left with fewer than 2 words is removed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from lightning_modules.cvkan.data.cache import ArrayCache, through_cache
from lightning_modules.poetry_ae.data.chunks import ChunkConfig, chunk_tokens, tokenize
from lightning_modules.poetry_ae.data.vectors import WordVectors

__all__ = ["CACHE_NAME", "MIN_WORDS", "PoemArrays", "embed_chunks", "build_poem_arrays"]

CACHE_NAME = "poetry_ae_arrays"
MIN_WORDS = 2  # a shorter sequence has nothing to reconstruct in order


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no truth value
class PoemArrays:
    """N sequences of at most T word vectors (D-dimensional), zero-padded at the end.

    Attributes:
        x: (N, T, D) float32.
        mask: (N, T) bool: a word is there (and, by construction, has a vector).
        lengths: (N,) int64 words per sequence (>= 2).
        tokens: each sequence's words, aligned with `x` (for reconstruction text).
        coverage: fraction of the chunks' tokens that had a vector (kept).
        preservation: fraction of the poems' tokens that are in at least one chunk.
        from_cache: the arrays were read from a disk cache.
    """

    x: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    lengths: np.ndarray = field(repr=False)
    tokens: tuple[tuple[str, ...], ...] = field(repr=False)
    coverage: float
    preservation: float
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.x)

    @property
    def max_len(self) -> int:
        return int(self.x.shape[1])

    @property
    def dim(self) -> int:
        return int(self.x.shape[2])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Named arrays without objects (tokens flattened; `lengths` splits them), for a cache."""
        flat = [w for seq in self.tokens for w in seq]
        return {"x": self.x, "mask": self.mask, "lengths": self.lengths, "words": np.array(flat, dtype=str),
                "coverage": np.array(self.coverage), "preservation": np.array(self.preservation)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], *, from_cache: bool = False) -> "PoemArrays":
        """The sequences from `to_arrays()`'s arrays."""
        words = [str(w) for w in arrays["words"]]
        ends = np.cumsum(arrays["lengths"])
        tokens = tuple(tuple(words[e - n:e]) for e, n in zip(ends.tolist(), arrays["lengths"].tolist()))
        return cls(arrays["x"], arrays["mask"], arrays["lengths"], tokens, float(arrays["coverage"]),
                   float(arrays["preservation"]), from_cache)


def embed_chunks(chunks: list[list[str]], vectors: WordVectors, max_len: int, *,
                 preservation: float = 1.0) -> PoemArrays:
    """Chunks as (N, max_len, D) sequences of their words' vectors; words without one dropped.

    Args:
        chunks: token lists of at most `max_len` tokens.
        vectors: the table.
        max_len: T, the padded length.
        preservation: the chunking's data preservation, carried into the result.

    Raises:
        ValueError: a chunk longer than max_len, or no chunk with 2 words that have vectors.
    """
    if not (isinstance(max_len, int) and max_len >= MIN_WORDS):
        raise ValueError(f"max_len={max_len!r} is not allowed; allowed: an integer >= {MIN_WORDS}")
    too_long = next((i for i, c in enumerate(chunks) if len(c) > max_len), None)
    if too_long is not None:
        raise ValueError(f"chunk {too_long} has {len(chunks[too_long])} tokens; allowed: at most max_len={max_len}")
    index = vectors.index
    total = sum(len(c) for c in chunks)
    kept = [[w for w in chunk if w in index] for chunk in chunks]
    coverage = sum(len(k) for k in kept) / total if total else 0.0
    kept = [k for k in kept if len(k) >= MIN_WORDS]
    if not kept:
        raise ValueError(f"no usable tokens: {len(chunks)} chunks of {total} tokens leave no sequence of "
                         f"{MIN_WORDS}+ words found in {vectors.name}; allowed: poems in words the vectors know")
    lengths = np.array([len(k) for k in kept], dtype=np.int64)
    mask = np.arange(max_len)[None, :] < lengths[:, None]
    rows = np.array([index[w] for k in kept for w in k], dtype=np.int64)
    x = np.zeros((len(kept), max_len, vectors.dim), dtype=np.float32)
    x[mask] = vectors.vectors[rows]  # row-major order of mask's True cells = the words in order
    return PoemArrays(x, mask, lengths, tuple(tuple(k) for k in kept), coverage, float(preservation))


def _checker(n_max: int, max_len: int, dim: int):
    def check(arrays: dict[str, np.ndarray]) -> None:
        x, mask, lengths = arrays.get("x"), arrays.get("mask"), arrays.get("lengths")
        words = arrays.get("words")
        ok = (x is not None and mask is not None and lengths is not None and words is not None
              and x.dtype == np.float32 and x.ndim == 3 and x.shape[1:] == (max_len, dim) and len(x) <= n_max
              and mask.shape == x.shape[:2] and mask.dtype == np.bool_ and lengths.shape == (len(x),)
              and lengths.dtype == np.int64 and int(lengths.sum()) == len(words) == int(mask.sum())
              and "coverage" in arrays and "preservation" in arrays)
        if not ok:
            raise ValueError(f"arrays {sorted(arrays)} do not fit: expected x float32 (N <= {n_max}, {max_len}, "
                             f"{dim}), mask bool (N, {max_len}), lengths int64 (N,) summing to len(words)")
    return check


def _digest(poems: list[str], vectors: WordVectors) -> dict[str, str]:
    poems_hash = hashlib.sha256("\x00".join(poems).encode("utf-8")).hexdigest()
    table = hashlib.sha256("\x00".join(vectors.words).encode("utf-8"))
    table.update(np.ascontiguousarray(vectors.vectors).data)
    return {"poems": poems_hash, "vectors": table.hexdigest()}


def build_poem_arrays(poems: list[str], vectors: WordVectors, config: ChunkConfig = ChunkConfig(), *,
                      cache: ArrayCache | None = None) -> PoemArrays:
    """Tokenize, chunk and embed `poems`: the autoencoders' data.

    With `cache` the arrays are cached under digests of the poems and the vector table and the
    chunking config (so an edited poems or vectors file is never served stale).

    Raises:
        ValueError: no usable tokens (no chunk has 2 words with vectors).

    Example:
        >>> arrays = build_poem_arrays(load_poems(None), load_vectors("minilm"), ChunkConfig(max_len=50))
        >>> arrays.x.shape, arrays.preservation, arrays.coverage
    """
    def build() -> dict[str, np.ndarray]:
        chunks, preservation = chunk_tokens([tokenize(p) for p in poems], config)
        return embed_chunks(chunks, vectors, config.max_len, preservation=preservation).to_arrays()

    key = {} if cache is None else {**_digest(poems, vectors), "vectors_name": vectors.name,
                                    "dim": vectors.dim, "chunks": config.to_dict()}
    n_max = sum(len(p) for p in poems)  # at most one chunk per character: a loose bound for the check
    arrays, hit = through_cache(cache, CACHE_NAME, key, build, _checker(n_max, config.max_len, vectors.dim))
    return PoemArrays.from_arrays(arrays, from_cache=hit)
