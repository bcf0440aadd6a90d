"""Small geometry helpers of the sample world: rotated rectangles, blobs, burning shapes.

Geometries live in *pixel coordinates* (x = column, y = row, 1 unit = 0.5 m) until
they are written, when :func:`to_crs` moves them onto the scene's map grid. Vertices are
snapped to 1/8 pixel so that the map coordinates (multiples of 1/16 m near round
eastings and northings) survive a trip through GeoJSON text exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import rasterio.features
import shapely
import shapely.affinity
from rasterio.transform import Affine
from shapely.geometry.base import BaseGeometry

SNAP = 0.125


def snap(geometries: np.ndarray | BaseGeometry) -> np.ndarray | BaseGeometry:
    """Round vertices to 1/8 pixel (see the module docstring for why)."""
    return shapely.set_precision(geometries, SNAP)


def rectangles(boxes: np.ndarray, *, centre: tuple[float, float], angle: float) -> np.ndarray:
    """Polygons of ``(n, 4)`` boxes ``(u0, v0, u1, v1)`` in a frame rotated by ``angle``.

    The frame's origin sits at ``centre`` (pixel coordinates); ``u`` runs along
    ``angle`` (radians, counter-clockwise from the column axis).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    u = boxes[:, [0, 2, 2, 0, 0]]
    v = boxes[:, [1, 1, 3, 3, 1]]
    cos, sin = np.cos(angle), np.sin(angle)
    x = centre[0] + u * cos - v * sin
    y = centre[1] + u * sin + v * cos
    return snap(shapely.polygons(np.stack([x, y], axis=-1)))


def blob(
    centre: tuple[float, float], radius: float, rng: np.random.Generator, *, wobble: float = 0.25
) -> BaseGeometry:
    """A smooth, round-ish polygon: a circle whose radius wobbles with a few harmonics."""
    phi = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    scale = np.ones_like(phi)
    for harmonic in range(2, 6):
        scale += rng.uniform(0, wobble) / harmonic * np.cos(harmonic * phi + rng.uniform(0, 6.3))
    x = centre[0] + radius * scale * np.cos(phi)
    y = centre[1] + radius * scale * np.sin(phi)
    return snap(shapely.Polygon(np.column_stack([x, y])).buffer(0))


def burn(
    out: np.ndarray,
    shapes: Iterable[tuple[BaseGeometry, int]],
    *,
    where: Callable[[tuple[slice, slice]], np.ndarray] | None = None,
) -> np.ndarray:
    """Burn ``(geometry, value)`` pairs into ``out`` in order (later shapes win), in place.

    ``where`` maps a window (row and column slices) to a boolean array of its shape:
    only those pixels are burnt (for example "only over farmland"). It is asked about
    the shapes' bounding window only.
    """
    shapes = [(g, int(v)) for g, v in shapes if g is not None and not g.is_empty]
    if not shapes:
        return out
    if where is None:
        return rasterio.features.rasterize(shapes, out=out)
    bounds = shapely.total_bounds([g for g, _ in shapes])
    window, _ = _window(bounds, out.shape)
    if window is None:
        return out
    view = out[window]
    # Burn value + 1 so that 0 stays "not burnt" even for the value 0.
    burnt = rasterio.features.rasterize(
        [(g, v + 1) for g, v in shapes],
        out_shape=view.shape,
        transform=Affine.translation(window[1].start, window[0].start),
        fill=0,
        dtype=np.int32,
    )
    hit = (burnt > 0) & where(window)
    view[hit] = burnt[hit] - 1
    return out


def _window(
    bounds: Sequence[float], shape: Sequence[int]
) -> tuple[tuple[slice, slice] | None, tuple[int, int]]:
    """Pixel window (clipped to ``shape``) around ``(minx, miny, maxx, maxy)``."""
    minx, miny, maxx, maxy = bounds
    r0, c0 = max(int(np.floor(miny)) - 1, 0), max(int(np.floor(minx)) - 1, 0)
    r1, c1 = min(int(np.ceil(maxy)) + 1, shape[0]), min(int(np.ceil(maxx)) + 1, shape[1])
    if r1 <= r0 or c1 <= c0:
        return None, (r0, c0)
    return (slice(r0, r1), slice(c0, c1)), (r0, c0)


def footprint(
    geometry: BaseGeometry, shape: Sequence[int]
) -> tuple[tuple[slice, slice] | None, np.ndarray]:
    """The pixels a polygon covers: its window's slices and a boolean mask within it.

    The window is None when the polygon lies outside a raster of ``shape``.
    """
    window, (r0, c0) = _window(geometry.bounds, shape)
    if window is None:
        return None, np.zeros((0, 0), dtype=bool)
    mask = rasterio.features.rasterize(
        [(geometry, 1)],
        out_shape=(window[0].stop - r0, window[1].stop - c0),
        transform=Affine.translation(c0, r0),
        fill=0,
        dtype=np.uint8,
    )
    return window, mask.astype(bool)


def to_crs(geometries: Sequence[BaseGeometry], transform: Affine) -> list[BaseGeometry]:
    """Move pixel-coordinate geometries onto the map grid of ``transform``."""
    matrix = [transform.a, transform.b, transform.d, transform.e, transform.c, transform.f]
    return [shapely.affinity.affine_transform(g, matrix) for g in geometries]
