"""What changed per parcel: change regions joined to a parcel layer (fields, lots, plots).

Each parcel gets its changed area (the area of its intersection with the change
regions), the share of the parcel that changed and its largest region. Areas are in m²
as :mod:`cdtools.regions.table` computes them: planar in a projected CRS (times its
linear unit in metres, squared), geodesic on the WGS84 ellipsoid in a geographic one.
Parcels are reprojected to the regions' CRS; invalid parcel geometries are repaired with
shapely's ``make_valid``, and named when they cannot be.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from cdtools.errors import CdtoolsWarning, ParameterError

if TYPE_CHECKING:
    import geopandas as gpd

PARCEL_COLUMNS = (
    "parcel_area_m2", "changed_m2", "share_changed", "regions", "largest_region_id",
    "largest_region_m2",
)  # fmt: skip
"""The columns :func:`join_parcels` adds to the parcels', in order."""
MOST_IDS = 10  # ids named in a message


def join_parcels(regions: Any, parcels: Any, *, id_column: str | None = None) -> gpd.GeoDataFrame:
    """Each parcel with its changed area, share changed and largest region of change.

    Args:
        regions: the change regions as polygons, as :func:`cdtools.regions_to_polygons`
            returns them (a GeoDataFrame with ``id`` and a CRS). A table without polygons
            from :func:`cdtools.predictions_to_regions` is accepted only when it is empty
            (no change: every parcel gets zero).
        parcels: any polygon layer geopandas reads: a GeoDataFrame or the path of a file
            (GeoPackage, GeoJSON, shapefile, ...), in any CRS.
        id_column: the parcels' id, used to name parcels in warnings and errors (default:
            their ``id`` column when there is one, else their index).

    Returns:
        A GeoDataFrame of the parcels (their own columns and index) in the regions' CRS,
        with :data:`PARCEL_COLUMNS` added: ``parcel_area_m2``, ``changed_m2`` (the area of
        the parcel covered by change regions), ``share_changed`` (their ratio, 0-1),
        ``regions`` (how many regions touch the parcel), ``largest_region_id`` (the region
        with the most area in the parcel; <NA> when none) and ``largest_region_m2`` (that
        region's area inside the parcel, 0 when none). ``attrs["repaired"]`` lists the
        ids of the parcels whose geometry was repaired.

    Raises:
        ParameterError: regions without polygons or CRS, parcels without a CRS, or
            parcel geometries that are missing, empty, not polygons, or invalid beyond
            repair (the message names their ids).

    Warns:
        CdtoolsWarning: invalid parcel geometries were repaired (named by id).

    Example:
        >>> regions = regions_to_polygons("change.tif")  # doctest: +SKIP
        >>> fields = join_parcels(regions, "fields.gpkg")  # doctest: +SKIP
        >>> fields.sort_values("share_changed", ascending=False).head()  # doctest: +SKIP
    """
    import geopandas as gpd
    import pandas as pd
    import shapely

    frame = _read_parcels(parcels)
    ids = _ids(frame, id_column)
    crs = _regions_crs(regions)
    if frame.crs is None:
        raise ParameterError(
            "the parcels have no CRS; set the one they are in first "
            "(parcels.set_crs('EPSG:...')) so that they can be put on the regions."
        )
    frame = frame.to_crs(crs) if not frame.crs.equals(crs) else frame.copy()
    geometry, repaired = _repaired(np.asarray(frame.geometry.values), ids)
    frame = frame.set_geometry(gpd.GeoSeries(geometry, index=frame.index, crs=crs))
    n = len(frame)
    changed, count = np.zeros(n), np.zeros(n, dtype=np.int64)
    largest_id = pd.array([pd.NA] * n, dtype="Int64")
    largest_m2 = np.zeros(n)
    shapes = _region_shapes(regions)
    if len(shapes):
        tree = shapely.STRtree(shapes)
        parcel_at, region_at = tree.query(geometry, predicate="intersects")
        pieces = shapely.intersection(geometry[parcel_at], shapes[region_at])
        areas = area_m2(pieces, crs)
        keep = areas > 0
        parcel_at, region_at, areas = parcel_at[keep], region_at[keep], areas[keep]
        changed = np.bincount(parcel_at, weights=areas, minlength=n)
        count = np.bincount(parcel_at, minlength=n).astype(np.int64)
        order = np.lexsort((-areas, parcel_at))  # each parcel's largest piece first
        first = order[np.r_[True, np.diff(parcel_at[order]) != 0]] if len(order) else order
        region_ids = np.asarray(regions["id"], dtype=np.int64)
        largest_id[parcel_at[first]] = region_ids[region_at[first]]
        largest_m2[parcel_at[first]] = areas[first]
    parcel_area = area_m2(geometry, crs)
    share = np.divide(changed, parcel_area, out=np.zeros(n), where=parcel_area > 0)
    added = {
        "parcel_area_m2": parcel_area, "changed_m2": changed,
        "share_changed": np.clip(share, 0, 1), "regions": count,
        "largest_region_id": largest_id, "largest_region_m2": largest_m2,
    }  # fmt: skip
    for name, values in added.items():
        frame[name] = values
    frame.attrs = {"crs": crs.to_string(), "units": "m2", "repaired": repaired}
    return frame


