"""Make a sample date look like delivered imagery: another CRS and resolution, in tiles.

Real pairs rarely share a grid: the later date comes from another provider, in another
projection and pixel size, cut into tiles. :func:`reproject_to_tiles` does that to any
georeferenced raster (usually a sample world's after date), so that
:func:`cdtools.load_pair` has to mosaic and align it. The warping is rasterio's
(``rasterio.warp``); only the cutting into tiles is written here.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
from pathlib import Path

import numpy as np
import rasterio
import rasterio.windows
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError
from rasterio.warp import calculate_default_transform, reproject
from rasterio.windows import Window

from cdtools.errors import ParameterError, RasterError
from cdtools.io.pair import ResamplingName
from cdtools.io.raster import PathLike, open_raster, write_geotiff
from cdtools.synthetic.outputs import (
    forget_record,
    reusable,
    write_record,
)

log = logging.getLogger(__name__)

_FORMAT = 1  # bump when the same arguments give different files
_RECORD = "tiles.json"


def reproject_to_tiles(
    src: PathLike,
    folder: PathLike,
    *,
    crs: CRS | str,
    resolution: float,
    tiles: tuple[int, int] = (2, 2),
    resampling: ResamplingName = "bilinear",
    overwrite: bool = False,
) -> list[Path]:
    """Reproject a raster to another CRS and pixel size and cut it into GeoTIFF tiles.

    The output grid is GDAL's default for the new CRS (``calculate_default_transform``)
    at ``resolution``; it is split into ``tiles`` (rows, columns) nearly equal,
    edge-to-edge tiles named ``<stem>_r<row>_c<col>.tif``. Pixels that the source does
    not cover (the corners a change of projection rotates in) are marked invalid in each
    tile's internal nodata mask, so every data value stays usable. Each tile is written
    atomically, and a small ``tiles.json`` record last, as for the sample world.

    Args:
        src: A georeferenced raster, such as ``make_scene_pair(...).after``.
        folder: Folder for the tiles (created if needed); hold nothing else there.
        crs: The new CRS, such as ``"EPSG:3857"`` or a neighbouring UTM zone.
        resolution: Pixel size in units of ``crs`` (metres for UTM and EPSG:3857).
        tiles: How many tiles down and across.
        resampling: A rasterio resampling name ("bilinear", "nearest", "cubic", ...).
        overwrite: Make the tiles again when ``folder`` already holds some; when False,
            tiles made there from the same file with the same arguments are reused
            (others raise).

    Returns:
        The tile paths, row by row.

    Raises:
        ParameterError: An argument cannot work (unknown CRS, resolution not positive,
            more tiles than pixels, ...).
        RasterError: ``src`` cannot be read or has no CRS.
        OutputExistsError: ``folder`` holds other tiles (pass ``overwrite=True``).

    Example:
        >>> import tempfile
        >>> from cdtools.synthetic import make_scene_pair
        >>> world = make_scene_pair(tempfile.mkdtemp(), size=256, seed=0)
        >>> paths = reproject_to_tiles(
        ...     world.after, world.folder / "after_tiles", crs="EPSG:32613", resolution=0.6
        ... )
        >>> [p.name for p in paths][:2]
        ['after_r0_c0.tif', 'after_r0_c1.tif']
    """
    dst_crs = _check_arguments(crs, resolution, tiles, resampling)
    src, folder = Path(src), Path(folder)
    rows, cols = int(tiles[0]), int(tiles[1])
    with open_raster(src) as source:
        if source.crs is None:
            raise RasterError(f"{src} has no CRS; reproject_to_tiles needs a georeferenced raster.")
        transform, width, height = calculate_default_transform(
            source.crs,
            dst_crs,
            source.width,
            source.height,
            *source.bounds,
            resolution=float(resolution),
        )
    if rows > height or cols > width:
        raise ParameterError(
            f"the reprojected raster is {height} x {width} pixels, too small for {rows} x "
            f"{cols} tiles; pass fewer tiles or a finer resolution."
        )
    arguments = {
        "format": _FORMAT,
        "source": _digest(src),
        "crs": dst_crs.to_string(),
        "resolution": float(resolution),
        "tiles": [rows, cols],
        "resampling": resampling,
    }
    windows = [
        Window(c0, r0, c1 - c0, r1 - r0)
        for r0, r1 in _edges(height, rows)
        for c0, c1 in _edges(width, cols)
    ]
    paths = [folder / f"{src.stem}_r{i // cols}_c{i % cols}.tif" for i in range(len(windows))]
    if reusable(folder / _RECORD, arguments, overwrite, what="reprojected tiles"):
        log.info("reusing the tiles in %s", folder)
        return paths
    forget_record(folder / _RECORD)
    for stale in folder.glob(f"{src.stem}_r*_c*.tif"):  # tiles of an earlier split
        stale.unlink()
    with open_raster(src) as source:
        for window, path in zip(windows, paths, strict=True):
            tile_transform = rasterio.windows.transform(window, transform)
            _write_tile(source, path, dst_crs, tile_transform, window, Resampling[resampling])
    write_record(folder / _RECORD, arguments)
    log.info("wrote %d tiles in %s to %s", len(paths), dst_crs.to_string(), folder)
    return paths


def _check_arguments(
    crs: CRS | str, resolution: float, tiles: tuple[int, int], resampling: str
) -> CRS:
    try:
        dst_crs = CRS.from_user_input(crs)
    except CRSError as err:
        raise ParameterError(f"crs {crs!r} is not a CRS rasterio knows ({err}).") from None
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, int | float | np.integer | np.floating)
        or not math.isfinite(resolution)
        or resolution <= 0
    ):
        raise ParameterError(
            f"resolution must be a positive pixel size in the CRS's units (got {resolution!r})."
        )
    if (
        not isinstance(tiles, tuple | list)
        or len(tiles) != 2
        or not all(isinstance(n, int | np.integer) and not isinstance(n, bool) for n in tiles)
        or min(tiles) < 1
    ):
        raise ParameterError(f"tiles must be (rows, columns) of positive integers (got {tiles!r}).")
    if resampling not in Resampling.__members__:
        raise ParameterError(f"unknown resampling {resampling!r}; try 'bilinear' or 'nearest'.")
    return dst_crs


def _edges(length: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` nearly equal spans ``(start, stop)`` that cover ``range(length)``."""
    cuts = [round(i * length / parts) for i in range(parts + 1)]
    return list(itertools.pairwise(cuts))


def _digest(path: Path) -> str:
    """A short hash of the file's bytes, so tiles of another source are never reused."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _write_tile(
    source: rasterio.io.DatasetReader,
    path: Path,
    crs: CRS,
    transform: rasterio.Affine,
    window: Window,
    resampling: Resampling,
) -> None:
    """Warp the source onto one tile's grid and write it with an internal validity mask."""
    count, dtype = source.count, source.dtypes[0]
    # GDAL writes the alpha band (the last) where the warped source has data.
    out = np.zeros((count + 1, int(window.height), int(window.width)), dtype=dtype)
    reproject(
        rasterio.band(source, list(range(1, count + 1))),
        out,
        dst_transform=transform,
        dst_crs=crs,
        dst_alpha=count + 1,
        resampling=resampling,
    )
    valid = out[count] > 0
    data = np.where(valid, out[:count], 0).astype(dtype)
    write_geotiff(path, data, transform=transform, crs=crs, valid=valid)
