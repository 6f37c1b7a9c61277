"""Configuration of the simulated H1/L1 data set: validated on construction, hashed for the cache."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from .chirp import chirp_time

#: Bump when the generated arrays change for the same config (new physics, layout or RNG use):
#: it is part of the cache key, so older cache entries are no longer matched.
FORMAT_VERSION = 1

#: Detectors bilby ships geometry for, among those this data set supports.
KNOWN_DETECTORS = ("H1", "L1", "V1", "K1")

#: Longest segment waveforms are generated on; bounds memory per batch.
MAX_SEGMENT_SECONDS = 64.0

#: Safety factor on the leading-order chirp time (post-Newtonian terms add a few per cent).
CHIRP_TIME_MARGIN = 1.25

SPLITS = ("train", "val", "test")


#: How the generator process starts its one stderr line on failure (read back by `subprocess_generate`).
ERROR_PREFIX = "gw_data.generate: error: "

@dataclass(frozen=True, kw_only=True)
class GWDataConfig:
    """What to simulate: Gaussian detector noise, half of it with an IMRPhenomD injection.

    Every field takes part in `cache_key()`: changing any of them generates a new data set.

    Args:
        n_train, n_val, n_test: examples per split; even, half of them carry a signal.
        sample_rate: samples per second [Hz].
        duration: window length [s]; `sample_rate * duration` must be a whole number.
        detectors: interferometers, by bilby name.
        snr_min, snr_max: optimal network SNR of an injection, drawn uniformly in this range.
        mass_min, mass_max: component masses [M_sun], each drawn uniformly (MLGWSC-1 set 1).
        f_lower: waveforms start here [Hz]; SNR is integrated from here.
        merger_min, merger_max: merger (at the geocenter) placed uniformly in this range,
            as a fraction of the window.
        gps_time: GPS time fixing Earth's orientation for antenna patterns and delays.
        whiten_taper: Tukey fraction used by `whiten`.
        keep_clean: also keep each example's whitened noise-free signal (for checks, plots).
        seed: root of every random draw.

    Raises:
        ValueError: a field is of the wrong type or out of range (the message names it).

    Example:
        >>> config = GWDataConfig(n_train=16, n_val=8, n_test=8, snr_min=8.0, snr_max=20.0)
        >>> config.n_samples
        2048
    """

    n_train: int = 2000
    n_val: int = 500
    n_test: int = 1000
    sample_rate: int = 2048
    duration: float = 1.0
    detectors: tuple[str, ...] = ("H1", "L1")
    snr_min: float = 8.0
    snr_max: float = 20.0
    mass_min: float = 10.0
    mass_max: float = 50.0
    f_lower: float = 20.0
    merger_min: float = 0.6
    merger_max: float = 0.9
    gps_time: float = 1238166018.0  # start of O3
    whiten_taper: float = 0.1
    keep_clean: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        self._normalize_types()
        self.validate()

    def _normalize_types(self) -> None:
        """Coerce to plain int/float/bool/tuple, so equal configs hash equally (20 and 20.0)."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"GWDataConfig.{field.name}={value!r} must be a bool")
            elif field.type == "int":
                if isinstance(value, bool) or not isinstance(value, Integral):
                    raise ValueError(f"GWDataConfig.{field.name}={value!r} must be an integer")
                object.__setattr__(self, field.name, int(value))
            elif field.type == "float":
                if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
                    raise ValueError(f"GWDataConfig.{field.name}={value!r} must be a finite number")
                object.__setattr__(self, field.name, float(value))
        if isinstance(self.detectors, str) or not all(isinstance(d, str) for d in self.detectors):
            raise ValueError(f"GWDataConfig.detectors={self.detectors!r} must be a sequence of detector names")
        object.__setattr__(self, "detectors", tuple(self.detectors))

    def validate(self) -> None:
        """Raise `ValueError` naming the first field outside its allowed range."""
        for name in ("n_train", "n_val", "n_test"):
            value = getattr(self, name)
            _check(name, value, value >= 2 and value % 2 == 0, "an even integer >= 2 (half noise, half signal)")
        _check("sample_rate", self.sample_rate, 256 <= self.sample_rate <= 16384, "256 <= sample_rate <= 16384")
        n = self.sample_rate * self.duration
        _check("duration", self.duration, 0.25 <= self.duration <= 16.0, "0.25 <= duration <= 16 seconds")
        _check("duration", self.duration, abs(n - round(n)) < 1e-9, "sample_rate * duration must be a whole number")
        _check("detectors", self.detectors, len(self.detectors) > 0, f"a non-empty subset of {KNOWN_DETECTORS}")
        known = set(self.detectors) <= set(KNOWN_DETECTORS)
        _check("detectors", self.detectors, known, f"names from {KNOWN_DETECTORS}")
        _check("detectors", self.detectors, len(set(self.detectors)) == len(self.detectors), "no repeated detector")
        _check("snr_min", self.snr_min, 0.0 < self.snr_min <= 1000.0, "0 < snr_min <= 1000")
        _check("snr_max", self.snr_max, self.snr_min <= self.snr_max <= 1000.0, "snr_min <= snr_max <= 1000")
        _check("mass_min", self.mass_min, 5.0 <= self.mass_min <= 100.0, "5 <= mass_min <= 100 solar masses")
        _check("mass_max", self.mass_max, self.mass_min <= self.mass_max <= 100.0, "mass_min <= mass_max <= 100")
        nyquist = self.sample_rate / 2.0
        _check("f_lower", self.f_lower, 10.0 <= self.f_lower <= nyquist / 2, f"10 <= f_lower <= {nyquist / 2:g} Hz")
        _check("merger_min", self.merger_min, 0.05 <= self.merger_min <= 0.95, "0.05 <= merger_min <= 0.95")
        ordered = self.merger_min <= self.merger_max <= 0.95
        _check("merger_max", self.merger_max, ordered, "merger_min <= merger_max <= 0.95")
        _check("gps_time", self.gps_time, self.gps_time >= 0.0, "gps_time >= 0")
        _check("whiten_taper", self.whiten_taper, 0.0 <= self.whiten_taper <= 0.5, "0 <= whiten_taper <= 0.5")
        _check("seed", self.seed, 0 <= self.seed < 2**63, "0 <= seed < 2**63")
        seconds = self.segment_samples / self.sample_rate
        if seconds > MAX_SEGMENT_SECONDS:
            raise ValueError(
                f"GWDataConfig.mass_min={self.mass_min!r} with f_lower={self.f_lower!r} needs a {seconds:g} s "
                f"waveform segment; allowed: at most {MAX_SEGMENT_SECONDS:g} s (raise mass_min or f_lower)"
            )

    @property
    def n_samples(self) -> int:
        """Samples per window and detector."""
        return round(self.sample_rate * self.duration)

    @property
    def segment_samples(self) -> int:
        """Samples of the segment waveforms are generated on (a power of two).

        Long enough that the lightest binary's inspiral from `f_lower`, which starts before the
        window, does not wrap around the segment into the window.
        """
        lead = CHIRP_TIME_MARGIN * chirp_time(self.mass_min, self.mass_min, self.f_lower)
        seconds = lead + self.duration * (1.0 - self.merger_min)
        needed = max(math.ceil(seconds * self.sample_rate), 2 * self.n_samples)
        return 1 << (needed - 1).bit_length()

    def split_sizes(self) -> dict[str, int]:
        """Examples per split, by split name."""
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): the form passed to the generator process."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GWDataConfig:
        """Inverse of `to_json`; unknown or malformed fields raise `ValueError`."""
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config is not valid JSON ({exc}); allowed: a JSON object of fields") from None
        if not isinstance(fields, dict):
            raise ValueError(f"config is a JSON {type(fields).__name__}; allowed: a JSON object of GWDataConfig fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"config has unknown fields {unknown}; allowed: {sorted(known)}")
        return cls(**fields)

    def cache_key(self) -> dict[str, Any]:
        """Everything the simulated data depends on: the fields and `FORMAT_VERSION` (the key of
        its entry in the data cache)."""
        return {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}


def _check(name: str, value: Any, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"GWDataConfig.{name}={value!r} is out of range; allowed: {allowed}")
