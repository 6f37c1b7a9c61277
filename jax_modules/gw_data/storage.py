"""A `GWDataset` as flat named arrays and back, checked against its config.

No file I/O here: the arrays travel from the generator process in a plain `.npz`, and caching
(atomic writes, checksums, keys) belongs to the caller (`projects.common.data_cache`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .config import SPLITS, GWDataConfig
from .dataset import GWDataset, Split
from .detectors import DetectorGeometry
from .matched_filter import TemplateBank
from .online import WaveformBank, bank_layout

__all__ = ["InvalidDataError", "dataset_arrays", "dataset_from_arrays", "bank_arrays", "bank_from_arrays",
           "waveform_bank_arrays", "waveform_bank_from_arrays"]


class InvalidDataError(ValueError):
    """Arrays that are not the data set a config asks for (a ValueError: caches rebuild on it)."""


def dataset_arrays(dataset: GWDataset) -> dict[str, np.ndarray]:
    """The data set's arrays by flat name: `"{split}/{field}"` for every split, and `"psd"`."""
    arrays = {f"{split}/{name}": a for split, s in dataset.splits().items() for name, a in s.arrays().items()}
    arrays["psd"] = np.asarray(dataset.psd, dtype=np.float64)
    return arrays


def bank_arrays(bank: TemplateBank) -> dict[str, np.ndarray]:
    """A template bank as plain arrays (the generator's `.npz`, the cache)."""
    return {"templates": bank.templates, "mass1": bank.mass1, "mass2": bank.mass2,
            "sample_rate": np.asarray(bank.sample_rate, dtype=np.float64),
            "merger_index": np.asarray(bank.merger_index, dtype=np.int64)}


def bank_from_arrays(arrays: Mapping[str, np.ndarray], config: GWDataConfig) -> TemplateBank:
    """The bank `bank_arrays` wrote, checked against the data it must filter.

    Raises:
        InvalidDataError: a missing array, or templates that do not fit `config`'s windows.
    """
    missing = sorted({"templates", "mass1", "mass2", "sample_rate", "merger_index"} - set(arrays))
    if missing:
        raise InvalidDataError(f"template bank arrays lack {missing}")
    templates = np.asarray(arrays["templates"])
    if templates.dtype != np.float32 or templates.ndim != 3 or templates.shape[1:] != (2, config.n_samples):
        raise InvalidDataError(f"templates are {templates.dtype} {templates.shape}; allowed: float32 "
                               f"(n, 2, {config.n_samples})")
    try:
        return TemplateBank(templates, np.asarray(arrays["mass1"]), np.asarray(arrays["mass2"]),
                            float(arrays["sample_rate"]), int(arrays["merger_index"]))
    except ValueError as exc:
        raise InvalidDataError(str(exc)) from None


def waveform_bank_arrays(bank: WaveformBank) -> dict[str, np.ndarray]:
    """A waveform bank as plain arrays (the generator's `.npz`, the cache)."""
    return {"pairs": bank.pairs, "mass1": bank.mass1, "mass2": bank.mass2,
            "merger_index": np.asarray(bank.merger_index, dtype=np.int64),
            "tensors": bank.geometry.tensors, "vertices": bank.geometry.vertices,
            "gmst": np.asarray(bank.geometry.gmst, dtype=np.float64), "psd": bank.psd, "noise_psd": bank.noise_psd}


def waveform_bank_from_arrays(arrays: Mapping[str, np.ndarray], config: GWDataConfig) -> WaveformBank:
    """The bank `waveform_bank_arrays` wrote, checked against the windows it must make.

    Raises:
        InvalidDataError: a missing array, or a bank that does not fit `config`'s windows and detectors.
    """
    names = {"pairs", "mass1", "mass2", "merger_index", "tensors", "vertices", "gmst", "psd", "noise_psd"}
    missing = sorted(names - set(arrays))
    if missing:
        raise InvalidDataError(f"waveform bank arrays lack {missing}")
    length, merger_index = bank_layout(config)
    pairs, psd = np.asarray(arrays["pairs"]), np.asarray(arrays["psd"])
    d = len(config.detectors)
    if pairs.ndim != 3 or pairs.shape[1:] != (2, length) or int(arrays["merger_index"]) != merger_index \
            or psd.shape != (config.n_samples // 2 + 1,) or np.shape(arrays["tensors"]) != (d, 3, 3):
        raise InvalidDataError(f"waveform bank with pairs {pairs.shape}, merger index {int(arrays['merger_index'])}, "
                               f"PSD {psd.shape}, tensors {np.shape(arrays['tensors'])}; allowed for these windows: "
                               f"(n, 2, {length}), {merger_index}, ({config.n_samples // 2 + 1},), ({d}, 3, 3)")
    try:
        geometry = DetectorGeometry(np.asarray(arrays["tensors"], np.float64),
                                    np.asarray(arrays["vertices"], np.float64), float(arrays["gmst"]))
        return WaveformBank(pairs, np.asarray(arrays["mass1"]), np.asarray(arrays["mass2"]), merger_index, geometry,
                            psd, np.asarray(arrays["noise_psd"]))
    except ValueError as exc:
        raise InvalidDataError(str(exc)) from None


def dataset_from_arrays(
    arrays: Mapping[str, np.ndarray],
    config: GWDataConfig,
    *,
    generated: bool,
    path: Path | None = None,
) -> GWDataset:
    """The data set for `config` from `dataset_arrays`' output, after checking every array.

    Args:
        arrays: named arrays, as `dataset_arrays` makes them.
        config: the config they must have been simulated from.
        generated: True if simulated by this call, False if read from a cache.
        path: where they were stored, if anywhere.

    Raises:
        InvalidDataError: an array is missing or extra, or has the wrong shape or dtype.
    """
    _check_arrays(arrays, config)
    splits = {
        split: Split(**{name.split("/", 1)[1]: a for name, a in arrays.items() if name.startswith(f"{split}/")})
        for split in SPLITS
    }
    return GWDataset(**splits, config=config, psd=arrays["psd"], generated=generated, path=path)


def _check_arrays(arrays: Mapping[str, np.ndarray], config: GWDataConfig) -> None:
    expected = _expected_shapes(config)
    missing, extra = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or extra:
        wrong = ", ".join(f"{what} {names}" for what, names in (("missing", missing), ("unexpected", extra)) if names)
        raise InvalidDataError(f"GW data arrays: {wrong}; allowed: exactly {sorted(expected)}")
    for name, (shape, dtype) in expected.items():
        array = arrays[name]
        if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype != dtype:
            got = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
            raise InvalidDataError(f"GW data array {name} is {got}; allowed: {np.dtype(dtype)} {shape}")


def _expected_shapes(config: GWDataConfig) -> dict[str, tuple[tuple[int, ...], type]]:
    window = (len(config.detectors), config.n_samples)
    expected: dict[str, tuple[tuple[int, ...], type]] = {"psd": ((config.n_samples // 2 + 1,), np.float64)}
    for split, n in config.split_sizes().items():
        expected[f"{split}/x"] = ((n, *window), np.float32)
        expected[f"{split}/y"] = ((n,), np.int32)
        for name in ("snr", "mass1", "mass2"):
            expected[f"{split}/{name}"] = ((n,), np.float32)
        if config.keep_clean:
            expected[f"{split}/clean"] = ((n, *window), np.float32)
    return expected
