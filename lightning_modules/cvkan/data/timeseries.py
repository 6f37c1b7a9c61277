"""Multivariate forecasting windows: a real series shipped with matplotlib (offline default) and ETTh1 CSVs.

The offline default is Google's daily stock prices, 2004-08-19 to 2008-10-14 (1047 trading days,
`goog.npz` in matplotlib's sample data, from Yahoo Finance): open, high, low, volume and close, the
target last (as ETTh1's OT). statsmodels' co2/sunspots would serve too but statsmodels is not a
dependency; matplotlib is one already.

Splits are chronological (a forecaster never trains on the future): train, val, test segments in
time order, each val/test input window allowed to reach back `input_len` steps into the segment
before it (the Informer/Autoformer convention), z-normalized with the train segment's statistics
only. ETTh1-sized files (>= 14400 rows) use the benchmark's own borders: 12/4/4 months of hours.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from lightning_modules.cvkan.data.errors import file_error
from lightning_modules.cvkan.data.splits import ArraySplits

__all__ = ["ETT_COLUMNS", "GOOG_COLUMNS", "ForecastConfig", "goog_series", "read_ett_csv", "segment_borders",
           "make_windows", "forecast_splits"]

ETT_COLUMNS = ("date", "HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
GOOG_COLUMNS = ("open", "high", "low", "volume", "close")
_ETT_ALLOWED = f"a CSV with header {','.join(ETT_COLUMNS)} (any order), ISO dates, finite numbers in the other columns"
_ETT_MONTH = 30 * 24  # hours


@dataclass(frozen=True)
class ForecastConfig:
    """Window sizes, segment shares and targets: predict `horizon` steps from `input_len` steps.

    target: `all` (every channel, ETTh1's "M" setting) or `last` (the last channel only, "MS").
    """

    input_len: int = 96
    horizon: int = 24
    train_fraction: float = 0.7
    val_fraction: float = 0.1
    target: str = "all"

    def __post_init__(self) -> None:
        if not (isinstance(self.input_len, int) and isinstance(self.horizon, int) and self.input_len >= 1
                and self.horizon >= 1):
            raise ValueError(f"input_len={self.input_len!r}, horizon={self.horizon!r} are not allowed; "
                             "allowed: positive integers")
        if not (0 < self.train_fraction < 1 and 0 < self.val_fraction < 1
                and self.train_fraction + self.val_fraction < 1):
            raise ValueError(f"train_fraction={self.train_fraction!r}, val_fraction={self.val_fraction!r} are "
                             "out of range; allowed: both in (0, 1) with a sum below 1")
        if self.target not in ("all", "last"):
            raise ValueError(f"target={self.target!r} is not allowed; allowed: all, last")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def goog_series() -> tuple[np.ndarray, tuple[str, ...]]:
    """Google's daily prices (1047, 5) float64 from matplotlib's sample data, and the column names."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "goog.npz"
    with np.load(path, allow_pickle=False) as npz:
        prices = npz["price_data"]
    return np.stack([prices[c].astype(np.float64) for c in GOOG_COLUMNS], axis=1), GOOG_COLUMNS


def read_ett_csv(path: str | os.PathLike) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """ETTh1-format CSV: values (rows, 7) float64 in ETT_COLUMNS order, their names, dates (datetime64[s]).

    Raises:
        DataFileError: (a ValueError, one line naming the file, row and column) missing file or column,
            a row of the wrong width, a date that is not ISO, or a cell that is not a finite number.
    """
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "no such file", _ETT_ALLOWED)
    values, dates = [], []
    with open(path, newline="") as file:
        rows = csv.reader(file)
        header = [h.strip() for h in next(rows, [])]
        missing = [c for c in ETT_COLUMNS if c not in header]
        if missing:
            raise file_error(path, f"row 1 (header) lacks column(s) {', '.join(missing)}", _ETT_ALLOWED)
        cols = [header.index(c) for c in ETT_COLUMNS]
        for number, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise file_error(path, f"row {number} has {len(row)} cells, the header {len(header)}", _ETT_ALLOWED)
            try:
                dates.append(np.datetime64(datetime.fromisoformat(row[cols[0]].strip()), "s"))
            except ValueError:
                raise file_error(path, f"row {number}, column date: {row[cols[0]]!r} is not an ISO date",
                                 _ETT_ALLOWED) from None
            line = []
            for name, col in zip(ETT_COLUMNS[1:], cols[1:]):
                try:
                    value = float(row[col])
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise file_error(path, f"row {number}, column {name}: {row[col]!r} is not a finite number",
                                     _ETT_ALLOWED)
                line.append(value)
            values.append(line)
    if not values:
        raise file_error(path, "has no data rows", _ETT_ALLOWED)
    return np.array(values, dtype=np.float64), ETT_COLUMNS[1:], np.array(dates)


def segment_borders(n_rows: int, config: ForecastConfig, *, ett: bool = False) -> list[tuple[int, int]]:
    """Row ranges [start, end) of the train, val and test segments' windows (inputs and targets).

    val and test start `input_len` rows before their segment, so their first target follows it.
    `ett` with >= 14400 rows: ETTh1's benchmark borders (12, 4, 4 months of hours).

    Raises:
        ValueError: a segment too short for one window.
    """
    if ett and n_rows >= 20 * _ETT_MONTH:
        ends = [12 * _ETT_MONTH, 16 * _ETT_MONTH, 20 * _ETT_MONTH]
    else:
        n_train, n_val = round(n_rows * config.train_fraction), round(n_rows * config.val_fraction)
        ends = [n_train, n_train + n_val, n_rows]
    borders = [(0, ends[0]), (ends[0] - config.input_len, ends[1]), (ends[1] - config.input_len, ends[2])]
    window = config.input_len + config.horizon
    if min(end - start for start, end in borders) < window or borders[1][0] < 0:
        raise ValueError(f"{n_rows} rows are too few for input_len={config.input_len} + horizon={config.horizon} "
                         f"windows in every segment (rows {borders}); allowed: shorter windows or a longer series")
    return borders


def make_windows(values: np.ndarray, input_len: int, horizon: int, target: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Every (input, future) pair of a series (rows, channels): x (n, input_len, C), y (n, horizon, C or 1)."""
    n = len(values) - input_len - horizon + 1
    windows = np.lib.stride_tricks.sliding_window_view(values, input_len + horizon, axis=0)[:n].transpose(0, 2, 1)
    y = windows[:, input_len:, :] if target == "all" else windows[:, input_len:, -1:]
    return np.ascontiguousarray(windows[:, :input_len, :], dtype=np.float32), np.ascontiguousarray(y, dtype=np.float32)


def forecast_splits(values: np.ndarray, config: ForecastConfig = ForecastConfig(), *,
                    columns: tuple[str, ...] | None = None, ett: bool = False) -> ArraySplits:
    """Chronological, train-normalized window splits of a series (rows, channels).

    `meta` holds `mean` and `std` (train rows only; to undo the normalization), `columns` and `borders`.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or not np.isfinite(values).all():
        raise ValueError(f"values have shape {values.shape}; allowed: a finite (rows, channels) array")
    borders = segment_borders(len(values), config, ett=ett)
    train = values[borders[0][0]:borders[0][1]]
    mean, std = train.mean(axis=0), train.std(axis=0)
    normed = (values - mean) / np.where(std > 0, std, 1.0)
    parts = [make_windows(normed[s:e], config.input_len, config.horizon, config.target) for s, e in borders]
    return ArraySplits(*parts[0], *parts[1], *parts[2], n_classes=None, meta={
        "mean": mean, "std": std, "columns": list(columns or []), "borders": borders, **config.to_dict()})
