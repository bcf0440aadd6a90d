"""Rasters made ready for a web map: warped to Web Mercator, encoded as PNG data URLs.

Maps in cdtools need no tile server and no internet: each raster is read at a bounded
size (decimated reads use a GeoTIFF's overviews), warped to EPSG:3857, the grid web maps
are drawn on, so that an ``ImageOverlay`` stretched between its corners lands on the
right pixels, and shipped to the browser inside the widget as a data URL. That works in
JupyterLab, Notebook, Voila, Binder and Colab alike.
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine

from cdtools.errors import ParameterError

WEB_MERCATOR = CRS.from_epsg(3857)
EARTH_CIRCUMFERENCE = 2 * math.pi * 6378137.0  # metres of Web Mercator's x at zoom 0
MAX_SIZE = 1024  # pixels on the long side of what goes to the browser, by default
ZOOM_SNAP = 0.25  # maps zoom in quarter steps, so a scene fills most of the map
CHANGE_RGB = (255, 40, 200)  # magenta: unlike anything in the imagery


@dataclass(frozen=True)
class WebImage:
    """A raster on a Web Mercator grid: ``(bands, h, w)`` float32, NaN where no data."""

    values: np.ndarray
    transform: Affine

    @property
    def bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((south, west), (north, east)) in degrees, as ipyleaflet takes them."""
        from rasterio.warp import transform as warp_points

        height, width = self.values.shape[1:]
        (west, east), (north, south) = (
            (self.transform.c, self.transform.c + width * self.transform.a),
            (self.transform.f, self.transform.f + height * self.transform.e),
        )
        lons, lats = warp_points(WEB_MERCATOR, "EPSG:4326", [west, east], [south, north])
        return (lats[0], lons[0]), (lats[1], lons[1])


def web_image(raster: Any, *, max_size: int = MAX_SIZE, resampling: str = "bilinear") -> WebImage:
    """A GeoTIFF path or a georeferenced ``(band, y, x)`` DataArray warped to Web Mercator.

    The long side of the result is at most ``max_size`` pixels; nodata (or NaN) stays NaN.
    """
    if max_size < 16:
        raise ParameterError(f"max_size must be at least 16 pixels (got {max_size}).")
    values, transform, crs = _read(raster, max_size)
    return _warp(values, transform, crs, max_size, resampling)


def _read(raster: Any, max_size: int) -> tuple[np.ndarray, Affine, CRS]:
    """Values at about ``max_size`` (float32, NaN: no data), their transform and CRS."""
    if isinstance(raster, str | os.PathLike):
        from rasterio.enums import Resampling

        from cdtools.io.raster import open_raster

        with open_raster(Path(raster)) as src:
            step = max(1, math.ceil(max(src.width, src.height) / (2 * max_size)))
            shape = (src.count, math.ceil(src.height / step), math.ceil(src.width / step))
            data = src.read(out_shape=shape, masked=True, resampling=Resampling.average)
            transform = src.transform * Affine.scale(src.width / shape[2], src.height / shape[1])
            return data.astype(np.float32).filled(np.nan), transform, _crs_of(src.crs, raster)
    dims = getattr(raster, "dims", None)
    if dims is None or dims[-2:] != ("y", "x"):
        raise ParameterError(
            f"a map layer is a GeoTIFF path or an xarray DataArray with (y, x) last; got "
            f"{type(raster).__name__}{f' with dims {dims}' if dims else ''}."
        )
    import rioxarray  # noqa: F401 (registers .rio)

    if raster.ndim == 2:
        raster = raster.expand_dims("band")
    if raster.ndim != 3:
        raise ParameterError(
            f"a map layer has dims (band, y, x); got {dict(raster.sizes)}: select one date, "
            "e.g. pair.sel(time='before')."
        )
    step = max(1, math.ceil(max(raster.sizes["y"], raster.sizes["x"]) / (2 * max_size)))
    values = np.asarray(raster[:, ::step, ::step].values, dtype=np.float32)
    scale = (raster.sizes["x"] / values.shape[2], raster.sizes["y"] / values.shape[1])
    transform = raster.rio.transform() * Affine.scale(*scale)  # the same footprint
    nodata = raster.rio.nodata
    if nodata is not None and not np.isnan(nodata):
        values[values == nodata] = np.nan
    return values, transform, _crs_of(raster.rio.crs, "the DataArray")


def _crs_of(crs: CRS | None, what: Any) -> CRS:
    if crs is None:
        raise ParameterError(
            f"{what} has no CRS, so it cannot be placed on a map; write it with one "
            "(DataArray: .rio.write_crs(...))."
        )
    return crs