def area_m2(geometry: np.ndarray, crs: Any) -> np.ndarray:
    """Areas in m² of shapely geometries in ``crs``: planar in a projected CRS (times
    its unit in metres, squared), geodesic on WGS84 in a geographic one, as
    :mod:`cdtools.regions.table` measures pixels."""
    import shapely
    from rasterio.crs import CRS

    crs = CRS.from_user_input(crs)
    if not crs.is_geographic:
        return shapely.area(geometry) * crs.linear_units_factor[1] ** 2
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    return np.array([abs(geod.geometry_area_perimeter(g)[0]) for g in geometry], dtype=float)


def _read_parcels(parcels: Any) -> Any:
    import geopandas as gpd

    if isinstance(parcels, str | os.PathLike):
        return gpd.read_file(parcels)
    if isinstance(parcels, gpd.GeoDataFrame):
        return parcels
    raise ParameterError(
        f"parcels must be a GeoDataFrame or the path of a file geopandas reads, got "
        f"{type(parcels).__name__}."
    )


def _ids(frame: Any, id_column: str | None) -> list[Any]:
    if id_column is not None:
        if id_column not in frame.columns:
            raise ParameterError(
                f"the parcels have no column {id_column!r}; they have {list(frame.columns)}."
            )
        return list(frame[id_column])
    return list(frame["id"]) if "id" in frame.columns else list(frame.index)


def _regions_crs(regions: Any) -> Any:
    from rasterio.crs import CRS

    crs = getattr(regions, "crs", None)
    if crs is None and "geometry" not in getattr(regions, "columns", ()):
        crs = getattr(regions, "attrs", {}).get("crs")  # a predictions_to_regions table
    if crs is None:
        raise ParameterError(
            "the regions have no CRS, so parcels cannot be put on them; make the regions from "
            "a georeferenced change map."
        )
    return CRS.from_user_input(crs)


def _region_shapes(regions: Any) -> np.ndarray:
    """The regions' polygons (none for an empty table)."""
    if len(regions) == 0:
        return np.empty(0, dtype=object)
    if getattr(regions, "geometry", None) is None or "id" not in regions.columns:
        raise ParameterError(
            "join_parcels needs the regions as polygons with their id: pass "
            "regions_to_polygons(change) (it takes predictions_to_regions' arguments)."
        )
    return np.asarray(regions.geometry.values)


def _repaired(geometry: np.ndarray, ids: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """The parcels' polygons, invalid ones repaired with make_valid (their ids listed).

    A repair keeps the polygonal part of what ``make_valid`` returns (a bow tie becomes
    two triangles); a geometry with none (missing, empty, collapsed to a line) is refused.
    """
    import shapely

    missing = shapely.is_missing(geometry) | shapely.is_empty(geometry)
    if missing.any():
        raise ParameterError(
            f"parcels {_named(ids, missing)} have no geometry; drop them or draw them "
            "before joining."
        )
    other = ~np.isin(shapely.get_type_id(geometry), (3, 6))  # Polygon, MultiPolygon
    if other.any():
        kinds = sorted({g.geom_type for g in geometry[other]})
        raise ParameterError(
            f"parcels {_named(ids, other)} are not polygons ({', '.join(kinds)}); "
            "join_parcels needs polygon parcels."
        )
    invalid = ~shapely.is_valid(geometry)
    if not invalid.any():
        return geometry, []
    fixed = geometry.copy()
    lost = np.zeros(len(geometry), dtype=bool)
    for i in np.flatnonzero(invalid):
        parts = shapely.get_parts(shapely.make_valid(geometry[i]))
        polygons = [p for p in parts if p.geom_type in ("Polygon", "MultiPolygon") and p.area]
        if polygons:
            fixed[i] = shapely.union_all(polygons)
        else:
            lost[i] = True
    if lost.any():
        raise ParameterError(
            f"parcels {_named(ids, lost)} have invalid geometries that make_valid cannot "
            "repair into polygons (they have no area); fix or drop them."
        )
    warnings.warn(
        f"parcels {_named(ids, invalid)} had invalid geometries (self-intersections or "
        "the like) and were repaired with shapely's make_valid; check them.",
        CdtoolsWarning,
        stacklevel=3,
    )
    return fixed, [ids[i] for i in np.flatnonzero(invalid)]


def _named(ids: list[Any], which: np.ndarray) -> str:
    picked = [str(ids[i]) for i in np.flatnonzero(which)]
    more = f" and {len(picked) - MOST_IDS} more" if len(picked) > MOST_IDS else ""
    return ", ".join(picked[:MOST_IDS]) + more
