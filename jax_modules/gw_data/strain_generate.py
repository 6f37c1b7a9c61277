"""Generator process for continuous strain: `python -m jax_modules.gw_data.strain_generate --spec JSON --output-dir DIR`.

Writes MLGWSC-1 data set 1 as the challenge's `generate_data.py` does, from this project's physics:
Gaussian noise from the aLIGO design PSD (held constant below 20 Hz, as the training windows'),
independent in H1 and L1; `background.hdf` is that noise, `foreground.hdf` the same noise plus
IMRPhenomD injections (ripplegw, the training set's waveform library; the challenge used
IMRPhenomXPHM without spins or higher modes) at the physical distances of `injection_set`;
`injections.hdf` holds their parameters and, beyond the challenge's, `optimal_snr` (network SNR
with the design PSD). Strain is generated, injected and written chunk by chunk, so memory does not
grow with the duration. Imports ripplegw (float64 for the whole process): run only through
`strain_files.generate_strain_files`. Failures: status 1 and one line on stderr starting with
`ERROR_PREFIX`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from .config import ERROR_PREFIX, GWDataConfig
from .detectors import detector_response
from .injection_set import PADDING_S, TIME_JITTER_S, TIME_STEP_S, InjectionSet, sample_injections
from .mlgwsc_format import DETECTORS
from .noise_stream import NoiseStream
from .psd import design_psd
from .snr import network_snr
from .sources import Sources
from .strain_files import FILES, StrainSpec

F_LOWER = 20.0
#: Each injection is made on a window this long [s] with its merger at MERGER_AT of it: room for the
#: inspiral of the lightest binary (10 + 10 solar masses) from F_LOWER, about 6 s, and the ringdown.
INJECTION_WINDOW_S = 8.0
MERGER_AT = 0.9
#: Length of the noise filter [s] (PSD resolution 1 / 8 Hz).
FIR_SECONDS = 8.0
WAVEFORM_BATCH = 16


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jax_modules.gw_data.strain_generate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--spec", required=True, help="StrainSpec fields as a JSON object")
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        spec = StrainSpec.from_json(args.spec)
        if not args.output_dir.is_dir():
            raise FileNotFoundError(f"--output-dir {str(args.output_dir)!r} is not an existing folder")
        write_strain_files(spec, args.output_dir, progress=not args.no_progress)
    except Exception as exc:  # the parent shows this one line
        print(ERROR_PREFIX + " ".join(f"{type(exc).__name__}: {exc}".split()), file=sys.stderr, flush=True)
        return 1
    return 0


def write_strain_files(spec: StrainSpec, out_dir: Path, progress: bool = True) -> None:
    """Write the three files of `spec` into `out_dir`: each under a temporary name, renamed when all are done."""
    temps = {role: out_dir / f".{name}.tmp" for role, name in FILES.items()}
    try:
        injections, snr = _write_strain(spec, temps["foreground"], temps["background"], progress)
        _write_injections(temps["injections"], injections, snr, spec)
        for role, tmp in temps.items():
            os.replace(tmp, out_dir / FILES[role])
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)


def _write_strain(spec: StrainSpec, fg_path: Path, bg_path: Path, progress: bool) -> tuple[InjectionSet, np.ndarray]:
    """Noise and injections chunk by chunk; the injections and their optimal network SNRs."""
    from .waveforms import REFERENCE_DISTANCE_MPC, WindowProjector, imrphenomd_parameters  # ripplegw: float64

    rate, n_total = spec.sample_rate, spec.n_samples
    inj_rng, *noise_rngs = (np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(1 + len(DETECTORS)))
    injections = sample_injections(inj_rng, spec.start_time, spec.start_time + spec.duration, padding=PADDING_S)
    window = GWDataConfig(n_train=2, n_val=2, n_test=2, sample_rate=rate, duration=INJECTION_WINDOW_S,
                          merger_min=MERGER_AT, merger_max=MERGER_AT, f_lower=F_LOWER, gps_time=spec.start_time)
    projector = WindowProjector(window, batch_size=WAVEFORM_BATCH)
    psd = design_psd(rate, window.n_samples, F_LOWER)  # on the injection window's grid: SNRs
    streams = [NoiseStream(design_psd(rate, round(FIR_SECONDS * rate), F_LOWER), rate, g) for g in noise_rngs]
    lead = round(MERGER_AT * INJECTION_WINDOW_S * rate)
    first = np.floor((injections.tc - spec.start_time) * rate).astype(np.int64) - lead  # window starts

    def make(index: np.ndarray) -> np.ndarray:
        """(k, 2, n) detector strain of injections `index` at their distances."""
        batch = injections.take(index)
        response = [detector_response(DETECTORS, batch.ra[i:i + 1], batch.dec[i:i + 1], batch.polarization[i:i + 1],
                                      float(batch.tc[i])) for i in range(len(batch))]
        fplus, fcross, delay = (np.concatenate([r[j] for r in response]) for j in range(3))
        arrival = (batch.tc - spec.start_time - first[index] / rate)[:, None] + delay
        sources = Sources(mass1=batch.mass1, mass2=batch.mass2, ra=batch.ra, dec=batch.dec, psi=batch.polarization,
                          iota=batch.inclination, phase=batch.coa_phase, t_merger=np.zeros(len(batch)),
                          snr=np.zeros(len(batch)))
        strain = projector(imrphenomd_parameters(sources), fplus, fcross, arrival)
        return strain * (REFERENCE_DISTANCE_MPC / batch.distance)[:, None, None]

    snr = np.full(len(injections), np.nan)
    chunk = round(spec.chunk * rate)
    pending: dict[int, np.ndarray] = {}  # injections made whose window reaches past the current chunk
    made = 0
    name = str(int(spec.start_time))
    with h5py.File(fg_path, "w") as fg, h5py.File(bg_path, "w") as bg, \
            tqdm(total=n_total // rate, desc="gw strain", unit="s", file=sys.stderr, disable=not progress) as bar:
        datasets = {}
        for role, f in (("fg", fg), ("bg", bg)):
            for det in DETECTORS:
                ds = f.create_group(det).create_dataset(name, shape=(n_total,), dtype=np.float64,
                                                        chunks=(min(n_total, 1 << 16),))
                ds.attrs["start_time"], ds.attrs["delta_t"] = float(spec.start_time), 1.0 / rate
                datasets[role, det] = ds
        for lo in range(0, n_total, chunk):
            hi = min(lo + chunk, n_total)
            noise = np.stack([stream.next(hi - lo) for stream in streams])
            for d, det in enumerate(DETECTORS):
                datasets["bg", det][lo:hi] = noise[d]
            due = made + int(np.searchsorted(first[made:], hi, side="left"))  # windows starting before hi
            if due > made:
                index = np.arange(made, due)
                strain = make(index)
                snr[index] = network_snr(strain, psd, rate, F_LOWER)
                pending.update(zip(index.tolist(), strain))
                made = due
            for i in list(pending):
                a, b = max(first[i], lo), min(first[i] + window.n_samples, hi)
                if a < b:
                    noise[:, a - lo:b - lo] += pending[i][:, a - first[i]:b - first[i]]
                if first[i] + window.n_samples <= hi:
                    del pending[i]
            for d, det in enumerate(DETECTORS):
                datasets["fg", det][lo:hi] = noise[d]
            bar.update(round((hi - lo) / rate))
    return injections, snr


def _write_injections(path: Path, injections: InjectionSet, snr: np.ndarray, spec: StrainSpec) -> None:
    if np.isnan(snr).any():
        raise RuntimeError(f"{int(np.isnan(snr).sum())} injections were not generated (a bug in the chunk loop)")
    with h5py.File(path, "w") as f:
        for key, values in injections.arrays().items():
            f.create_dataset(key, data=values)
        f.create_dataset("optimal_snr", data=snr)
        f.attrs.update({"approximant": "IMRPhenomD", "f_lower": F_LOWER, "time_step": TIME_STEP_S,
                        "time_jitter": TIME_JITTER_S, "padding": PADDING_S, "seed": spec.seed,
                        "start_time": spec.start_time, "duration": spec.duration,
                        "generator": "jax_modules.gw_data.strain_generate (MLGWSC-1 data set 1 layout)"})


if __name__ == "__main__":
    sys.exit(main())
