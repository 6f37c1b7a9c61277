"""The data of a document-002 run: poems (the user's file or the fortunes package's songs-poems),
chunked and embedded with word vectors (the user's GloVe file, MiniLM's 384-d input embeddings or
GloVe 6B 50-d), served by a seeded data module.

`check_user_data` reads the user's files before a run starts, so a bad one is a parameter error.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from projects.common.params import ParamError
from projects.poetry_ae.config import PoetryRunConfig

__all__ = ["PoemData", "load_data", "check_user_data"]


@dataclass(frozen=True)
class PoemData:
    """The run's word vectors, embedded chunks and data module."""

    vectors: Any      # WordVectors
    arrays: Any       # PoemArrays
    datamodule: Any   # PoetryDataModule
    source: str

    @property
    def input_dim(self) -> int:
        return int(self.arrays.x.shape[2])

    def mean_vector_cosines(self, split: str = "test") -> dict[str, float]:
        """Token and sequence cosine on `split` of always predicting the training tokens' mean word
        vector: what an autoencoder that learned nothing about its input scores. The token cosine is
        the champion gate's baseline (`mean/token_cosine`)."""
        train, rows = self.datamodule.split_indices["train"], self.datamodule.split_indices[split]
        x, mask = self.arrays.x, self.arrays.mask
        mean = x[train][mask[train]].mean(axis=0)

        def cos(a: np.ndarray) -> np.ndarray:
            return a @ mean / (np.linalg.norm(a, axis=-1) * np.linalg.norm(mean) + 1e-12)

        sequences = (x[rows] * mask[rows, :, None]).sum(axis=1) / mask[rows].sum(axis=1, keepdims=True)
        return {"mean/token_cosine": float(cos(x[rows][mask[rows]]).mean()),
                "mean/seq_cosine": float(cos(sequences).mean())}


def _chunk_config(config: PoetryRunConfig) -> Any:
    from lightning_modules.poetry_ae.data import ChunkConfig

    return ChunkConfig(max_len=config.max_len, overlap=config.overlap)


def load_data(config: PoetryRunConfig, seed: int | None = None) -> PoemData:
    """The run's data; `seed` (default the config's) seeds the split and the shuffle."""
    from lightning_modules.poetry_ae.data import PoetryDataModule, build_poem_arrays, load_poems, load_vectors

    from projects.common.data_cache import cached_arrays

    vectors = load_vectors(config.vectors, config.vectors_path)
    if config.vector_scale == "rms":
        vectors = vectors.unit_rms()
    poems = load_poems(config.poems_path)
    arrays = build_poem_arrays(poems, vectors, _chunk_config(config),
                               cache=functools.partial(cached_arrays, cache_dir=config.cache_dir))
    datamodule = PoetryDataModule(arrays, batch_size=config.batch_size, seed=config.seed if seed is None else seed)
    source = (f"{config.poems_path or 'fortunes songs-poems'} ({len(poems)} poems, {len(arrays.x)} chunks), "
              f"{vectors.name} vectors ({vectors.dim}-d)")
    return PoemData(vectors, arrays, datamodule, source)


def check_user_data(config: PoetryRunConfig) -> None:
    """Read the word-vector and poems files the config names, and check that the poems leave tokens.

    Raises:
        ParamError: naming the parameter, what is wrong with its file and what is allowed.
    """
    from lightning_modules.poetry_ae.data import DataFileError, build_poem_arrays, load_poems, load_vectors

    def refused(name: str, error: Exception) -> ParamError:
        allowed = str(error).rpartition("; allowed: ")[2] or "a readable file"
        return ParamError(name, getattr(config, name), allowed, problem=getattr(error, "problem", str(error)))

    try:
        vectors = load_vectors(config.vectors, config.vectors_path)
    except DataFileError as error:
        raise refused("vectors_path", error) from None
    try:
        build_poem_arrays(load_poems(config.poems_path), vectors, _chunk_config(config))
    except (DataFileError, ValueError) as error:
        raise refused("poems_path" if config.poems_path else "vectors_path", error) from None
