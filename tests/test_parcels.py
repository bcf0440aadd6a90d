"""join_parcels: changed area, share and largest region per parcel, and its SplitMap layer."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from shapely.geometry import Point, Polygon, box

import cdtools
from cdtools.errors import CdtoolsWarning, ParameterError
from cdtools.regions.parcels import PARCEL_COLUMNS
from cdtools.regions.table import label_regions
from cdtools.scene.changemap import read_change_map
from cdtools.synthetic import SampleWorld

UTM = "EPSG:32614"
X0, Y0 = 620000.0, 3350000.0  # a corner in UTM zone 14


def at(*geometries, crs: str = UTM, **columns) -> gpd.GeoDataFrame:
    """Geometries given in metres from (X0, Y0)."""
    from shapely import affinity

    moved = [affinity.translate(g, X0, Y0) if g is not None else None for g in geometries]
    return gpd.GeoDataFrame(columns, geometry=moved, crs=crs)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SampleWorld:
    return cdtools.make_scene_pair(tmp_path_factory.mktemp("world"), size=256, seed=0)


@pytest.fixture(scope="module")
def world_regions(world: SampleWorld) -> gpd.GeoDataFrame:
    return cdtools.regions_to_polygons(world.change_mask)


@pytest.fixture
def regions() -> gpd.GeoDataFrame:
    """Region 1: a 10 x 10 m square (100 m²); region 2: 5 x 4 m (20 m²)."""
    return at(box(0, 0, 10, 10), box(20, 0, 25, 4), id=[1, 2], area_m2=[100.0, 20.0])


@pytest.fixture
def parcels() -> gpd.GeoDataFrame:
    return at(
        box(0, 0, 20, 10), box(5, 0, 25, 10), box(30, 0, 40, 10), id=["a", "b", "c"], crop=[1, 2, 3]
    )


def test_exact_figures_for_a_constructed_case(regions, parcels) -> None:
    joined = cdtools.join_parcels(regions, parcels)
    assert list(joined.columns) == ["id", "crop", "geometry", *PARCEL_COLUMNS]
    assert joined.crs == UTM and list(joined["id"]) == ["a", "b", "c"]
    assert joined["parcel_area_m2"].tolist() == pytest.approx([200, 200, 100])
    assert joined["changed_m2"].tolist() == pytest.approx([100, 70, 0])  # b: 50 of 1, 20 of 2
    assert joined["share_changed"].tolist() == pytest.approx([0.5, 0.35, 0.0])
    assert joined["regions"].tolist() == [1, 2, 0]
    assert joined["largest_region_id"].tolist()[:2] == [1, 1]
    assert joined["largest_region_id"].isna().tolist() == [False, False, True]
    assert joined["largest_region_m2"].tolist() == pytest.approx([100, 50, 0])
    assert joined.attrs["repaired"] == [] and joined.attrs["units"] == "m2"
    assert "changed_m2" not in parcels.columns  # the input is left alone


def test_a_grid_of_parcels_over_the_sample_world(world: SampleWorld, world_regions) -> None:
    """16 parcels of 64 x 64 pixels (32 x 32 m) tile the scene: each parcel's changed
    area is its count of region pixels (0.25 m² each), and all add up to the regions'."""
    t = world.transform
    assert len(world_regions) >= 2
    size = 64
    cells = [
        box(t.c + c * t.a, t.f + (r + size) * t.e, t.c + (c + size) * t.a, t.f + r * t.e)
        for r in range(0, 256, size)
        for c in range(0, 256, size)
    ]
    grid = gpd.GeoDataFrame({"id": range(16)}, geometry=cells, crs=world.crs)
    joined = cdtools.join_parcels(world_regions, grid)
    labels = label_regions(read_change_map(world.change_mask), world_regions.attrs)
    pixel = abs(t.a * t.e)
    for k, (r, c) in enumerate((r, c) for r in range(0, 256, size) for c in range(0, 256, size)):
        window = labels[r : r + size, c : c + size]
        row = joined.iloc[k]
        assert row["parcel_area_m2"] == pytest.approx(size * size * pixel)
        assert row["changed_m2"] == pytest.approx((window > 0).sum() * pixel)
        assert row["share_changed"] == pytest.approx((window > 0).mean())
        assert row["regions"] == len(np.unique(window[window > 0]))
        if (window > 0).any():
            ids, counts = np.unique(window[window > 0], return_counts=True)
            assert row["largest_region_id"] == ids[np.argmax(counts)]
            assert row["largest_region_m2"] == pytest.approx(counts.max() * pixel)
        else:
            assert pd.isna(row["largest_region_id"]) and row["largest_region_m2"] == 0
    assert joined["changed_m2"].sum() == pytest.approx(world_regions["area_m2"].sum())
    assert joined["share_changed"].max() > 0.01


def test_parcels_in_another_crs_are_reprojected(regions, parcels, tmp_path: Path) -> None:
    local = cdtools.join_parcels(regions, parcels)
    degrees = parcels.to_crs("EPSG:4326")
    path = degrees.to_file(tmp_path / "parcels.gpkg") or tmp_path / "parcels.gpkg"
    for given in (degrees, path):
        joined = cdtools.join_parcels(regions, given)
        assert joined.crs == UTM  # the regions' CRS
        for column in ("parcel_area_m2", "changed_m2", "share_changed", "largest_region_m2"):
            assert joined[column].tolist() == pytest.approx(local[column].tolist(), rel=1e-6)
        assert joined["largest_region_id"].tolist()[:2] == [1, 1]


