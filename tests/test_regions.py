"""Regions: areas, centroids and polygons of known shapes; patches at borders; bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401 (registers the .rio accessor)
import xarray as xr
from pyproj import Geod, Transformer
from rasterio.transform import Affine, from_origin

from cdtools.errors import CdtoolsWarning, GridError, ParameterError
from cdtools.io.pair import load_pair
from cdtools.io.raster import write_geotiff
from cdtools.regions.spotcheck import RegionPatch, grab_patches, visual_spot_check
from cdtools.regions.table import (
    COLUMNS,
    localize_regions,
    predictions_to_regions,
    regions_to_polygons,
)
from tests.conftest import CRS, ORIGIN, PIXEL, make_pair

RAW = {"closing": 0, "opening": 0}  # no clean-up: pixel counts as drawn


def change_map(
    prob: np.ndarray,
    *,
    crs: str | None = CRS,
    transform: Affine | None = None,
    nodata: float | None = None,
) -> xr.DataArray:
    """A (y, x) change map DataArray on a known grid (0.5 m pixels in UTM 14N by default)."""
    t = transform or from_origin(*ORIGIN, PIXEL, PIXEL)
    height, width = prob.shape
    coords = {"y": t.f + t.e * (np.arange(height) + 0.5), "x": t.c + t.a * (np.arange(width) + 0.5)}
    da = xr.DataArray(prob, dims=("y", "x"), coords=coords, name="change_probability")
    if crs is not None:
        da = da.rio.write_crs(crs)
    da = da.rio.write_transform(t)
    return da.rio.write_nodata(nodata) if nodata is not None else da


def shapes_map() -> np.ndarray:
    """A 20 x 10 px rectangle (50 m²), an L of 300 px (75 m²) and a 10 x 10 square (25 m²)."""
    prob = np.zeros((80, 100), dtype=np.float32)
    prob[10:20, 30:50] = 0.9  # rows 10-19, columns 30-49
    prob[40:60, 60:80] = 0.8
    prob[50:60, 70:80] = 0.0  # the L: a 20 x 20 square less a 10 x 10 corner
    prob[60:70, 5:15] = 0.7
    return prob


def test_a_rectangle_has_its_area_bbox_centroid_and_lon_lat() -> None:
    prob = np.zeros((60, 80), dtype=np.float32)
    prob[10:20, 30:50] = 0.9
    regions = predictions_to_regions(change_map(prob), **RAW)
    assert list(regions.columns) == list(COLUMNS) and len(regions) == 1
    r = regions.iloc[0]
    assert r["id"] == 1 and r["area_px"] == 200 and r["area_m2"] == pytest.approx(50.0)
    # columns 30-49 span x 620015-620025; rows 10-19 span y 3349995 down to 3349990
    assert (r["minx"], r["maxx"]) == pytest.approx((620015.0, 620025.0))
    assert (r["miny"], r["maxy"]) == pytest.approx((3349990.0, 3349995.0))
    assert (r["row"], r["col"]) == pytest.approx((14.5, 39.5))
    assert (r["centroid_x"], r["centroid_y"]) == pytest.approx((620020.0, 3349992.5))
    to_lonlat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    assert (r["lon"], r["lat"]) == pytest.approx(to_lonlat.transform(620020.0, 3349992.5), abs=1e-9)
    assert (r["lon"], r["lat"]) == pytest.approx((-97.752180, 30.275680), abs=1e-6)
    assert regions.attrs["crs"] == CRS and regions.attrs["units"] == "m2"
    assert regions.attrs["transform"] == (PIXEL, 0.0, ORIGIN[0], 0.0, -PIXEL, ORIGIN[1])
    assert regions.attrs["shape"] == (60, 80) and regions.attrs["threshold"] == 0.5


def test_regions_are_sorted_by_area_with_ids_from_one() -> None:
    regions = predictions_to_regions(change_map(shapes_map()), **RAW)
    assert regions["id"].tolist() == [1, 2, 3]
    assert regions["area_px"].tolist() == [300, 200, 100]
    assert regions["area_m2"].tolist() == pytest.approx([75.0, 50.0, 25.0])
    assert regions["mean_prob"].tolist() == pytest.approx([0.8, 0.9, 0.7])
    lshape = regions.iloc[0]  # pixel centroid of the L, worked out by hand
    assert (lshape["row"], lshape["col"]) == pytest.approx((47.8333333, 67.8333333))


def test_areas_in_feet_and_in_degrees_are_in_square_metres() -> None:
    prob = np.zeros((30, 40), dtype=np.float32)
    prob[5:15, 10:30] = 0.9
    feet = change_map(prob, crs="EPSG:2277", transform=from_origin(3.1e6, 1.0e7, 1.0, 1.0))
    area = predictions_to_regions(feet, min_area_m2=0, **RAW)["area_m2"].iloc[0]
    assert area == pytest.approx(200 * 0.3048006096**2)  # US survey feet
    t = from_origin(10.0, 0.001, 1e-5, 1e-5)  # near the equator
    degrees = predictions_to_regions(change_map(prob, crs="EPSG:4326", transform=t), **RAW)
    (west, north), (east, south) = t @ (10, 5), t @ (30, 15)
    expected, _ = Geod(ellps="WGS84").polygon_area_perimeter(
        [west, east, east, west], [north, north, south, south]
    )
    assert degrees["area_m2"].iloc[0] == pytest.approx(abs(expected), rel=1e-6)
    assert degrees[["lon", "lat"]].iloc[0].tolist() == pytest.approx([10.0002, 0.0009])


def test_diagonal_neighbours_are_one_region() -> None:
    prob = np.zeros((40, 40), dtype=np.float32)
    prob[5:15, 5:15] = prob[15:25, 15:25] = 0.9  # touching at one corner
    regions = predictions_to_regions(change_map(prob), **RAW)
    assert len(regions) == 1 and regions["area_px"].iloc[0] == 200


def test_closing_fills_gaps_and_opening_removes_specks() -> None:
    prob = np.zeros((40, 60), dtype=np.float32)
    prob[5:25, 5:20] = prob[5:25, 21:36] = 0.9  # two blocks, one column apart
    prob[30, 40:60] = 0.9  # a one-pixel line
    prob[35, 10] = 0.9  # a speck
    kept = {"min_area_m2": 0}
    assert len(predictions_to_regions(change_map(prob), **RAW, **kept)) == 4
    closed = predictions_to_regions(change_map(prob), closing=1, opening=0, **kept)
    # the gap is filled but for its ends (a disk of radius 1 is a cross); line and speck stay
    assert closed["area_px"].tolist() == [2 * 20 * 15 + 18, 20, 1]
    cleaned = predictions_to_regions(change_map(prob), **kept)  # closing and opening of 1
    assert cleaned["area_px"].tolist() == [2 * 20 * 15 + 18 - 4]  # no line, no speck, no corners


def test_threshold_from_the_argument_the_map_or_one_half() -> None:
    prob = np.zeros((40, 40), dtype=np.float32)
    prob[5:15, 5:25] = 0.8
    prob[25:35, 5:25] = 0.4
    prob[20, 30:40] = 0.5  # not above 0.5
    assert len(predictions_to_regions(change_map(prob), **RAW)) == 1
    assert len(predictions_to_regions(change_map(prob), threshold=0.3, **RAW)) == 2
    stored = change_map(prob).assign_attrs(threshold=0.3)
    assert predictions_to_regions(stored, **RAW).attrs["threshold"] == 0.3
    assert len(predictions_to_regions(stored, **RAW)) == 2
    assert len(predictions_to_regions(stored, threshold=0.9, **RAW)) == 0
    with pytest.raises(ParameterError, match="threshold must be in"):
        predictions_to_regions(change_map(prob), threshold=1.5)


def test_min_area_drops_small_regions() -> None:
    prob = np.zeros((40, 40), dtype=np.float32)
    prob[5:15, 5:9] = 0.9  # 40 px = 10 m²
    prob[20:30, 5:25] = 0.9  # 50 m²
    assert predictions_to_regions(change_map(prob), **RAW)["area_m2"].tolist() == [50.0]
    small = predictions_to_regions(change_map(prob), min_area_m2=5, **RAW)
    assert small["area_m2"].tolist() == [50.0, 10.0]
    assert len(predictions_to_regions(change_map(prob), min_area_m2=60, **RAW)) == 0


def test_uint8_with_255_and_float_with_nan_give_the_same_regions(tmp_path: Path) -> None:
    prob = shapes_map()
    prob[0:30, 0:10] = np.nan  # no data
    prob[12:18, 40:42] = np.nan  # a hole of no data inside the rectangle
    coded = np.where(np.isnan(prob), 255, np.round(np.nan_to_num(prob) * 255)).astype(np.uint8)
    t = from_origin(*ORIGIN, PIXEL, PIXEL)
    write_geotiff(tmp_path / "coded.tif", coded, transform=t, crs=CRS, nodata=255)
    write_geotiff(tmp_path / "float.tif", prob, transform=t, crs=CRS)
    inputs = {
        "float": change_map(prob),
        "uint8": change_map(coded, nodata=255),
        "uint8 without nodata": change_map(coded),  # 255 is no data, as predict_scene writes
        "lazy": change_map(coded, nodata=255).chunk({"y": 32, "x": 32}),
        "uint8 file": tmp_path / "coded.tif",
        "float file": str(tmp_path / "float.tif"),
    }
    tables = {name: predictions_to_regions(value) for name, value in inputs.items()}
    reference = tables["float"]
    assert reference["area_px"].tolist() == [296, 180, 96]  # less corners, the hole and its ends
    geometry = ["id", "area_m2", "area_px", "minx", "miny", "maxx", "maxy", "row", "col", "lon"]
    for name, table in tables.items():
        assert table.attrs["crs"] == CRS, name
        np.testing.assert_allclose(table[geometry], reference[geometry], err_msg=name)
        np.testing.assert_allclose(table["mean_prob"], reference["mean_prob"], atol=1 / 255)


def test_a_change_mask_counts_its_ones(tmp_path: Path) -> None:
    """`cdtools predict --mask` writes 0/1 (255: no data), described as a change mask."""
    mask = np.zeros((40, 40), dtype=np.uint8)
    mask[5:15, 5:25] = 1
    mask[30:, :] = 255
    described = {"long_name": "change mask (0/1, 255: no data)", "threshold": 0.38}
    regions = predictions_to_regions(change_map(mask).assign_attrs(described), **RAW)
    assert regions["area_px"].tolist() == [200] and regions["mean_prob"].tolist() == [1.0]
    path = write_geotiff(
        tmp_path / "mask.tif",
        mask,
        transform=from_origin(*ORIGIN, PIXEL, PIXEL),
        crs=CRS,
        nodata=255,
    )
    with rasterio.open(path, "r+") as dst:
        dst.set_band_description(1, described["long_name"])
        dst.update_tags(threshold="0.38")
    from_file = predictions_to_regions(path, **RAW)
    assert from_file["area_px"].tolist() == [200] and from_file.attrs["threshold"] == 0.38


def test_a_float_map_of_0_to_255_is_refused_clearly() -> None:
    prob = np.full((10, 10), 200.0, dtype=np.float32)
    with pytest.raises(ParameterError, match="divide it by 255"):
        predictions_to_regions(change_map(prob))
    with pytest.raises(ParameterError, match="uint8"):
        predictions_to_regions(change_map(np.zeros((10, 10), dtype=np.int32)))


def test_a_map_without_crs_counts_pixels_and_says_so() -> None:
    prob = np.zeros((40, 40), dtype=np.float32)
    prob[5:15, 5:25] = 0.9  # 200 px
    prob[20:25, 5:10] = 0.9  # 25 px
    with pytest.warns(CdtoolsWarning, match="areas are in pixels"):
        regions = predictions_to_regions(change_map(prob, crs=None), min_area_m2=30, **RAW)
    assert regions.attrs["units"] == "px" and regions.attrs["crs"] is None
    assert regions["area_px"].tolist() == [200]  # min_area_m2 counted pixels
    assert regions[["area_m2", "lon", "lat"]].isna().all().all()
    # Centroids stay in the map's own coordinates: the rectangle's centre, 15 px east and
    # 10 px south of the origin.
    centroid = regions[["centroid_x", "centroid_y"]].iloc[0].tolist()
    assert centroid == pytest.approx([ORIGIN[0] + 15 * PIXEL, ORIGIN[1] - 10 * PIXEL])
    with pytest.warns(CdtoolsWarning, match="areas are in pixels"):
        plain = predictions_to_regions(prob, min_area_m2=0, **RAW)  # a bare array: pixel grid
    assert plain["area_px"].tolist() == [200, 25]
    assert plain[["centroid_x", "centroid_y"]].iloc[0].tolist() == [15.0, 10.0]


def test_an_empty_map_gives_an_empty_table_with_the_columns() -> None:
    for prob in (np.zeros((20, 30), np.float32), np.full((20, 30), np.nan, np.float32)):
        regions = predictions_to_regions(change_map(prob))
        assert regions.empty and list(regions.columns) == list(COLUMNS)
        assert regions["id"].dtype == np.int64 and regions["area_m2"].dtype == np.float64
        polygons = regions_to_polygons(change_map(prob))
        assert polygons.empty and polygons.crs == CRS
        assert list(polygons.columns) == [*COLUMNS, "geometry"]
        points = localize_regions(regions)
        assert points.empty and points.crs == CRS


def test_localize_regions_gives_centroid_points() -> None:
    regions = predictions_to_regions(change_map(shapes_map()), **RAW)
    points = localize_regions(regions)
    assert isinstance(points, gpd.GeoDataFrame) and points.crs == CRS
    assert list(points.columns) == [*COLUMNS, "geometry"]
    assert points.geometry.x.tolist() == regions["centroid_x"].tolist()
    assert points.geometry.y.tolist() == regions["centroid_y"].tolist()


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg"])
def test_polygons_round_trip_with_their_crs(tmp_path: Path, suffix: str) -> None:
    prob = shapes_map()
    prob[0:5, 0:5] = prob[5:10, 5:10] = 0.9  # two squares touching at a corner: one region
    polygons = regions_to_polygons(change_map(prob), min_area_m2=10, **RAW)
    assert polygons.crs == CRS and polygons["id"].tolist() == [1, 2, 3, 4]
    assert polygons.geometry.is_valid.all()
    assert polygons.geometry.area.tolist() == pytest.approx(polygons["area_m2"].tolist())
    assert polygons.geometry.geom_type.tolist() == ["Polygon"] * 3 + ["MultiPolygon"]
    first = polygons.geometry.iloc[1].bounds  # the rectangle follows its pixels' edges
    assert first == pytest.approx((620015.0, 3349990.0, 620025.0, 3349995.0))
    path = tmp_path / f"regions{suffix}"
    polygons.to_file(path)
    back = gpd.read_file(path)
    assert back.crs == CRS and list(back.columns) == [*COLUMNS, "geometry"]
    assert back["id"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(back["area_m2"], polygons["area_m2"])
    # GeoPackage stores one geometry type per layer: its polygons come back as multipolygons
    assert back.geometry.geom_equals(polygons.geometry).all()


@pytest.fixture
def scene(tmp_path: Path):
    """A 300 x 200 pair (lazy, from load_pair) and a change map on its grid with regions at
    the top-left corner, in the middle and at the bottom-right corner."""
    files = make_pair(tmp_path / "scene")
    pair = load_pair(files.before, files.after, chunks={"band": -1, "y": 64, "x": 64})
    prob = np.zeros((files.height, files.width), dtype=np.float32)
    prob[0:10, 0:12] = 0.9  # corner: 120 px
    prob[140:160, 90:110] = 0.9  # middle: 400 px
    prob[292:300, 190:200] = 0.9  # corner: 80 px
    return pair, change_map(prob)


def test_patches_at_scene_borders_are_padded_with_nan(scene) -> None:
    pair, prob = scene
    regions = predictions_to_regions(prob, **RAW)
    assert regions["area_px"].tolist() == [400, 120, 80]
    patches = grab_patches(pair, regions, size=32)
    padded = np.pad(pair.values, ((0, 0), (0, 0), (32, 32), (32, 32)), constant_values=np.nan)
    assert [p.id for p in patches] == [1, 2, 3]
    for patch, (_, region) in zip(patches, regions.iterrows(), strict=True):
        assert isinstance(patch, RegionPatch) and patch.before.dtype == np.float32
        assert patch.before.shape == patch.after.shape == (3, 32, 32)
        assert patch.centroid == (region["centroid_x"], region["centroid_y"])
        window = padded[..., patch.row + 32 : patch.row + 64, patch.col + 32 : patch.col + 64]
        np.testing.assert_array_equal(np.stack([patch.before, patch.after]), window)
    middle, top_left, bottom_right = patches
    assert (middle.row, middle.col) == (134, 84) and not np.isnan(middle.before).any()
    assert (top_left.row, top_left.col) == (-11, -10)  # centroid (4.5, 5.5)
    assert np.isnan(top_left.before[:, :11]).all() and np.isnan(top_left.after[:, :, :10]).all()
    assert not np.isnan(top_left.before[:, 11:, 10:]).any()
    assert (bottom_right.row, bottom_right.col) == (280, 179)
    assert np.isnan(bottom_right.after[:, 20:]).all()
    assert np.isnan(bottom_right.after[:, :, 21:]).all()


def test_patches_need_the_change_maps_grid(scene) -> None:
    pair, prob = scene
    regions = predictions_to_regions(prob)
    with pytest.raises(GridError, match="not on the regions' grid"):
        grab_patches(pair.isel(x=slice(10, None)), regions)
    with pytest.raises(ParameterError, match="time=2, band, y, x"):
        grab_patches(pair[0], regions)
    patch = grab_patches(pair, regions.head(1), size=8)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        patch.id = 5  # type: ignore[misc]


def test_visual_spot_check_has_a_row_per_region_largest_first(scene) -> None:
    pair, prob = scene
    regions = predictions_to_regions(prob)
    fig = visual_spot_check(pair, prob, regions.iloc[::-1], n=2, size=48)
    assert len(fig.axes) == 2 * 3
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("region 1 (99 m²)") and titles[3].startswith("region 2 (30 m²)")
    assert titles[1:3] == ["change probability", "after"]
    assert all(ax.collections for ax in fig.axes)  # the outline is drawn on every panel
    empty = visual_spot_check(pair, prob, regions.iloc[:0])
    assert empty.axes[0].texts[0].get_text() == "no change regions"
