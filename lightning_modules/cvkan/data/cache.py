"""How the cvkan data builders use a disk cache they are handed (they import none themselves).

Dependencies flow `projects -> lightning_modules`, so a builder takes the cache as an argument:
a project passes `functools.partial(projects.common.data_cache.cached_arrays, cache_dir=...)`;
`None` builds in memory every time.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol

import numpy as np

__all__ = ["ArrayCache", "through_cache"]

Arrays = dict[str, np.ndarray]


class _Entry(Protocol):
    arrays: Mapping[str, np.ndarray]
    built: bool


class ArrayCache(Protocol):
    """The signature of `projects.common.data_cache.cached_arrays` (with its `cache_dir` bound)."""

    def __call__(self, name: str, key: Mapping[str, Any], build: Callable[[], Mapping[str, np.ndarray]], *,
                 check: Callable[[Arrays], None] | None = None) -> _Entry: ...


def through_cache(cache: ArrayCache | None, name: str, key: Mapping[str, Any],
                  build: Callable[[], Mapping[str, np.ndarray]],
                  check: Callable[[Arrays], None]) -> tuple[Arrays, bool]:
    """`build()`'s arrays, through `cache` when one is given; and whether they came from the cache."""
    if cache is None:
        arrays = {k: np.asarray(v) for k, v in build().items()}
        check(arrays)
        return arrays, False
    entry = cache(name, dict(key), build, check=check)
    return dict(entry.arrays), not entry.built
