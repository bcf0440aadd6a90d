"""Regions: connected change as a table, as points and as polygons, and patches to check.

A change probability map is thresholded, cleaned with a morphological closing then
opening (scikit-image), and split into connected regions (8-connectivity). Each region
gets an id (1 = largest), its area in m² from the raster's CRS, its bounding box and
centroid in map coordinates, its centroid in longitude/latitude and its mean and
maximum probability. Polygons come from ``rasterio.features.shapes``. Change maps are
read by :mod:`cdtools.scene.changemap`; patches around the regions and figures of them are in
:mod:`cdtools.regions.spotcheck`.
"""

from __future__ import annotations

import itertools
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from rasterio.crs import CRS

from cdtools.errors import CdtoolsWarning, ParameterError
from cdtools.scene.changemap import ChangeMap, read_change_map

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

__all__ = [
    "COLUMNS", "ChangeMap", "localize_regions", "predictions_to_regions", "read_change_map",
    "regions_to_polygons",
]  # fmt: skip

COLUMNS = (
    "id", "area_m2", "area_px", "minx", "miny", "maxx", "maxy", "centroid_x", "centroid_y",
    "lon", "lat", "row", "col", "mean_prob", "max_prob",
)  # fmt: skip
"""The columns of :func:`predictions_to_regions`' table, in order."""
DEFAULT_THRESHOLD = 0.5


def predictions_to_regions(
    prob: Any,
    *,
    threshold: float | None = None,
    min_area_m2: float = 20.0,
    closing: int = 1,
    opening: int = 1,
) -> pd.DataFrame:
    """Connected regions of change as a table, largest first.

    Args:
        prob: change probability as a georeferenced DataArray (uint8 probability x 255
            with 255 as no data, as from :func:`cdtools.predict_scene`, or float in [0, 1]
            with NaN as no data, as from ``ChangeDetector.predict``), or the path of such
            a GeoTIFF. A lazy map is computed once, whole.
        threshold: a pixel is change where its probability is above it (default: the
            map's ``threshold`` attribute or tag, else 0.5).
        min_area_m2: regions smaller than this are dropped (in pixels when the map has
            no CRS).
        closing: radius in pixels of the disk of the closing that fills small gaps (0: none).
        opening: radius in pixels of the disk of the opening that removes specks (0: none).

    Returns:
        A pandas DataFrame with the columns of :data:`COLUMNS`, one row per region, ids
        1..n from the largest; ``row``/``col`` is the pixel centroid. ``.attrs`` hold the
        ``crs``, ``transform`` (6 floats), ``units`` ("m2", or "px" without a CRS:
        ``area_m2``, ``lon`` and ``lat`` are then NaN, and a CdtoolsWarning says so),
        ``threshold``, ``shape`` and the clean-up options. No change: an empty table.

    Example:
        >>> regions = predictions_to_regions("change.tif", min_area_m2=50)  # doctest: +SKIP
        >>> regions[["id", "area_m2", "lon", "lat"]].head(3)  # doctest: +SKIP
    """
    change = read_change_map(prob)
    table, _ = _regions(change, threshold, min_area_m2, closing, opening)
    return table


def localize_regions(regions: Any) -> gpd.GeoDataFrame:
    """The regions' centroids as a GeoDataFrame of points in the raster's CRS.

    Example:
        >>> points = localize_regions(predictions_to_regions(change))  # doctest: +SKIP
        >>> points.to_file("centroids.geojson")  # doctest: +SKIP
    """
    import geopandas as gpd

    points = gpd.points_from_xy(regions["centroid_x"], regions["centroid_y"])
    frame = gpd.GeoDataFrame(regions.copy(), geometry=points, crs=regions.attrs.get("crs"))
    frame.attrs = dict(regions.attrs)
    return frame


def regions_to_polygons(
    prob: Any,
    *,
    threshold: float | None = None,
    min_area_m2: float = 20.0,
    closing: int = 1,
    opening: int = 1,
) -> gpd.GeoDataFrame:
    """The regions of :func:`predictions_to_regions` as a GeoDataFrame of (multi)polygons.

    Takes the same arguments; the polygons follow pixel edges, are in the raster's CRS
    and carry the table's columns, so ``.to_file("regions.gpkg")`` (or ``.geojson``)
    keeps everything.

    Example:
        >>> polygons = regions_to_polygons("change.tif")  # doctest: +SKIP
        >>> polygons.to_file("regions.gpkg")  # doctest: +SKIP
    """
    import geopandas as gpd
    import shapely
    from rasterio.features import shapes
    from shapely.geometry import shape

    change = read_change_map(prob)
    table, labels = _regions(change, threshold, min_area_m2, closing, opening)
    pieces: list[list[Any]] = [[] for _ in range(len(table))]
    if len(table):
        # 4-connected pieces are always valid polygons; the union joins corner neighbours.
        found = shapes(labels, mask=labels > 0, connectivity=4, transform=change.transform)
        for geometry, value in found:
            pieces[int(value) - 1].append(shape(geometry))
    geometries = gpd.GeoSeries([shapely.union_all(p) for p in pieces], crs=table.attrs["crs"])
    frame = gpd.GeoDataFrame(table, geometry=geometries.values, crs=table.attrs["crs"])
    frame.attrs = dict(table.attrs)
    return frame


