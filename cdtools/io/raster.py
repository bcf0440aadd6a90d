"""Raster files: opening with clear errors, describing grids, and writing atomically.

Everything that touches a GeoTIFF goes through here, so that a bad file gives one
:class:`~cdtools.errors.RasterError` and an interrupted write never leaves a partial file.
"""

from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.transform import Affine

from cdtools.errors import GridError, RasterError

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class RasterInfo:
    """What cdtools needs to know about a raster file, read from its header only."""

    path: Path
    width: int
    height: int
    count: int
    dtype: str
    crs: CRS | None
    transform: Affine
    nodata: float | None

    @property
    def georeferenced(self) -> bool:
        """True when the file has a CRS (pixel-space images such as PNG pairs have none)."""
        return self.crs is not None

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units, positive."""
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units (pixel units without a CRS)."""
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        return (min(left, right), min(bottom, top), max(left, right), max(bottom, top))


@contextlib.contextmanager
def open_raster(path: PathLike) -> Iterator[rasterio.io.DatasetReader]:
    """Open a raster for reading, turning GDAL's errors into a :class:`RasterError`.

    Example:
        >>> with open_raster("before.tif") as src:  # doctest: +SKIP
        ...     print(src.crs)
    """
    path = Path(path)
    if not path.exists():
        raise RasterError(f"{path} does not exist; check the path (relative to {Path.cwd()}).")
    if path.is_dir():
        raise RasterError(f"{path} is a folder; pass the raster file inside it.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
    except RasterioIOError as err:
        raise RasterError(
            f"{path} is not a raster GDAL can read ({err}); pass a GeoTIFF, PNG or JPEG."
        ) from None
    try:
        yield src
    finally:
        src.close()


def describe(path: PathLike) -> RasterInfo:
    """Read a raster's header into a :class:`RasterInfo`."""
    with open_raster(path) as src:
        return RasterInfo(
            path=Path(path),
            width=src.width,
            height=src.height,
            count=src.count,
            dtype=src.dtypes[0],
            crs=src.crs,
            transform=src.transform,
            nodata=src.nodata,
        )


def read_window(
    src: rasterio.io.DatasetReader,
    row: int,
    col: int,
    height: int,
    width: int,
    *,
    fill: float = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a window that may run past the raster's edge.

    Returns ``(data, valid)``: data is ``(bands, height, width)`` with ``fill`` outside
    the raster, and ``valid`` is a boolean ``(height, width)`` array that is False outside
    the raster and where any band is nodata.
    """
    data = np.full((src.count, height, width), fill, dtype=src.dtypes[0])
    valid = np.zeros((height, width), dtype=bool)
    r1, c1 = min(row + height, src.height), min(col + width, src.width)
    if r1 <= row or c1 <= col:
        return data, valid
    window = rasterio.windows.Window(col, row, c1 - col, r1 - row)
    inside = (slice(0, r1 - row), slice(0, c1 - col))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            data[(slice(None), *inside)] = src.read(window=window)
            mask = src.dataset_mask(window=window) > 0
        except rasterio.errors.RasterioIOError as err:
            raise RasterError(f"{src.name} could not be read ({err}); is it corrupt?") from None
    valid[inside] = mask
    return data, valid


def check_same_grid(before: RasterInfo, after: RasterInfo) -> None:
    """Raise :class:`GridError` unless two rasters share CRS, pixel grid, size and bands.

    The message says how far apart they are and how to align them.
    """
    fix = (
        "align them onto one grid first, for example "
        f"`rio warp {after.path.name} after_aligned.tif --like {before.path.name}`"
    )
    if (before.crs is None) != (after.crs is None):
        has = before if before.crs is not None else after
        lacks = after if has is before else before
        raise GridError(
            f"{has.path.name} is georeferenced ({has.crs}) but {lacks.path.name} is not; "
            "give both dates a CRS, or use two plain images of the same size."
        )
    if before.crs is not None and before.crs != after.crs:
        raise GridError(
            f"before and after are in different CRSs ({_crs_name(before.crs)} vs "
            f"{_crs_name(after.crs)}); {fix}."
        )
    if not np.allclose(before.res, after.res, rtol=1e-6):
        raise GridError(
            f"before and after have different pixel sizes ({before.res} vs {after.res}); {fix}."
        )
    if before.count != after.count:
        raise GridError(
            f"before has {before.count} bands but after has {after.count}; "
            "use the same bands for both dates (prepare_data's bands=... selects bands later)."
        )
    if before.crs is not None:
        b, a = before.bounds, after.bounds
        if a[0] >= b[2] or a[2] <= b[0] or a[1] >= b[3] or a[3] <= b[1]:
            gap = _gap(b, a)
            raise GridError(
                f"before and after do not overlap (their footprints in {_crs_name(before.crs)} "
                f"are {gap:.0f} units apart: {_fmt_bounds(b)} vs {_fmt_bounds(a)}); "
                "check that the files show the same place."
            )
    if (before.width, before.height) != (after.width, after.height) or not np.allclose(
        tuple(before.transform)[:6], tuple(after.transform)[:6], atol=before.res[0] * 1e-3
    ):
        raise GridError(
            f"before ({before.width}x{before.height}) and after ({after.width}x{after.height}) "
            f"are not on the same pixel grid; {fix}."
        )


def _crs_name(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def _fmt_bounds(b: tuple[float, float, float, float]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in b) + ")"


def _gap(b: tuple[float, ...], a: tuple[float, ...]) -> float:
    dx = max(a[0] - b[2], b[0] - a[2], 0.0)
    dy = max(a[1] - b[3], b[1] - a[3], 0.0)
    return float(np.hypot(dx, dy))


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    The temporary file does not exist yet, so whatever writes it creates it with the
    usual permissions.

    Example:
        >>> with atomic_path("out.tif") as tmp:  # doctest: +SKIP
        ...     write_something(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_geotiff(
    path: PathLike,
    data: np.ndarray,
    *,
    transform: Affine | None = None,
    crs: CRS | str | None = None,
    nodata: float | None = None,
    compress: str | None = "deflate",
    valid: np.ndarray | None = None,
    descriptions: Sequence[str] | None = None,
    **profile: Any,
) -> Path:
    """Write a ``(bands, height, width)`` or ``(height, width)`` array as a GeoTIFF, atomically.

    ``valid`` (a boolean ``(height, width)`` array) is stored as the file's internal
    nodata mask, so every value of the data type stays usable for data. ``descriptions``
    name the bands.

    Example:
        >>> write_geotiff("mask.tif", mask, transform=t, crs="EPSG:32614")  # doctest: +SKIP
    """
    array = data[np.newaxis] if data.ndim == 2 else data
    options: dict[str, Any] = {
        "driver": "GTiff",
        "count": array.shape[0],
        "height": array.shape[1],
        "width": array.shape[2],
        "dtype": array.dtype,
        "transform": transform or Affine.identity(),
        "crs": crs,
        "nodata": nodata,
        **profile,
    }
    if compress:
        options["compress"] = compress
    if array.shape[1] >= 256 and array.shape[2] >= 256:
        options.setdefault("tiled", True)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(tmp, "w", **options) as dst:
            dst.write(array)
            if descriptions is not None:
                dst.descriptions = tuple(descriptions)
            if valid is not None:
                dst.write_mask(valid.astype(np.uint8) * 255)
    return Path(path)


def read_image(image: PathLike | np.ndarray) -> tuple[np.ndarray, np.ndarray, RasterInfo | None]:
    """A whole image as ``(bands, h, w)``, its valid-pixel mask ``(h, w)`` and its
    :class:`RasterInfo` (None for arrays).

    A pixel is invalid where any band is nodata (the file's nodata value or mask) or NaN.
    Arrays may be ``(bands, h, w)``, ``(h, w)``, or ``(h, w, bands)`` with 1, 3 or 4
    bands (as PIL and matplotlib give them).
    """
    info = None
    if isinstance(image, np.ndarray):
        data = bands_first(image)
        valid = np.ones(data.shape[1:], dtype=bool)
    else:
        info = describe(image)
        with open_raster(image) as src, warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            data, valid = src.read(), src.dataset_mask() > 0
    if np.issubdtype(data.dtype, np.floating):
        valid &= np.isfinite(data).all(axis=0)
    return data, valid, info


def bands_first(image: np.ndarray) -> np.ndarray:
    """An image array as ``(bands, h, w)``: from ``(bands, h, w)``, ``(h, w)``, or
    ``(h, w, bands)`` with 1, 3 or 4 bands (as PIL and matplotlib give them).

    Example:
        >>> bands_first(np.zeros((64, 48, 3))).shape
        (3, 64, 48)
    """
    if image.ndim not in (2, 3):
        raise RasterError(f"an image array must have 2 or 3 dimensions, got shape {image.shape}.")
    data = image[np.newaxis] if image.ndim == 2 else image
    if data.shape[-1] in (1, 3, 4) and data.shape[0] > 4:
        data = data.transpose(2, 0, 1)
    return data