def _warp(
    values: np.ndarray, transform: Affine, crs: CRS, max_size: int, resampling: str
) -> WebImage:
    from rasterio.enums import Resampling
    from rasterio.transform import from_bounds
    from rasterio.warp import calculate_default_transform, reproject, transform_bounds

    bands, height, width = values.shape
    left, top = transform.c, transform.f
    right, bottom = transform * (width, height)
    _, web_width, web_height = calculate_default_transform(
        crs, WEB_MERCATOR, width, height, left=left, bottom=bottom, right=right, top=top
    )  # the size GDAL suggests: about the source's resolution
    scale = max(1.0, max(web_width, web_height) / max_size)  # keep the browser's image small
    web_width, web_height = (
        max(1, min(max_size, round(n / scale))) for n in (web_width, web_height)
    )
    envelope = transform_bounds(crs, WEB_MERCATOR, left, bottom, right, top, densify_pts=21)
    web = from_bounds(*envelope, web_width, web_height)  # exactly the footprint, not a pixel more
    out = np.full((bands, web_height, web_width), np.nan, dtype=np.float32)
    reproject(
        values, out, src_transform=transform, src_crs=crs, src_nodata=np.nan,
        dst_transform=web, dst_crs=WEB_MERCATOR, dst_nodata=np.nan,
        resampling=getattr(Resampling, resampling),
    )  # fmt: skip
    return WebImage(out, web)


def rgb_url(
    image: WebImage,
    *,
    rgb: Sequence[int] = (0, 1, 2),
    limits: tuple[np.ndarray, np.ndarray] | None = None,
) -> str:
    """The image as a PNG data URL: bands ``rgb`` stretched (2-98 %), no data transparent."""
    from cdtools.plots import rgb_bands, to_rgb

    valid = np.isfinite(image.values[rgb_bands(rgb, image.values.shape[0])]).all(axis=0)
    if limits is None:
        limits = shared_limits([image], rgb)
    shown = np.nan_to_num(to_rgb(np.nan_to_num(image.values), rgb=rgb, limits=limits))
    rgba = np.dstack([np.round(shown * 255), np.where(valid, 255, 0)]).astype(np.uint8)
    return png_url(rgba)


def shared_limits(images: Sequence[WebImage], rgb: Sequence[int] = (0, 1, 2)) -> Any:
    """One 2-98 % stretch over several dates' valid pixels, so brightness stays comparable."""
    from cdtools.plots import rgb_bands, stretch_limits

    parts = []
    for image in images:
        picked = image.values[rgb_bands(rgb, image.values.shape[0])]
        inside = picked[:, np.isfinite(picked).all(axis=0)]
        if inside.size:
            parts.append(inside[:, None, :])
    return stretch_limits(parts) if parts else None


def change_on(change: Any, image: WebImage) -> np.ndarray:
    """A :class:`~cdtools.scene.changemap.ChangeMap`'s probability warped onto ``image``'s grid."""
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    if change.crs is None:
        raise ParameterError(
            "the change map has no CRS, so it cannot be placed on a map; pass a GeoTIFF or a "
            "DataArray with .rio.crs."
        )
    out = np.full(image.values.shape[1:], np.nan, dtype=np.float32)
    reproject(
        change.prob, out, src_transform=change.transform, src_crs=change.crs, src_nodata=np.nan,
        dst_transform=image.transform, dst_crs=WEB_MERCATOR, dst_nodata=np.nan,
        resampling=Resampling.nearest,
    )  # fmt: skip
    return out


def change_url(prob: np.ndarray, threshold: float, *, colour: Sequence[int] = CHANGE_RGB) -> str:
    """Pixels with probability at or above ``threshold`` in ``colour``; the rest transparent."""
    changed = np.nan_to_num(prob, nan=-1.0) >= threshold
    rgba = np.zeros((*prob.shape, 4), dtype=np.uint8)
    rgba[changed] = (*colour, 255)
    return png_url(rgba)


def png_url(rgba: np.ndarray) -> str:
    """An ``(h, w, 3 or 4)`` uint8 array as a ``data:image/png;base64,...`` URL."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG", optimize=False, compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def view_of(image: WebImage, *, width: int = 800, height: int = 480) -> tuple[Any, float]:
    """(center (lat, lon), zoom) that fits the image in a ``width`` x ``height`` px map.

    The zoom is a multiple of :data:`ZOOM_SNAP`, which maps should use as ``zoom_snap``.

    Computed here rather than with ``Map.fit_bounds``, which waits for a browser to report
    the map's size and so does nothing in a kernel without one.
    """
    (south, west), (north, east) = image.bounds
    span_x = abs(image.values.shape[2] * image.transform.a)
    span_y = abs(image.values.shape[1] * image.transform.e)
    fits = [
        math.log2(side_px * EARTH_CIRCUMFERENCE / (256 * max(span, 1e-9)))
        for side_px, span in ((width, span_x), (height, span_y))
    ]
    zoom = float(np.clip(math.floor(min(fits) / ZOOM_SNAP) * ZOOM_SNAP, 1, 22))
    return ((south + north) / 2, (west + east) / 2), zoom


def web_map(image: WebImage, *, panes: dict[str, Any] | None = None) -> Any:
    """An ipyleaflet map with no basemap, centred and zoomed on ``image``."""
    import ipyleaflet
    import ipywidgets

    center, zoom = view_of(image)
    return ipyleaflet.Map(
        center=center, zoom=zoom, zoom_snap=ZOOM_SNAP, zoom_delta=0.5, max_zoom=22, layers=(),
        panes=panes or {}, scroll_wheel_zoom=True, layout=ipywidgets.Layout(height="480px"),
    )  # fmt: skip