def _regions(
    change: ChangeMap, threshold: float | None, min_area: float, closing: int, opening: int
) -> tuple[Any, np.ndarray]:
    """(table, labels): labels hold each pixel's region id (0: none) in table order."""
    import pandas as pd
    from skimage.measure import label, regionprops_table

    threshold = _threshold(threshold, change.threshold)
    if min(closing, opening) < 0:
        raise ParameterError(f"closing and opening are radii >= 0, got {closing}, {opening}.")
    mask = clean_mask(change.prob, threshold, closing, opening)
    raw = label(mask, connectivity=2)
    row_area = _row_areas(change)
    pixels = np.bincount(raw.ravel())
    if row_area is None:
        warnings.warn(
            "the change map has no CRS: areas are in pixels (area_m2, lon and lat are NaN) "
            "and min_area_m2 counts pixels; pass a georeferenced map for areas in m².",
            CdtoolsWarning,
            stacklevel=3,
        )
        size = pixels.astype(np.float64)
    elif np.ptp(row_area) == 0:
        size = pixels * row_area[0]
    else:  # geographic CRS: pixels shrink towards the poles
        size = np.bincount(raw.ravel(), weights=np.repeat(row_area, raw.shape[1]))
    kept = np.flatnonzero(size[1:] >= min_area) + 1
    kept = kept[np.argsort(-size[kept], kind="stable")]
    lookup = np.zeros(len(pixels), dtype=np.int32)
    lookup[kept] = np.arange(1, len(kept) + 1)
    labels = lookup[raw]
    props = regionprops_table(
        labels, np.nan_to_num(change.prob),
        properties=("bbox", "centroid", "intensity_mean", "intensity_max"),
    )  # fmt: skip
    t = change.transform
    rows, cols = props["centroid-0"], props["centroid-1"]
    cx, cy = t @ (cols + 0.5, rows + 0.5)
    corners = [t @ (props[f"bbox-{c}"], props[f"bbox-{r}"]) for r in (0, 2) for c in (1, 3)]
    xs, ys = [corner[0] for corner in corners], [corner[1] for corner in corners]
    table = pd.DataFrame(
        {
            "id": np.arange(1, len(kept) + 1, dtype=np.int64),
            "area_m2": size[kept] if row_area is not None else np.full(len(kept), np.nan),
            "area_px": pixels[kept].astype(np.int64),
            "minx": np.min(xs, axis=0), "miny": np.min(ys, axis=0),
            "maxx": np.max(xs, axis=0), "maxy": np.max(ys, axis=0),
            "centroid_x": cx, "centroid_y": cy, **_lonlat(change.crs, cx, cy),
            "row": rows, "col": cols,
            "mean_prob": props["intensity_mean"], "max_prob": props["intensity_max"],
        },
        columns=list(COLUMNS),
    )  # fmt: skip
    table = table.astype({c: np.float64 for c in COLUMNS if c not in ("id", "area_px")})
    table.attrs = {
        "crs": change.crs.to_string() if change.crs is not None else None,
        "transform": tuple(float(v) for v in tuple(t)[:6]),
        "units": "px" if row_area is None else "m2",
        "threshold": threshold,
        "shape": tuple(int(n) for n in change.prob.shape),
        "min_area_m2": float(min_area),
        "closing": int(closing),
        "opening": int(opening),
    }
    return table, labels


def label_regions(change: ChangeMap, attrs: dict[str, Any]) -> np.ndarray:
    """The region ids of every pixel (0: none), found with the options in a table's ``attrs``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CdtoolsWarning)  # said when the table was made
        _, labels = _regions(
            change, attrs.get("threshold"), attrs.get("min_area_m2", 20.0),
            attrs.get("closing", 1), attrs.get("opening", 1),
        )  # fmt: skip
    return labels


def clean_mask(prob: np.ndarray, threshold: float, closing: int, opening: int) -> np.ndarray:
    """Change mask (probability above ``threshold``) after closing then opening with disks.

    Pixels without data (NaN) are never change, even where the closing would fill them.

    Example:
        >>> clean_mask(read_change_map("change.tif").prob, 0.5, 1, 1).sum()  # doctest: +SKIP
        51234
    """
    from skimage.morphology import closing as close
    from skimage.morphology import disk
    from skimage.morphology import opening as open_

    valid = np.isfinite(prob)
    mask = np.where(valid, prob, 0) > threshold
    if closing:
        mask = close(mask, disk(closing)) & valid
    if opening:
        mask = open_(mask, disk(opening))
    return mask


def _threshold(given: float | None, stored: float | None) -> float:
    threshold = given if given is not None else stored if stored is not None else DEFAULT_THRESHOLD
    if not 0 <= threshold < 1:
        raise ParameterError(f"threshold must be in [0, 1), got {threshold}.")
    return float(threshold)


def _row_areas(change: ChangeMap) -> np.ndarray | None:
    """Area in m² of one pixel in each row (None without a CRS)."""
    crs, t = change.crs, change.transform
    height = change.prob.shape[0]
    if crs is None:
        return None
    if not crs.is_geographic:
        factor = crs.linear_units_factor[1]  # metres per CRS unit (feet, ...)
        return np.full(height, abs(t.a * t.e - t.b * t.d) * factor**2)
    from pyproj import Geod

    area, lons = Geod(ellps="WGS84").polygon_area_perimeter, [t.c, t.c + t.a, t.c + t.a, t.c]
    edges = itertools.pairwise(t.f + t.e * np.arange(height + 1))
    return np.array([abs(area(lons, [a, a, b, b])[0]) for a, b in edges])


def _lonlat(crs: CRS | None, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    if crs is None or len(x) == 0:
        return {"lon": np.full(len(x), np.nan), "lat": np.full(len(x), np.nan)}
    from rasterio.warp import transform

    lon, lat = transform(crs, "EPSG:4326", list(x), list(y))
    return {"lon": np.asarray(lon), "lat": np.asarray(lat)}
