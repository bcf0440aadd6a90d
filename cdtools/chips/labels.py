"""Change labels: polygons or a label raster, burned into windows of the imagery's grid.

Inside cdtools a label window is uint8 with 0 = no change, 1 = change, 255 = ignore.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio.features
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine

from cdtools.errors import GridError, LabelError
from cdtools.io.raster import PathLike, RasterInfo, describe, open_raster, read_window

NO_CHANGE, CHANGE, IGNORE = 0, 1, 255
ZERO_ONE, ZERO_255 = "0/1 (255 = ignore)", "0/255"


def _lookup(change_value: int) -> np.ndarray:
    table = np.full(256, IGNORE, dtype=np.uint8)
    table[0], table[change_value] = NO_CHANGE, CHANGE
    return table


#: Stored label value (0-255) -> 0 = no change, 1 = change, 255 = ignore, per coding.
CODINGS: dict[str, np.ndarray] = {ZERO_ONE: _lookup(1), ZERO_255: _lookup(255)}


def coding_of(values: set[int], where: str) -> str:
    """The coding of labels holding ``values``: 0/255 means 255 = change; a set with 1
    means 0/1 with 255 = ignore. Anything else is a :class:`LabelError` about ``where``."""
    if values <= {0, 255}:
        return ZERO_255
    if values <= {0, 1, 255}:
        return ZERO_ONE
    raise LabelError(
        f"{where} has values {sorted(values)[:10]}; expected 0/1 (255 = ignore) or 0/255. "
        "Reclassify to one of those codings."
    )


VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp", ".fgb", ".kml", ".gml"}

# A label window reader: (row, col, height, width) -> uint8 labels in the convention above.
LabelReader = Callable[[int, int, int, int], np.ndarray]


def label_reader(labels: PathLike, grid: RasterInfo) -> tuple[LabelReader, dict[str, Any]]:
    """Open change labels for reading window by window on ``grid``.

    Polygon files (GeoJSON, GeoPackage, Shapefile, ...) in any CRS are reprojected to the
    grid's CRS and rasterised per window; a label raster must be on the grid already.
    Returns the reader and a small description for export.json.

    Example:
        >>> read, info = label_reader("change.geojson", describe("before.tif"))  # doctest: +SKIP
        >>> read(0, 0, 256, 256).shape
        (256, 256)
    """
    path = Path(labels)
    if not path.exists():
        raise LabelError(f"{path} does not exist; pass a polygon file or a label raster.")
    if path.suffix.lower() in VECTOR_SUFFIXES:
        return _polygon_reader(path, grid)
    return _raster_reader(path, grid)


def _polygon_reader(path: Path, grid: RasterInfo) -> tuple[LabelReader, dict[str, Any]]:
    import geopandas as gpd  # heavy: imported only when polygons are used

    try:
        frame = gpd.read_file(path)
    except Exception as err:  # pyogrio raises several types for unreadable files
        raise LabelError(f"{path} could not be read as polygons ({err}).") from None
    frame = frame[~(frame.geometry.is_empty | frame.geometry.isna())]
    if frame.empty:
        raise LabelError(
            f"{path.name} has no features: there is nothing to learn change from; "
            "draw change polygons or pass a label raster."
        )
    kinds = set(frame.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise LabelError(
            f"{path.name} holds {sorted(kinds)} geometries; change labels must be polygons "
            "(buffer points or lines first, e.g. frame.buffer(2))."
        )
    if grid.crs is not None:
        if frame.crs is None:
            raise LabelError(
                f"{path.name} has no CRS; set it (frame.set_crs(...)) so it can be placed "
                f"on the imagery ({grid.crs.to_string()})."
            )
        frame = frame.to_crs(grid.crs)
    left, bottom, right, top = grid.bounds
    frame = frame.cx[left:right, bottom:top] if grid.crs is not None else _pixel_clip(frame, grid)
    if frame.empty:
        raise LabelError(
            f"none of the polygons in {path.name} fall inside the imagery "
            f"(bounds {tuple(round(v, 1) for v in grid.bounds)}); check that they show the "
            "same place, and their CRS."
        )
    geometries = list(frame.geometry)
    index = frame.sindex

    def read(row: int, col: int, height: int, width: int) -> np.ndarray:
        transform = grid.transform @ Affine.translation(col, row)
        x0, y0 = transform @ (0, 0)
        x1, y1 = transform @ (width, height)
        hits = index.query(_box(x0, y0, x1, y1), predicate="intersects")
        out = np.zeros((height, width), dtype=np.uint8)
        if len(hits):
            shapes = ((geometries[i], CHANGE) for i in hits)
            rasterio.features.rasterize(shapes, out=out, transform=transform)
        return out

    return read, {"kind": "polygons", "features": len(geometries)}


def _pixel_clip(frame: Any, grid: RasterInfo) -> Any:
    # Without a CRS, polygons are in pixel coordinates (x = column, y = row, y down).
    return frame.cx[0 : grid.width, 0 : grid.height]


def _box(x0: float, y0: float, x1: float, y1: float) -> Any:
    from shapely.geometry import box

    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _raster_reader(path: Path, grid: RasterInfo) -> tuple[LabelReader, dict[str, Any]]:
    info = describe(path)
    if (info.width, info.height) != (grid.width, grid.height) or (
        grid.crs is not None and (info.crs != grid.crs or info.transform != grid.transform)
    ):
        raise GridError(
            f"label raster {path.name} ({info.width}x{info.height}, {info.crs}) is not on the "
            f"imagery's grid ({grid.width}x{grid.height}, {grid.crs}); resample it onto the "
            f"imagery first, e.g. `rio warp {path.name} labels_aligned.tif --like before.tif "
            "--resampling nearest`."
        )
    if info.count != 1:
        raise LabelError(f"label raster {path.name} has {info.count} bands; it needs one.")
    lookup, convention = _label_lookup(path)

    def read(row: int, col: int, height: int, width: int) -> np.ndarray:
        with open_raster(path) as src:
            data, valid = read_window(src, row, col, height, width)
        out = lookup[data[0].astype(np.int64).clip(0, 255)]
        out[~valid] = IGNORE
        return out

    return read, {"kind": "raster", "convention": convention}


def _label_lookup(path: Path) -> tuple[np.ndarray, str]:
    """Work out a label raster's coding from its values, block by block.

    0/255 means 255 = change; a set with 1 means 0/1 with 255 = ignore.
    """
    seen = np.zeros(256, dtype=bool)
    with open_raster(path) as src, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        for _, window in src.block_windows(1):
            block = src.read(1, window=window, masked=True).compressed()
            if block.min(initial=0) < 0 or block.max(initial=0) > 255:
                raise LabelError(f"label raster {path.name} has values outside 0-255.")
            seen[np.unique(block.astype(np.int64))] = True
    coding = coding_of(set(np.flatnonzero(seen).tolist()), f"label raster {path.name}")
    return CODINGS[coding], coding
