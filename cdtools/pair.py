"""load_pair: two dates, each a file, a list of tiles or a folder, lazily on one grid.

Every tile is read through a GDAL WarpedVRT onto the chosen grid (so nothing is
reprojected until a chunk is asked for), tiles of one date are mosaicked first-valid-wins
(as a GDAL VRT would), and the two dates are stacked as ``(time, band, y, x)`` float32
with NaN where a date has no data. Values stay as stored: normalisation belongs to the
model and happens at prediction time.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine, from_origin
from rasterio.warp import transform_bounds

from cdtools.errors import GridError, ParameterError, RasterError
from cdtools.raster import PathLike, RasterInfo, describe

GridChoice = Literal["before", "after", "intersection", "union"]
Tiles = PathLike | Sequence[PathLike]
RASTER_SUFFIXES = {".tif", ".tiff", ".vrt", ".img", ".jp2"}


def load_pair(
    before: Tiles,
    after: Tiles,
    *,
    bands: Sequence[int] | None = None,
    grid: GridChoice = "intersection",
    resolution: float | None = None,
    resampling: str = "bilinear",
    chunks: Any = "auto",
) -> Any:
    """Open two dates as one lazy ``(time, band, y, x)`` DataArray on a common grid.

    Args:
        before: the earlier date: a raster file, a list of tiles, or a folder of tiles.
        after: the later date, the same way; it may have another CRS, resolution and extent.
        bands: 0-based band indices to keep (all when None).
        grid: "before" or "after" (that date's CRS, resolution and extent),
            "intersection" (default) or "union" of both footprints, in the before CRS.
        resolution: pixel size of the grid in its CRS units (default: the before date's,
            or the after date's with ``grid="after"``).
        resampling: a rasterio resampling name ("bilinear", "nearest", "cubic", ...).
        chunks: dask chunks of each date, as rioxarray takes them ("auto": 1024 x 1024
            pixels, all bands).

    Returns:
        An ``xarray.DataArray`` with ``time = ["before", "after"]``, the grid's CRS and
        transform (``.rio``), float32 values and NaN where a date has no data.

    Example:
        >>> pair = load_pair("pre_tiles/", "post.tif", grid="intersection")  # doctest: +SKIP
        >>> pair.sizes  # doctest: +SKIP
        Frozen({'time': 2, 'band': 3, 'y': 2048, 'x': 1536})
    """
    from rasterio.enums import Resampling

    if grid not in ("before", "after", "intersection", "union"):
        raise ParameterError(f"grid must be before, after, intersection or union, got {grid!r}.")
    if resampling not in Resampling.__members__:
        raise ParameterError(f"unknown resampling {resampling!r}; try 'bilinear' or 'nearest'.")
    dates = {"before": _tiles(before), "after": _tiles(after)}
    infos = {name: [describe(f) for f in files] for name, files in dates.items()}
    counts = {info.count for tiles in infos.values() for info in tiles}
    if len(counts) != 1:
        raise GridError(
            f"the tiles have different band counts ({sorted(counts)}); use the same bands for "
            "every tile of both dates."
        )
    for name, tiles in infos.items():
        if any(info.crs is None for info in tiles):
            raise GridError(f"a {name} tile has no CRS; load_pair needs georeferenced rasters.")
    crs, transform, width, height = target_grid(infos["before"], infos["after"], grid, resolution)
    stacked = [
        _mosaic(dates[name], crs, transform, width, height, Resampling[resampling], chunks)
        for name in ("before", "after")
    ]
    import xarray as xr

    pair = xr.concat(stacked, dim="time").assign_coords(time=["before", "after"])
    if bands is not None:
        bad = [b for b in bands if not 0 <= b < pair.sizes["band"]]
        if bad:
            raise ParameterError(
                f"bands {bad} do not exist; use 0-based indices below {pair.sizes['band']}."
            )
        pair = pair.isel(band=list(bands))
    return pair.rio.write_crs(crs).rio.write_transform(transform).rename("pair")


def _tiles(date: Tiles) -> list[Path]:
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


def target_grid(
    before: Sequence[RasterInfo],
    after: Sequence[RasterInfo],
    grid: GridChoice,
    resolution: float | None,
) -> tuple[CRS, Affine, int, int]:
    """(crs, transform, width, height) of the grid both dates are read onto.

    Bounds are snapped outward to whole pixels of the reference date's own grid, so a
    date already on that grid is read without resampling.
    """
    reference = after if grid == "after" else before
    crs = reference[0].crs
    res = resolution or reference[0].res[0]
    b, a = _footprint(before, crs), _footprint(after, crs)
    if grid == "before":
        box = b
    elif grid == "after":
        box = a
    elif grid == "union":
        box = (min(b[0], a[0]), min(b[1], a[1]), max(b[2], a[2]), max(b[3], a[3]))
    else:
        box = (max(b[0], a[0]), max(b[1], a[1]), min(b[2], a[2]), min(b[3], a[3]))
    if (
        box[0] >= box[2]
        or box[1] >= box[3]
        or b[0] >= a[2]
        or a[0] >= b[2]
        or b[1] >= a[3]
        or a[1] >= b[3]
    ):
        raise GridError(
            f"before and after do not overlap: in {crs.to_string()} the before footprint is "
            f"{_fmt(b)} and the after footprint is {_fmt(a)}; check that they show the same place."
        )
    origin_x, origin_y = reference[0].transform.c, reference[0].transform.f
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
