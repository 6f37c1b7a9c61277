"""The research notes the projects reproduce (`shared/seeds/`), by file, with readable titles.

A finding, a report or a claims table names a document by `label(file)` ("Document 001:
Representation learning whose gradients never flowed"), never by its file hash alone.
Standard library only.
"""

from __future__ import annotations

__all__ = ["TITLES", "label", "number"]

TITLES: dict[str, str] = {
    "000_940c272a91a05c21.txt": "CPC + spiking network for gravitational-wave detection",
    "001_bac714bd05ae718b.txt": "Representation learning whose gradients never flowed",
    "002_295b5450c3336e21.txt": "LSTM-attention autoencoder of poems",
    "003_65b12435998d9bd4.txt": "Complex-valued KAN research log",
    "004_4f6c1e6198528e09.txt": "FixMatch with positive-unlabeled learning for cryo-EM",
}


def number(file: str) -> str:
    """The document's number, the part of its file name before the first '_' ("001")."""
    return file.split("_", 1)[0]


def label(file: str) -> str:
    """"Document 001 (Representation learning whose gradients never flowed)"; a document not in
    `TITLES` (a user's own project) by its file name alone."""
    title = TITLES.get(file)
    return f"Document {number(file)} ({title})" if title else f"Document {file}"