def test_geographic_regions_have_geodesic_areas_as_the_table_has() -> None:
    """A change map in EPSG:4326 (Landsat over Pucallpa is): the parcel's changed area is
    the regions' own area_m2, geodesic both, and the parcel's area is geodesic too."""
    import rioxarray  # noqa: F401

    prob = np.zeros((60, 80), dtype=np.uint8)
    prob[10:30, 10:40] = 250
    prob[40:55, 50:70] = 250
    step = 0.0003
    change = xr.DataArray(
        prob, dims=("y", "x"),
        coords={
            "y": -8.40 - step * (np.arange(60) + 0.5), "x": -74.5 + step * (np.arange(80) + 0.5)
        },
    ).rio.write_crs("EPSG:4326")  # fmt: skip
    regions = cdtools.regions_to_polygons(change, closing=0, opening=0)
    assert len(regions) == 2
    whole = gpd.GeoDataFrame(
        {"id": [7]}, geometry=[box(-74.5, -8.40 - 60 * step, -74.5 + 80 * step, -8.40)],
        crs="EPSG:4326",
    )  # fmt: skip
    joined = cdtools.join_parcels(regions, whole)
    assert joined["changed_m2"][0] == pytest.approx(regions["area_m2"].sum(), rel=1e-4)
    assert joined["largest_region_m2"][0] == pytest.approx(regions["area_m2"][0], rel=1e-4)
    metres = whole.to_crs("EPSG:32718").area[0]  # UTM 18S: within its scale error
    assert joined["parcel_area_m2"][0] == pytest.approx(metres, rel=2e-3)
    assert joined["share_changed"][0] == pytest.approx((20 * 30 + 15 * 20) / (60 * 80), rel=1e-3)


def test_an_invalid_parcel_is_repaired_and_named(regions) -> None:
    bow_tie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])  # two triangles of 25 m²
    parcels = at(bow_tie, box(30, 0, 40, 10), id=[17, 18])
    assert not parcels.is_valid[0]
    with pytest.warns(CdtoolsWarning, match=r"parcels 17 had invalid geometries.*make_valid"):
        joined = cdtools.join_parcels(regions, parcels)
    assert joined.is_valid.all() and joined.attrs["repaired"] == [17]
    assert joined["parcel_area_m2"].tolist() == pytest.approx([50, 100])
    assert joined["changed_m2"].tolist() == pytest.approx([50, 0])  # inside region 1
    assert joined["share_changed"].tolist() == pytest.approx([1.0, 0.0])


def test_parcels_beyond_repair_are_refused_by_id(regions) -> None:
    flat = Polygon([(0, 0), (10, 0), (20, 0), (0, 0)])  # no area: make_valid gives a line
    with pytest.raises(ParameterError, match=r"parcels 5 have invalid geometries.*cannot"):
        cdtools.join_parcels(regions, at(box(0, 0, 1, 1), flat, id=[4, 5]))
    with pytest.raises(ParameterError, match=r"parcels x have no geometry"):
        cdtools.join_parcels(regions, at(box(0, 0, 1, 1), None, id=["w", "x"]))
    with pytest.raises(ParameterError, match=r"parcels 1 are not polygons \(Point\)"):
        cdtools.join_parcels(regions, at(box(0, 0, 1, 1), Point(3, 3)), id_column=None)
    with pytest.raises(ParameterError, match="no CRS"):
        cdtools.join_parcels(regions, gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)]))
    with pytest.raises(ParameterError, match="no column 'field'"):
        cdtools.join_parcels(regions, at(box(0, 0, 1, 1)), id_column="field")


def test_empty_regions_give_every_parcel_zero(world: SampleWorld, parcels) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = cdtools.predictions_to_regions(world.change_mask, min_area_m2=1e9)
        polygons = cdtools.regions_to_polygons(world.change_mask, min_area_m2=1e9)
    assert len(table) == 0 and len(polygons) == 0
    for empty in (table, polygons):
        joined = cdtools.join_parcels(empty, parcels.to_crs(world.crs))
        assert joined["changed_m2"].tolist() == [0, 0, 0]
        assert joined["share_changed"].tolist() == [0, 0, 0]
        assert joined["regions"].tolist() == [0, 0, 0]
        assert joined["largest_region_id"].isna().all()
        assert joined["parcel_area_m2"].tolist() == pytest.approx([200, 200, 100], rel=1e-6)


def test_a_regions_table_with_change_needs_polygons(world: SampleWorld, parcels) -> None:
    table = cdtools.predictions_to_regions(world.change_mask)
    with pytest.raises(ParameterError, match=r"regions_to_polygons\(change\)"):
        cdtools.join_parcels(table, parcels)


def test_split_map_fills_parcels_by_share_changed(world: SampleWorld, regions, parcels) -> None:
    import ipyleaflet
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    from cdtools.widgets.split_map import PARCEL_CMAP

    joined = cdtools.join_parcels(regions, parcels)
    sm = cdtools.SplitMap(world.before, world.after, max_size=32)
    layer = sm.add_parcels(joined)
    assert isinstance(layer, ipyleaflet.GeoJSON) and layer in sm.map.layers
    assert sm.layers["parcels"] is layer and sm.parcel_legend in sm.map.controls
    features = layer.data["features"]
    assert [f["properties"]["id"] for f in features] == ["a", "b", "c"]
    fills = [f["properties"]["style"]["fillColor"] for f in features]
    colours = colormaps[PARCEL_CMAP]
    assert fills == [to_hex(colours(s)) for s in (0.5, 0.35, 0.0)]
    lon, lat = np.array(features[0]["geometry"]["coordinates"][0]).T
    assert ((lon > -98.5) & (lon < -97) & (lat > 30) & (lat < 31)).all()
    assert (
        cdtools.SplitMap(world.before, world.after, parcels=joined, max_size=32)
        .layers["parcels"]
        .data
        == layer.data
    )
    with pytest.raises(ParameterError, match=r"join_parcels\(regions, parcels\)"):
        sm.add_parcels(parcels)
