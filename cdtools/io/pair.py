"""load_pair: two dates, each a file, a list of tiles or a folder, lazily on one grid.

Every tile is read through a GDAL WarpedVRT onto the chosen grid (so nothing is
reprojected until a chunk is asked for), tiles of one date are mosaicked first-valid-wins
(as a GDAL VRT would), and the two dates are stacked as ``(time, band, y, x)`` float32
with NaN where a date has no data. Values stay as stored: normalisation belongs to the
model and happens at prediction time. :func:`common_grid` and :func:`stack_dates` do the
same for any number of dates (:func:`cdtools.io.series.load_series`).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine, from_origin
from rasterio.warp import transform_bounds

from cdtools.errors import CdtoolsWarning, GridError, ParameterError, RasterError
from cdtools.io.raster import PathLike, RasterInfo, bands_first, describe

if TYPE_CHECKING:
    import xarray as xr

GridChoice = Literal["before", "after", "intersection", "union"]
Extent = Literal["reference", "intersection", "union"]
ResamplingName = Literal[
    "nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "gauss",
    "max", "min", "med", "q1", "q3", "sum", "rms",
]  # fmt: skip
"""The names of rasterio's ``Resampling`` methods."""
Grid = tuple[CRS, Affine, int, int]
"""(crs, transform, width, height) of a target grid."""
Tiles = PathLike | Sequence[PathLike]
RASTER_SUFFIXES = {".tif", ".tiff", ".vrt", ".img", ".jp2"}


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
        [_mosaic(files, crs, transform, width, height, resampling, chunks) for files in dates],
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
            da = rioxarray.open_rasterio(dates[name][0], chunks=_chunks(chunks), masked=True)
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


def tile_files(date: Tiles) -> list[Path]:
    """The raster files of a file, a folder (its rasters, sorted by name) or a list of both."""
    items = [date] if isinstance(date, str | Path) else list(date)
    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
            if not found:
                raise RasterError(
                    f"{item} holds no raster tiles ({', '.join(sorted(RASTER_SUFFIXES))})."
                )
            files += found
        else:
            files.append(item)
    if not files:
        raise RasterError("no raster files given for a date.")
    return files


def _footprint(tiles: Sequence[RasterInfo], crs: CRS) -> tuple[float, float, float, float]:
    """Union of the tiles' bounds, in ``crs``."""
    boxes = [transform_bounds(t.crs, crs, *t.bounds, densify_pts=21) for t in tiles]
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def common_grid(
    dates: Sequence[Sequence[RasterInfo]],
    *,
    reference: int,
    extent: Extent,
    resolution: float | None,
    names: Sequence[str],
) -> Grid:
    """(crs, transform, width, height) of the grid every date is read onto.

    The grid has the CRS and (unless ``resolution`` is given) the pixel size of the
    ``reference`` date, and covers that date's footprint ("reference"), the intersection
    or the union of all dates' footprints. Bounds are snapped outward to whole pixels of
    the reference date's own grid, so a date already on that grid is read without
    resampling. ``names`` (one per date) are what errors call the dates.
    """
    first = dates[reference][0]
    crs = first.crs
    res = resolution or first.res[0]
    boxes = [_footprint(tiles, crs) for tiles in dates]
    ref = boxes[reference]
    for index, other in enumerate(boxes):
        if other[0] >= ref[2] or ref[0] >= other[2] or other[1] >= ref[3] or ref[1] >= other[3]:
            i, j = sorted((index, reference))
            raise GridError(
                f"{names[i]} and {names[j]} do not overlap: in {crs.to_string()} the {names[i]} "
                f"footprint is {_fmt(boxes[i])} and the {names[j]} footprint is "
                f"{_fmt(boxes[j])}; check that they show the same place."
            )
    if extent == "reference":
        box = ref
    elif extent == "union":
        box = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
    else:
        box = (
            max(b[0] for b in boxes),
            max(b[1] for b in boxes),
            min(b[2] for b in boxes),
            min(b[3] for b in boxes),
        )
        if box[0] >= box[2] or box[1] >= box[3]:
            listed = "; ".join(f"{n} {_fmt(b)}" for n, b in zip(names, boxes, strict=True))
            raise GridError(
                f"the {len(boxes)} footprints have no area in common (in {crs.to_string()}: "
                f"{listed}); pass grid='union', or leave out the dates that miss the others."
            )
    origin_x, origin_y = first.transform.c, first.transform.f
    left = origin_x + np.floor((box[0] - origin_x) / res) * res
    top = origin_y - np.floor((origin_y - box[3]) / res) * res
    width = int(np.ceil((box[2] - left) / res - 1e-6))
    height = int(np.ceil((top - box[1]) / res - 1e-6))
    return crs, from_origin(left, top, res, res), width, height


