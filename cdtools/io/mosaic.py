"""Each date's tiles onto one grid: the grid, and a date's tiles mosaicked lazily on it.

:func:`common_grid` chooses the grid every date is read onto (a reference date's CRS and
pixel size, over its footprint, the intersection or the union of all of them), and
:func:`mosaic` puts one date's tiles onto it: a tile already on the grid is read directly
and padded, any other through a GDAL WarpedVRT (nothing is reprojected until a chunk is
asked for), and the first tile with data wins, as in a GDAL VRT.
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

from cdtools.errors import GridError, RasterError
from cdtools.io.raster import PathLike, RasterInfo

Extent = Literal["reference", "intersection", "union"]
Grid = tuple[CRS, Affine, int, int]
"""(crs, transform, width, height) of a target grid."""
Tiles = PathLike | Sequence[PathLike]
RASTER_SUFFIXES = {".tif", ".tiff", ".vrt", ".img", ".jp2"}


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


def mosaic(
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
        da = rioxarray.open_rasterio(source, chunks=read_chunks(chunks), masked=True)
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


def read_chunks(chunks: Any) -> Any:
    """rioxarray's ``chunks`` for one date: "auto" is squares of 1024 pixels, all bands."""
    if chunks == "auto":  # squares of 1024: dask's own "auto" makes strips of 100+ MB
        return {"band": -1, "y": 1024, "x": 1024}
    if isinstance(chunks, tuple):
        return dict(zip(("band", "y", "x"), chunks, strict=True))
    return chunks
