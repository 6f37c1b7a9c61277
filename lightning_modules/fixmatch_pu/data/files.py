"""The user's cryo-EM data: MRC micrographs (mrcfile) with particle coordinates in a RELION STAR
file (starfile) or in Topaz's tab-separated coordinate format, and writers for the simulator's
micrographs in the same formats (so the simulated data set can be opened by the field's tools).

Every reader raises `DataFileError` with one line naming the file, the problem and what is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lightning_modules.cvkan.data.errors import DataFileError, file_error

__all__ = ["read_micrograph", "write_micrograph", "read_star_coordinates", "write_star_coordinates",
           "read_topaz_coordinates", "write_topaz_coordinates", "read_picked_micrographs", "DataFileError"]

_MRC = "an MRC file holding one 2-D micrograph (mode 0, 1, 2 or 6)"
_STAR = ("a RELION STAR file with rlnCoordinateX and rlnCoordinateY columns (and rlnMicrographName when it "
         "lists several micrographs)")
_TOPAZ = "a tab-separated Topaz file with columns image_name, x_coord, y_coord (and optionally score)"


def read_micrograph(path: str | os.PathLike) -> np.ndarray:
    """The micrograph (rows, cols) float32 in an MRC file (a single-section stack is accepted)."""
    import mrcfile

    try:
        with mrcfile.open(path, permissive=False) as mrc:
            data = np.asarray(mrc.data, dtype=np.float32)
    except FileNotFoundError:
        raise file_error(path, "no such file", _MRC) from None
    except (ValueError, OSError) as error:
        raise file_error(path, f"not a valid MRC file ({error})", _MRC) from None
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2 or min(data.shape) < 2 or not np.isfinite(data).all():
        raise file_error(path, f"holds an array of shape {data.shape}{'' if np.isfinite(data).all() else ' with NaN/Inf'}",
                         _MRC)
    return data


def write_micrograph(path: str | os.PathLike, image: np.ndarray, pixel_a: float) -> None:
    """Write a micrograph as MRC (float32) with its pixel size in Angstrom."""
    import mrcfile

    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(image, dtype=np.float32))
        mrc.voxel_size = pixel_a


def read_star_coordinates(path: str | os.PathLike, micrograph: str | None = None) -> np.ndarray:
    """Particle centres (n, 2) as (row, col) pixels from a STAR file; `micrograph` selects the rows of
    one micrograph (by file name, as rlnMicrographName ends) when the file lists several."""
    import starfile

    try:
        data = starfile.read(path, always_dict=True)
    except FileNotFoundError:
        raise file_error(path, "no such file", _STAR) from None
    except Exception as error:  # noqa: BLE001 - starfile raises many kinds on malformed text
        raise file_error(path, f"not a readable STAR file ({type(error).__name__}: {error})", _STAR) from None
    table = next((t for t in data.values() if hasattr(t, "columns") and {"rlnCoordinateX", "rlnCoordinateY"}
                  <= set(t.columns)), None)
    if table is None:
        raise file_error(path, "has no table with rlnCoordinateX and rlnCoordinateY", _STAR)
    if micrograph is not None and "rlnMicrographName" in table.columns:
        table = table[table["rlnMicrographName"].astype(str).map(lambda n: Path(n).name == Path(micrograph).name)]
    return _centres(path, table["rlnCoordinateX"], table["rlnCoordinateY"], _STAR)


def write_star_coordinates(path: str | os.PathLike, centres: np.ndarray, micrograph: str) -> None:
    """Write particle centres (row, col) as a RELION STAR particle table for `micrograph`."""
    import pandas as pd
    import starfile

    table = pd.DataFrame({"rlnMicrographName": [micrograph] * len(centres),
                          "rlnCoordinateX": np.asarray(centres)[:, 1].astype(float),
                          "rlnCoordinateY": np.asarray(centres)[:, 0].astype(float)})
    starfile.write({"particles": table}, path, overwrite=True)


def read_topaz_coordinates(path: str | os.PathLike, micrograph: str | None = None) -> np.ndarray:
    """Particle centres (n, 2) as (row, col) from a Topaz coordinate file (x is the column)."""
    import pandas as pd

    try:
        table = pd.read_csv(path, sep="\t")
    except FileNotFoundError:
        raise file_error(path, "no such file", _TOPAZ) from None
    except Exception as error:  # noqa: BLE001 - pandas parser errors
        raise file_error(path, f"not readable as tab-separated text ({type(error).__name__})", _TOPAZ) from None
    if not {"image_name", "x_coord", "y_coord"} <= set(table.columns):
        raise file_error(path, f"has columns {list(table.columns)}", _TOPAZ)
    if micrograph is not None:
        table = table[table["image_name"].astype(str).map(lambda n: Path(n).stem == Path(micrograph).stem)]
    return _centres(path, table["x_coord"], table["y_coord"], _TOPAZ)


def write_topaz_coordinates(path: str | os.PathLike, centres: np.ndarray, micrograph: str) -> None:
    """Write particle centres (row, col) in Topaz's coordinate format."""
    lines = ["image_name\tx_coord\ty_coord"] + [f"{Path(micrograph).stem}\t{int(c)}\t{int(r)}" for r, c in centres]
    Path(path).write_text("\n".join(lines) + "\n")


def _centres(path: str | os.PathLike, x, y, allowed: str) -> np.ndarray:
    try:
        cols, rows = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise file_error(path, "has coordinates that are not numbers", allowed) from None
    if not (np.isfinite(cols).all() and np.isfinite(rows).all()):
        raise file_error(path, "has NaN or infinite coordinates", allowed)
    return np.rint(np.stack([rows, cols], axis=1)).astype(np.int64).reshape(-1, 2)


def read_picked_micrographs(folder: str | os.PathLike, coordinates: str | os.PathLike
                            ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Every `*.mrc` micrograph of `folder` (sorted by name) with its particle centres (row, col)
    from `coordinates`: a RELION STAR file (`.star`) or a Topaz coordinate file (any other suffix).

    Raises:
        DataFileError: no MRC file in the folder, a file that is not its format, a micrograph with no
            particle listed, or a coordinate outside its micrograph.
    """
    paths = sorted(Path(folder).glob("*.mrc"))
    if not paths:
        raise file_error(folder, "holds no .mrc file", "a folder of MRC micrographs (*.mrc)")
    star = Path(coordinates).suffix.lower() == ".star"
    read = read_star_coordinates if star else read_topaz_coordinates
    out = []
    for path in paths:
        image = read_micrograph(path)
        centres = read(coordinates, micrograph=path.name)
        if len(centres) == 0:
            raise file_error(coordinates, f"lists no particle for micrograph {path.name}", _STAR if star else _TOPAZ)
        outside = (centres < 0).any(axis=1) | (centres >= np.array(image.shape)).any(axis=1)
        if outside.any():
            r, c = centres[np.flatnonzero(outside)[0]]
            raise file_error(coordinates, f"has {int(outside.sum())} coordinate(s) outside micrograph {path.name} "
                             f"({image.shape[1]} x {image.shape[0]} pixels), e.g. x={c}, y={r}",
                             "coordinates within the micrograph, in pixels")
        out.append((path.name, image, centres))
    return out
