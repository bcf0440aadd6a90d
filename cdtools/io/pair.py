"""load_pair: two dates, each a file, a list of tiles or a folder, lazily on one grid.

Both dates are read onto one grid (:mod:`cdtools.io.mosaic`: a tile already on it
directly, any other through a GDAL WarpedVRT, so nothing is reprojected until a chunk is
asked for; tiles of one date mosaicked first-valid-wins) and stacked as
``(time, band, y, x)`` float32 with NaN where a date has no data. Values stay as stored:
normalisation belongs to the model and happens at prediction time. :func:`stack_dates`
does the same for any number of dates (:func:`cdtools.io.series.load_series`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cdtools.errors import CdtoolsWarning, GridError, ParameterError
from cdtools.io.mosaic import Grid, Tiles, common_grid, mosaic, read_chunks, tile_files
from cdtools.io.raster import RasterInfo, bands_first, describe

if TYPE_CHECKING:
    import xarray as xr

GridChoice = Literal["before", "after", "intersection", "union"]
ResamplingName = Literal[
    "nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "gauss",
    "max", "min", "med", "q1", "q3", "sum", "rms",
]  # fmt: skip
"""The names of rasterio's ``Resampling`` methods."""


def load_pair(
    before: Tiles | np.ndarray,
    after: Tiles | np.ndarray,
    *,
    bands: Sequence[int] | None = None,
    grid: GridChoice = "intersection",
    resolution: float | None = None,
    resampling: ResamplingName = "bilinear",
    chunks: Any = "auto",
) -> xr.DataArray:
    """Open two dates as one lazy ``(time, band, y, x)`` DataArray on a common grid.

    Args:
        before: the earlier date: a raster file, a list of tiles, a folder of tiles, or an
            image array (see :func:`array_pair`).
        after: the later date, the same way; it may have another CRS, resolution and extent.
        bands: 0-based band indices to keep (all when None).
        grid: "before" or "after" (that date's CRS, resolution and extent),
            "intersection" (default) or "union" of both footprints, in the before CRS.
        resolution: pixel size of the grid in its CRS units (default: the before date's,
            or the after date's with ``grid="after"``).
        resampling: a rasterio resampling name ("bilinear", "nearest", "cubic", ...).
        chunks: dask chunks of each date, as rioxarray takes them ("auto": 1024 x 1024
            pixels, all bands).

    Images without georeferencing (a PNG or JPEG pair, photographs) are paired pixel
    for pixel when both are one image of the same size: pixel coordinates, no CRS, and a
    :class:`~cdtools.errors.CdtoolsWarning` saying so (``grid`` and ``resolution`` do not
    apply). Sizes that differ are a :class:`~cdtools.errors.GridError` naming both.

    Returns:
        An ``xarray.DataArray`` with ``time = ["before", "after"]``, the grid's CRS and
        transform (``.rio``), float32 values and NaN where a date has no data.

    Example:
        >>> pair = load_pair("pre_tiles/", "post.tif", grid="intersection")  # doctest: +SKIP
        >>> pair.sizes  # doctest: +SKIP
        Frozen({'time': 2, 'band': 3, 'y': 2048, 'x': 1536})
    """
    if grid not in ("before", "after", "intersection", "union"):
        raise ParameterError(f"grid must be before, after, intersection or union, got {grid!r}.")
    if isinstance(before, np.ndarray) or isinstance(after, np.ndarray):
        return array_pair(before, after, bands=bands)
    method = resampling_method(resampling)
    dates = {"before": tile_files(before), "after": tile_files(after)}
    infos = {name: [describe(f) for f in files] for name, files in dates.items()}
    counts = {info.count for tiles in infos.values() for info in tiles}
    if len(counts) != 1:
        raise GridError(
            f"the tiles have different band counts ({sorted(counts)}); use the same bands for "
            "every tile of both dates."
        )
    if any(info.crs is None for tiles in infos.values() for info in tiles):
        pair = _pixel_pair(dates, infos, chunks=chunks)
        pair = select_bands(pair, bands)
        return pair.assign_coords(time=["before", "after"]).rename("pair")
    target = common_grid(
        [infos["before"], infos["after"]],
        reference=1 if grid == "after" else 0,
        extent="reference" if grid in ("before", "after") else grid,
        resolution=resolution,
        names=("before", "after"),
    )
    pair = stack_dates(
        [dates["before"], dates["after"]], target, bands=bands, resampling=method, chunks=chunks
    )
    return pair.assign_coords(time=["before", "after"]).rename("pair")


def resampling_method(resampling: str) -> Any:
    """The rasterio ``Resampling`` member called ``resampling``, or a :class:`ParameterError`."""
    from rasterio.enums import Resampling

    if resampling not in Resampling.__members__:
        raise ParameterError(f"unknown resampling {resampling!r}; try 'bilinear' or 'nearest'.")
    return Resampling[resampling]


def stack_dates(
    dates: Sequence[Sequence[Path]],
    grid: Grid,
    *,
    bands: Sequence[int] | None,
    resampling: Any,
    chunks: Any,
) -> Any:
    """Every date's tiles mosaicked lazily onto ``grid``, stacked along ``time``.

    Returns a ``(time, band, y, x)`` float32 DataArray without a time coordinate, keeping
    the 0-based ``bands`` (all when None), with the grid's CRS and transform.
    """
    import xarray as xr

    crs, transform, width, height = grid
    stacked = xr.concat(
        [mosaic(files, crs, transform, width, height, resampling, chunks) for files in dates],
        dim="time",
    )
    stacked = select_bands(stacked, bands)
    return stacked.rio.write_crs(crs).rio.write_transform(transform)


