"""Simulate the data set: coloured noise in each detector, IMRPhenomD injections at a target SNR, whitened.

Imports ripplegw (through `waveforms`): run it only in the generator process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from .config import SPLITS, GWDataConfig
from .dataset import GWDataset, Split
from .detectors import detector_response
from .psd import design_psd
from .snr import scaled_to_snr
from .sources import Sources, sample_sources
from .waveforms import WindowProjector, imrphenomd_parameters
from .whitening import whiten
from .windows import whitened_windows

#: Most sources per compiled waveform call (bounds memory: ~34 MB per detector at 16 k samples).
MAX_WAVEFORM_BATCH = 128


def simulate_dataset(config: GWDataConfig, progress: bool = True) -> GWDataset:
    """All three splits for `config`, each from its own child of `SeedSequence(config.seed)`.

    Args:
        config: what to simulate.
        progress: show a tqdm bar (on stderr) over the waveforms.
    """
    psd = design_psd(config.sample_rate, config.n_samples, config.f_lower)
    sizes = config.split_sizes()
    most_signals = max(n // 2 for n in sizes.values())
    projector = WindowProjector(config, batch_size=min(MAX_WAVEFORM_BATCH, 1 << (most_signals - 1).bit_length()))
    seeds = np.random.SeedSequence(config.seed).spawn(len(SPLITS))
    total = sum(n // 2 for n in sizes.values())
    with tqdm(total=total, desc="gw_data: waveforms", unit="wf", file=sys.stderr, disable=not progress) as bar:
        splits = {
            name: simulate_split(config, sizes[name], seed, psd, projector, on_batch=bar.update)
            for name, seed in zip(SPLITS, seeds)
        }
    return GWDataset(**splits, config=config, psd=psd, generated=True)


def simulate_split(
    config: GWDataConfig,
    n: int,
    seed: np.random.SeedSequence,
    psd: np.ndarray,
    projector: WindowProjector,
    on_batch: Callable[[int], object] | None = None,
) -> Split:
    """`n` examples, half with an injection, in a seeded random order.

    Labels, sources and noise draw from separate child streams of `seed`, so each is
    reproducible on its own.
    """
    label_rng, source_rng, noise_rng = (np.random.default_rng(s) for s in seed.spawn(3))
    y = label_rng.permutation(np.repeat(np.array([0, 1], dtype=np.int32), n // 2))
    sources = sample_sources(source_rng, n // 2, config)
    signals = np.zeros((n, len(config.detectors), config.n_samples))
    signals[y == 1] = injections(sources, config, psd, projector, on_batch)

    noise_psd = design_psd(config.sample_rate, 2 * config.n_samples, config.f_lower)
    x = whitened_windows(noise_rng, signals, psd, noise_psd, config)

    def per_example(values: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan, dtype=np.float32)
        out[y == 1] = values
        return out

    clean = None
    if config.keep_clean:
        clean = whiten(signals, psd, config.sample_rate, taper=config.whiten_taper).astype(np.float32)
    return Split(
        x=x,
        y=y,
        snr=per_example(sources.snr),
        mass1=per_example(sources.mass1),
        mass2=per_example(sources.mass2),
        clean=clean,
    )


def injections(
    sources: Sources,
    config: GWDataConfig,
    psd: np.ndarray,
    projector: WindowProjector,
    on_batch: Callable[[int], object] | None = None,
) -> np.ndarray:
    """(n, n_detectors, n_samples) detector strain of `sources`, scaled to their target network SNR.

    The SNR is measured where the network looks: on the window, over f >= f_lower, with the
    PSD used for whitening.
    """
    fplus, fcross, delay = detector_response(config.detectors, sources.ra, sources.dec, sources.psi, config.gps_time)
    t_arrival = sources.t_merger[:, None] + delay
    strain = projector(imrphenomd_parameters(sources), fplus, fcross, t_arrival, on_batch=on_batch)
    return scaled_to_snr(strain, sources.snr, psd, config.sample_rate, config.f_lower)
