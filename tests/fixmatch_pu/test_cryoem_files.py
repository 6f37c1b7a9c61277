"""Document 004's file formats: MRC micrographs, RELION STAR and Topaz coordinates, written here and
read back; malformed files rejected in one line naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lightning_modules.fixmatch_pu.data import (
    DataFileError,
    MicrographConfig,
    read_micrograph,
    read_star_coordinates,
    read_topaz_coordinates,
    simulate_micrograph,
    write_micrograph,
    write_star_coordinates,
    write_topaz_coordinates,
)


@pytest.fixture(scope="module")
def simulated():
    image, centres, _ = simulate_micrograph(MicrographConfig(field=128, box=16, n_particles=6, seed=1))
    return image, centres


def test_a_simulated_micrograph_round_trips_through_mrc_star_and_topaz(tmp_path: Path, simulated) -> None:
    image, centres = simulated
    write_micrograph(tmp_path / "mic_001.mrc", image, pixel_a=2.0)
    assert np.array_equal(read_micrograph(tmp_path / "mic_001.mrc"), image)
    write_star_coordinates(tmp_path / "particles.star", centres, "Micrographs/mic_001.mrc")
    assert np.array_equal(read_star_coordinates(tmp_path / "particles.star", "mic_001.mrc"), centres)
    write_topaz_coordinates(tmp_path / "particles.txt", centres, "mic_001.mrc")
    assert np.array_equal(read_topaz_coordinates(tmp_path / "particles.txt", "mic_001"), centres)


def test_a_star_file_of_several_micrographs_is_filtered_by_name(tmp_path: Path) -> None:
    (tmp_path / "two.star").write_text(
        "\ndata_particles\n\nloop_\n_rlnMicrographName #1\n_rlnCoordinateX #2\n_rlnCoordinateY #3\n"
        "a/mic_1.mrc 10.0 20.0\na/mic_2.mrc 30.4 40.6\na/mic_2.mrc 5 6\n")
    assert read_star_coordinates(tmp_path / "two.star", "mic_2.mrc").tolist() == [[41, 30], [6, 5]]
    assert len(read_star_coordinates(tmp_path / "two.star")) == 3


@pytest.mark.parametrize("name, content, reader, match", [
    ("bad.mrc", b"not an mrc file at all" * 100, read_micrograph, "not a valid MRC file"),
    ("none.star", "data_x\n\nloop_\n_rlnAngleRot #1\n1.0\n", read_star_coordinates, "rlnCoordinateX"),
    ("cols.txt", "name\tx\ty\na\t1\t2\n", read_topaz_coordinates, "has columns"),
    ("nan.txt", "image_name\tx_coord\ty_coord\na\tnan\t2\n", read_topaz_coordinates, "NaN"),
    ("missing.mrc", None, read_micrograph, "no such file"),
])
def test_malformed_files_are_one_line_errors_naming_the_file(tmp_path: Path, name, content, reader, match) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(DataFileError, match=match) as error:
        reader(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value) and "allowed:" in str(error.value)