def select_bands(stacked: Any, bands: Sequence[int] | None) -> Any:
    """The 0-based ``bands`` of a ``(time, band, y, x)`` stack (all when None)."""
    if bands is None:
        return stacked
    count = stacked.sizes["band"]
    bad = [b for b in bands if not 0 <= b < count] if bands else list(bands)
    if bad or not bands:
        raise ParameterError(
            f"bands {bad} do not exist in these rasters of {count} bands; use 0-based "
            f"indices below {count}."
        )
    return stacked.isel(band=list(bands))


def _pixel_pair(
    dates: dict[str, list[Path]], infos: dict[str, list[RasterInfo]], *, chunks: Any
) -> Any:
    """Two images without georeferencing (photographs, PNG or JPEG pairs) paired pixel for
    pixel: the same size is required, coordinates are pixel centres and there is no CRS."""
    import rioxarray
    import xarray as xr
    from rasterio.errors import NotGeoreferencedWarning

    for name, tiles in infos.items():
        if len(tiles) > 1:
            raise GridError(
                f"the {name} date is {len(tiles)} tiles and some have no CRS: tiles without "
                "georeferencing cannot be put together; georeference them, or give one image "
                "per date."
            )
    (before,), (after,) = infos["before"], infos["after"]
    if (before.crs is None) != (after.crs is None):
        plain, other = ("before", "after") if before.crs is None else ("after", "before")
        raise GridError(
            f"the {plain} image has no CRS but the {other} image has one; georeference both "
            "(or neither, to pair them pixel for pixel)."
        )
    if (before.width, before.height) != (after.width, after.height):
        raise GridError(
            f"neither image is georeferenced and their sizes differ (before {before.width} x "
            f"{before.height}, after {after.width} x {after.height} pixels): without a CRS the "
            "dates can only be paired pixel for pixel; crop or resample them to one size, or "
            "georeference them."
        )
    warnings.warn(
        f"{dates['before'][0].name} and {dates['after'][0].name} have no georeferencing: they "
        "are paired pixel for pixel, on pixel coordinates, and outputs carry no CRS.",
        CdtoolsWarning,
        stacklevel=3,
    )
    opened = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        for name in ("before", "after"):
            da = rioxarray.open_rasterio(dates[name][0], chunks=read_chunks(chunks), masked=True)
            opened.append(da.astype(np.float32).drop_vars("spatial_ref", errors="ignore"))
    return xr.concat(opened, dim="time")


def array_pair(before: Any, after: Any, *, bands: Sequence[int] | None = None) -> xr.DataArray:
    """Two image arrays of one size as the pair :func:`load_pair` makes of two plain images:
    ``(time, band, y, x)`` float32 in memory, on pixel coordinates, without a CRS.

    Args:
        before: the earlier date, ``(bands, h, w)``, ``(h, w)`` or ``(h, w, bands)``
            (see :func:`cdtools.io.raster.bands_first`); NaN marks no data.
        after: the later date, the same way and of the same size.
        bands: 0-based band indices to keep (all when None).

    Returns:
        An ``xarray.DataArray`` with ``time = ["before", "after"]``, named "pair".

    Example:
        >>> array_pair(np.zeros((3, 64, 48)), np.ones((3, 64, 48))).sizes["x"]
        48
    """
    import rioxarray  # noqa: F401 (registers the .rio accessor)
    import xarray as xr

    if not (isinstance(before, np.ndarray) and isinstance(after, np.ndarray)):
        raise ParameterError(
            f"before is a {type(before).__name__} and after a {type(after).__name__}: pass "
            "both dates as arrays, or both as raster files."
        )
    dates = [bands_first(before), bands_first(after)]
    shapes = [d.shape for d in dates]
    if shapes[0] != shapes[1]:
        raise GridError(
            f"the before array {shapes[0]} and the after array {shapes[1]} (bands, height, "
            "width) differ in shape: arrays can only be paired pixel for pixel; crop or "
            "resample them to one size and the same bands."
        )
    _, height, width = shapes[0]
    pair = xr.DataArray(
        np.stack(dates).astype(np.float32),
        dims=("time", "band", "y", "x"),
        coords={
            "time": ["before", "after"],
            "band": np.arange(1, shapes[0][0] + 1),
            "y": np.arange(height) + 0.5,  # pixel centres, as rioxarray gives a plain image
            "x": np.arange(width) + 0.5,
        },
        name="pair",
    )
    return select_bands(pair, bands)


def padded_pair(pair: xr.DataArray, size: int) -> xr.DataArray:
    """``pair`` padded below and to the right with no data (NaN) to at least ``size`` pixels
    each way, its coordinates continued on its grid (predict_scene needs one whole tile)."""
    height, width = pair.sizes["y"], pair.sizes["x"]
    extra_y, extra_x = max(size - height, 0), max(size - width, 0)
    if not (extra_y or extra_x):
        return pair
    t = pair.rio.transform()
    padded = pair.pad(y=(0, extra_y), x=(0, extra_x), constant_values=np.nan)
    return padded.assign_coords(
        y=t.f + t.e * (np.arange(height + extra_y) + 0.5),
        x=t.c + t.a * (np.arange(width + extra_x) + 0.5),
    )
