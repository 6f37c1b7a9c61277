"""Detector response from bilby's geometry: antenna patterns F+, Fx and delays from the geocenter.

bilby supplies each detector's tensor and vertex and the sidereal time (`detector_geometry`, the
field's own numbers); `project` evaluates bilby's formulas (Nishizawa et al. 2009 wave frame,
XLAL arrival-time difference) vectorised over sources, so the training process can project fresh
injections every epoch from stored geometry without importing bilby.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["SPEED_OF_LIGHT", "DetectorGeometry", "detector_geometry", "detector_response", "project"]

#: Speed of light [m/s], as bilby's delay uses it.
SPEED_OF_LIGHT = 299792458.0


@dataclass(frozen=True, eq=False)
class DetectorGeometry:
    """Detectors at one GPS time: tensors (D, 3, 3), vertices (D, 3) [m], and Greenwich mean
    sidereal time [rad] (mod 2 pi)."""

    tensors: np.ndarray
    vertices: np.ndarray
    gmst: float

    def __post_init__(self) -> None:
        d = len(self.tensors)
        if self.tensors.shape != (d, 3, 3) or self.vertices.shape != (d, 3) or d == 0:
            raise ValueError(f"tensors {self.tensors.shape} and vertices {self.vertices.shape}; allowed: "
                             "(D, 3, 3) and (D, 3) with D >= 1")


def detector_geometry(detectors: Sequence[str], gps_time: float) -> DetectorGeometry:
    """bilby's tensors and vertices of `detectors` and the sidereal time at `gps_time`."""
    from bilby.gw.detector import InterferometerList  # heavy import, only where geometry is made
    from bilby.gw.utils import greenwich_mean_sidereal_time  # bilby_cython's, as bilby exports it

    ifos = InterferometerList(list(detectors))
    return DetectorGeometry(np.stack([np.asarray(ifo.geometry.detector_tensor, np.float64) for ifo in ifos]),
                            np.stack([np.asarray(ifo.geometry.vertex, np.float64) for ifo in ifos]),
                            float(np.fmod(greenwich_mean_sidereal_time(gps_time), 2 * np.pi)))


def project(geometry: DetectorGeometry, ra: np.ndarray, dec: np.ndarray,
            psi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F+, Fx and arrival delay after the geocenter [s] of sources at (ra, dec, psi), each (n, D)."""
    ra, dec, psi = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (ra, dec, psi))
    phi, theta = ra - geometry.gmst, np.pi / 2 - dec
    cphi, sphi, cth, sth, cpsi, spsi = np.cos(phi), np.sin(phi), np.cos(theta), np.sin(theta), np.cos(psi), np.sin(psi)
    m = np.stack([-cth * cphi * spsi + sphi * cpsi, -cth * sphi * spsi - cphi * cpsi, sth * spsi], axis=-1)
    n = np.stack([-cth * cphi * cpsi - sphi * spsi, -cth * sphi * cpsi + cphi * spsi, sth * cpsi], axis=-1)
    plus = m[:, :, None] * m[:, None, :] - n[:, :, None] * n[:, None, :]      # (n, 3, 3)
    cross = m[:, :, None] * n[:, None, :] + n[:, :, None] * m[:, None, :]
    fplus = np.einsum("dij,sij->sd", geometry.tensors, plus)
    fcross = np.einsum("dij,sij->sd", geometry.tensors, cross)
    direction = np.stack([sth * cphi, sth * sphi, cth], axis=-1)             # towards the source
    delay = -(direction @ geometry.vertices.T) / SPEED_OF_LIGHT
    return fplus, fcross, delay


def detector_response(
    detectors: Sequence[str], ra: np.ndarray, dec: np.ndarray, psi: np.ndarray, gps_time: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F+, Fx and arrival delay after the geocenter [s], each (n, n_detectors), from bilby's geometry."""
    return project(detector_geometry(detectors, gps_time), ra, dec, psi)
