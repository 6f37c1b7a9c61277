"""The one error type of the poetry data loaders: cvkan's `DataFileError`, shared so callers catch one type."""

from __future__ import annotations

from lightning_modules.cvkan.data.errors import DataFileError, file_error

__all__ = ["DataFileError", "file_error"]
