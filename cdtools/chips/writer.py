"""Writing chips: image and label files with one profile per export, and their index.

:func:`cdtools.export_training_data` cuts the chips; this module puts them on disk, as
GeoTIFFs (with each chip's transform and the scene's CRS) or plain PNGs, and writes
chips.geojson, the footprint of every chip.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine

from cdtools.chips.labels import CHANGE
from cdtools.io.raster import RasterInfo


class ChipWriter:
    """Writes image and label chips with one profile per export."""

    def __init__(self, grid: RasterInfo, image_format: str, *, levir: bool) -> None:
        self.crs = grid.crs if image_format == "tif" else None
        self.levir = levir
        self.driver = "GTiff" if image_format == "tif" else "PNG"
        self.nodata = grid.nodata

    def image(self, path: Path, data: np.ndarray, transform: Affine) -> None:
        self._write(path, data, transform, nodata=self.nodata)

    def label(self, path: Path, data: np.ndarray, transform: Affine) -> None:
        if self.levir:
            data = np.where(data == CHANGE, 255, 0).astype(np.uint8)
        self._write(path, data[np.newaxis], transform, nodata=None)

    def _write(self, path: Path, data: np.ndarray, transform: Affine, nodata: float | None) -> None:
        profile: dict[str, Any] = {
            "driver": self.driver,
            "count": data.shape[0],
            "height": data.shape[1],
            "width": data.shape[2],
            "dtype": data.dtype,
        }
        if self.driver == "GTiff":
            profile.update(crs=self.crs, transform=transform, nodata=nodata)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(data)


def write_index(path: Path, index: list[dict[str, Any]], grid: RasterInfo, size: int) -> None:
    """chips.geojson: one footprint polygon per chip, in the scene's CRS (or pixels)."""
    import geopandas as gpd
    from shapely.geometry import box

    footprints = []
    for chip in index:
        x0, y0 = grid.transform @ (chip["col"], chip["row"])
        x1, y1 = grid.transform @ (chip["col"] + size, chip["row"] + size)
        footprints.append(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    frame = gpd.GeoDataFrame(index, geometry=footprints, crs=grid.crs)
    if frame.empty:
        frame = gpd.GeoDataFrame(
            {"id": [], "file": [], "row": [], "col": [], "change_fraction": []},
            geometry=[],
            crs=grid.crs,
        )
    with warnings.catch_warnings():  # pixel-space indexes have no CRS, on purpose
        warnings.filterwarnings("ignore", message=".*crs.*not provided", category=UserWarning)
        frame.to_file(path, driver="GeoJSON")
