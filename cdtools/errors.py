"""Errors raised by cdtools.

Every error a user can cause is a :class:`CdtoolsError` whose message names the problem
and the fix, so that a notebook shows one clear line instead of a library traceback.
"""

from __future__ import annotations


class CdtoolsError(Exception):
    """Base class of every error cdtools raises on purpose."""


class CdtoolsWarning(UserWarning):
    """Base class of cdtools' warnings (for example: training without pretrained weights)."""


class RasterError(CdtoolsError):
    """A file is missing, is not a raster, or cannot be read."""


class GridError(CdtoolsError):
    """Two rasters that must share a grid do not (CRS, resolution, extent, band count)."""


class LabelError(CdtoolsError):
    """Change labels are empty, outside the imagery, or use values cdtools cannot read."""


class ParameterError(CdtoolsError, ValueError):
    """An option has a value that cannot work (a stride of 0, a chip larger than the scene)."""


class OutputExistsError(CdtoolsError, FileExistsError):
    """The output already exists; cdtools does not overwrite unless asked to."""


class ChipsFolderError(CdtoolsError):
    """A folder of chips is not in a known layout, or its files do not match up."""


class DataUnavailableError(CdtoolsError):
    """A dataset or weight file from the manifest could not be found or downloaded."""


class ChecksumError(DataUnavailableError):
    """A downloaded or placed file does not match the checksum in the manifest."""
