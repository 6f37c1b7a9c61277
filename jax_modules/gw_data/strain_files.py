"""Hours of two-detector strain in MLGWSC-1 files, made in a generator process.

`StrainSpec` says what to make; `generate_strain_files` runs `python -m jax_modules.gw_data.strain_generate`
(which imports ripplegw, float64 for its whole process, like `generate`) and returns when the three
files are in place: `foreground.hdf` (noise plus injections), `background.hdf` (the same noise
alone) and `injections.hdf`, as MLGWSC-1's `generate_data.py` writes data set 1.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .subprocess_generate import run_module

__all__ = ["FILES", "StrainSpec", "generate_strain_files"]

#: The files a generation writes, by role.
FILES = {"foreground": "foreground.hdf", "background": "background.hdf", "injections": "injections.hdf"}

#: One week: the longest span generated at once (a month is four runs with four seeds and starts).
MAX_DURATION_S = 7 * 86400.0


@dataclass(frozen=True)
class StrainSpec:
    """What to generate.

    Args:
        duration: seconds of strain per detector; one segment.
        seed: root of every random draw (noise of each detector, injections).
        start_time: GPS time of the first sample (default: the start of O3, as the training set).
        sample_rate: samples per second [Hz].
        chunk: seconds generated and written at once (bounds memory; the data do not depend on it).

    Raises:
        ValueError: a field out of range; the message names it.
    """

    duration: float = 3600.0
    seed: int = 0
    start_time: float = 1238166018.0
    sample_rate: int = 2048
    chunk: float = 256.0

    def __post_init__(self) -> None:
        _check("duration", self.duration, 60.0 <= self.duration <= MAX_DURATION_S,
               f"60 <= duration <= {MAX_DURATION_S:g} seconds")
        _check("duration", self.duration, float(self.duration * self.sample_rate).is_integer(),
               "a whole number of samples")
        _check("seed", self.seed, isinstance(self.seed, int) and 0 <= self.seed < 2**63, "an integer 0 <= seed < 2**63")
        _check("start_time", self.start_time, math.isfinite(self.start_time) and self.start_time >= 0,
               "a GPS time >= 0")
        _check("sample_rate", self.sample_rate, self.sample_rate in (1024, 2048, 4096), "1024, 2048 or 4096 Hz")
        _check("chunk", self.chunk, 16.0 <= self.chunk <= 4096.0, "16 <= chunk <= 4096 seconds")

    @property
    def n_samples(self) -> int:
        return round(self.duration * self.sample_rate)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "StrainSpec":
        return cls(**json.loads(text))


def _check(name: str, value: object, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"StrainSpec.{name}={value!r} is out of range; allowed: {allowed}")


def generate_strain_files(spec: StrainSpec, out_dir: str | os.PathLike[str], progress: bool = True) -> dict[str, Path]:
    """Write foreground, background and injection files for `spec` into `out_dir` (which must exist);
    their paths by role. Files of an earlier generation there are replaced, each only once complete.

    Raises:
        GenerationError: the generator process failed; its one-line reason is the message.
    """
    out = Path(out_dir)
    run_module("jax_modules.gw_data.strain_generate", ["--spec", spec.to_json(), "--output-dir", str(out)]
               + ([] if progress else ["--no-progress"]), progress, what="strain generation")
    return {role: out / name for role, name in FILES.items()}
