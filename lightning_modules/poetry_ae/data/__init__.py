"""Document 002 (poetry autoencoder): poems as padded word-vector sequences, and one data module.

- poems (`poems`): the Debian package `fortunes`' songs-poems (offline default; the note had 264
  poems of its own), or the user's .txt/.json file;
- word vectors (`vectors`): MiniLM's 384-d input embeddings or GloVe 6B 50-d (both pip packages,
  offline), or the user's GloVe text file (the note's glove.6B.300d.txt); whole words only;
- chunks (`chunks`): lowercase words cut into overlapping windows, with the note's "data preservation";
- sequences (`dataset`): chunks as (N, T, D) vectors, words without a vector dropped (`coverage`),
  cached through an injected `cache` (`projects.common.data_cache.cached_arrays` with its cache_dir bound);
- `PoetryDataModule`: a seeded split served as (x, mask, lengths) batches.
Pure numpy except the data module; this package imports nothing from `projects`.
"""

from lightning_modules.poetry_ae.data.chunks import ChunkConfig, chunk_poem, chunk_tokens, is_word, tokenize
from lightning_modules.poetry_ae.data.datamodule import PoetryDataModule, random_split
from lightning_modules.poetry_ae.data.dataset import PoemArrays, build_poem_arrays, embed_chunks
from lightning_modules.poetry_ae.data.errors import DataFileError
from lightning_modules.poetry_ae.data.poems import (
    DEFAULT_FORTUNES,
    fortunes_poems,
    load_poems,
    read_poems_json,
    read_poems_text,
)
from lightning_modules.poetry_ae.data.vectors import (
    VECTOR_SOURCES,
    WordVectors,
    glove50_vectors,
    load_vectors,
    minilm_vectors,
    read_glove_text,
)

__all__ = [
    "DEFAULT_FORTUNES",
    "VECTOR_SOURCES",
    "ChunkConfig",
    "DataFileError",
    "PoemArrays",
    "PoetryDataModule",
    "WordVectors",
    "build_poem_arrays",
    "chunk_poem",
    "chunk_tokens",
    "embed_chunks",
    "fortunes_poems",
    "glove50_vectors",
    "is_word",
    "load_poems",
    "load_vectors",
    "minilm_vectors",
    "random_split",
    "read_glove_text",
    "read_poems_json",
    "read_poems_text",
    "tokenize",
]