def _fmt(box: tuple[float, float, float, float]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in box) + ")"


def _mosaic(
    files: Sequence[Path],
    crs: CRS,
    transform: Affine,
    width: int,
    height: int,
    resampling: Any,
    chunks: Any,
) -> Any:
    """One date's tiles put lazily onto the grid; the first tile with data wins.

    A tile already on the grid (same CRS and pixel size, whole-pixel offset, validity
    from a nodata value or none) is read directly and padded; any other goes through a
    GDAL WarpedVRT, several times slower.
    """
    import rasterio
    import rioxarray
    from rasterio.vrt import WarpedVRT

    xs = transform.c + (np.arange(width) + 0.5) * transform.a
    ys = transform.f + (np.arange(height) + 0.5) * transform.e
    placed = []
    for file in files:
        src = rasterio.open(file)
        offset = _offset_on_grid(src, crs, transform, (width, height))
        if offset is None:
            source: Any = WarpedVRT(
                src, crs=crs, transform=transform, width=width, height=height,
                resampling=resampling, dtype="float32", nodata=np.nan,
            )  # fmt: skip
        else:
            source = file
        da = rioxarray.open_rasterio(source, chunks=_chunks(chunks), masked=True)
        if offset is not None:
            da = _pad_onto_grid(da.astype(np.float32), offset, width, height)
        da = da.drop_vars("spatial_ref", errors="ignore").assign_coords(x=xs, y=ys)
        placed.append(da)
    return functools.reduce(lambda a, b: a.combine_first(b), placed)


def grid_offset(crs: Any, transform: Affine, grid_crs: Any, grid: Affine) -> tuple[int, int] | None:
    """(row, col) of a raster's first pixel on another grid, when it lies on it: same CRS,
    same pixel size, no rotation, a whole-pixel offset (it may be negative); else None."""
    if crs != grid_crs or transform.b or transform.d or grid.b or grid.d:
        return None
    if not np.allclose((transform.a, transform.e), (grid.a, grid.e), rtol=1e-9):
        return None
    col, row = (transform.c - grid.c) / grid.a, (transform.f - grid.f) / grid.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(row), round(col)


def _offset_on_grid(
    src: Any, crs: CRS, transform: Affine, size: tuple[int, int]
) -> tuple[int, int] | None:
    """(row, col) of ``src``'s first pixel on the grid when it can be read as it is."""
    from rasterio.enums import MaskFlags

    offset = grid_offset(src.crs, src.transform, crs, transform)
    if offset is None:
        return None
    masked = {MaskFlags.per_dataset, MaskFlags.alpha}
    if any(masked & set(flags) for flags in src.mask_flag_enums):
        return None  # validity from an internal mask: GDAL's warper reads it
    (row, col), (width, height) = offset, size
    if row >= height or col >= width or row + src.height <= 0 or col + src.width <= 0:
        return None  # no pixel on the grid: the warper gives the all-NaN placeholder
    return row, col


def _pad_onto_grid(da: Any, offset: tuple[int, int], width: int, height: int) -> Any:
    """Crop a tile to the grid and pad it with NaN to the grid's size."""
    row, col = offset
    top, left = max(row, 0), max(col, 0)
    da = da.isel(
        y=slice(top - row, min(da.sizes["y"], height - row)),
        x=slice(left - col, min(da.sizes["x"], width - col)),
    )
    bottom, right = height - top - da.sizes["y"], width - left - da.sizes["x"]
    return da.pad(y=(top, bottom), x=(left, right), constant_values=np.nan)


def _chunks(chunks: Any) -> Any:
    if chunks == "auto":  # squares of 1024: dask's own "auto" makes strips of 100+ MB
        return {"band": -1, "y": 1024, "x": 1024}
    if isinstance(chunks, tuple):
        return dict(zip(("band", "y", "x"), chunks, strict=True))
    return chunks


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
