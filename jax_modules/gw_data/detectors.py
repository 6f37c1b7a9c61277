"""Detector response from bilby's geometry: antenna patterns F+, Fx and delays from the geocenter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def detector_response(
    detectors: Sequence[str], ra: np.ndarray, dec: np.ndarray, psi: np.ndarray, gps_time: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F+, Fx and arrival delay after the geocenter [s], each (n, n_detectors).

    Calls bilby's `Interferometer.antenna_response` and `time_delay_from_geocenter` per source
    (microseconds each): the field's own geometry, so nothing here needs checking against it.
    """
    from bilby.gw.detector import InterferometerList  # heavy import, only where projection happens

    ifos = InterferometerList(list(detectors))
    ra, dec, psi = (np.asarray(a, dtype=np.float64) for a in (ra, dec, psi))
    shape = (ra.size, len(ifos))
    fplus, fcross, delay = np.empty(shape), np.empty(shape), np.empty(shape)
    for i, (r, d, p) in enumerate(zip(ra, dec, psi)):
        for j, ifo in enumerate(ifos):
            fplus[i, j] = ifo.antenna_response(r, d, gps_time, p, "plus")
            fcross[i, j] = ifo.antenna_response(r, d, gps_time, p, "cross")
            delay[i, j] = ifo.time_delay_from_geocenter(r, d, gps_time)
    return fplus, fcross, delay
