"""The map panels (SplitMap, TimeSlider) and their web images, driven without a browser.

Everything a browser would be sent is checked here: where each image lands (its Web
Mercator bounds), its size, which pixels are transparent, the zoom, the layers, panes
and controls of the map, and what the sliders do. tests/test_browser.py looks at the
same panels in a real browser.
"""

from __future__ import annotations

import base64
import io
import math
import re
from pathlib import Path
from unittest import mock

import ipyleaflet
import ipywidgets as widgets
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from PIL import Image
from pyproj import Transformer
from rasterio.transform import from_origin
from rasterio.warp import calculate_default_transform, reproject, transform, transform_bounds

import cdtools
from cdtools.errors import ParameterError
from cdtools.io.raster import write_geotiff
from cdtools.synthetic import SampleSeries, SampleWorld
from cdtools.widgets import SplitMap, TimeSlider
from cdtools.widgets.time_slider import _CLEAR
from cdtools.widgets.web_image import (
    CHANGE_RGB,
    MAX_SIZE,
    WEB_MERCATOR,
    ZOOM_SNAP,
    WebImage,
    change_url,
    png_url,
    rgb_url,
    view_of,
    web_image,
)
from tests.conftest import make_pair

UTM = "EPSG:32614"
MERIDIAN = (500000.0, 3350000.0)  # on zone 14's central meridian: UTM and Mercator axes agree
PIXEL = 0.5
WEB_METRES_AT_ZOOM_0 = 40075016.686  # metres of Web Mercator x per 256 px tile at zoom 0


# --- helpers ----------------------------------------------------------------------------


def pixels(url: str, kind: str = "png") -> np.ndarray:
    """The ``(h, w, 4)`` RGBA pixels of a ``data:image/...;base64,`` URL."""
    header, payload = url.split(",", 1)
    assert header == f"data:image/{kind};base64"
    image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
    assert image.format == kind.upper()
    return np.asarray(image.convert("RGBA"))


def write_utm(
    path: Path,
    data: np.ndarray,
    *,
    origin: tuple[float, float] = MERIDIAN,
    pixel: float = PIXEL,
    crs: str = UTM,
    **options,
) -> Path:
    return write_geotiff(
        path, data, transform=from_origin(*origin, pixel, pixel), crs=crs, **options
    )


def noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 250, shape, dtype=np.uint8)


def source_bounds(path: Path) -> tuple[float, float, float, float]:
    with rasterio.open(path) as src:
        return tuple(src.bounds)


def web_box(image: WebImage) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of ``image`` in Web Mercator metres."""
    t, (height, width) = image.transform, image.values.shape[1:]
    return t.c, t.f + height * t.e, t.c + width * t.a, t.f


def corners_back(image: WebImage, crs: str) -> np.ndarray:
    """The image's bounds (degrees, as ipyleaflet has them) in ``crs``: (l, b, r, t)."""
    (south, west), (north, east) = image.bounds
    xs, ys = transform("EPSG:4326", crs, [west, east], [south, north])
    return np.array([xs[0], ys[0], xs[1], ys[1]])


def flat(bounds) -> list[float]:
    """((south, west), (north, east)) as four numbers (ipyleaflet keeps lists of lists)."""
    return [float(v) for corner in bounds for v in corner]


def percent(summary: str) -> float:
    found = re.search(r"changed: ([\d.]+)% of the mapped area", summary)
    assert found, summary
    return float(found.group(1))


def data_array(values: np.ndarray, *, origin=MERIDIAN, pixel=PIXEL, crs=UTM) -> xr.DataArray:
    import rioxarray  # noqa: F401

    height, width = values.shape[-2:]
    array = xr.DataArray(
        values,
        dims=("band", "y", "x"),
        coords={
            "y": origin[1] - pixel * (np.arange(height) + 0.5),
            "x": origin[0] + pixel * (np.arange(width) + 0.5),
        },
    )
    return array.rio.write_crs(crs) if crs else array


# --- shared data ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SampleWorld:
    return cdtools.make_scene_pair(tmp_path_factory.mktemp("world"), size=256, seed=2)


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> SampleSeries:
    return cdtools.make_time_series(tmp_path_factory.mktemp("series"), dates=3, size=256, seed=2)


@pytest.fixture(scope="module")
def ramp(world: SampleWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A uint8 probability x 255 map on the world's grid: 0 on the west edge to 254 east,
    and 255 (no data) in the top 16 rows, so that each threshold keeps a different share."""
    prob = np.tile(np.linspace(0, 254, 256).round().astype(np.uint8), (256, 1))
    prob[:16] = 255
    path = tmp_path_factory.mktemp("ramp") / "prob.tif"
    return write_geotiff(path, prob, transform=world.transform, crs=world.crs)


@pytest.fixture(scope="module")
def polygons(world: SampleWorld):
    return cdtools.regions_to_polygons(world.change_mask)


@pytest.fixture(scope="module")
def split_map(world: SampleWorld, ramp: Path, polygons) -> SplitMap:
    return SplitMap(world.before, world.after, change=ramp, regions=polygons)


# --- web_image --------------------------------------------------------------------------


@pytest.mark.parametrize("max_size", [MAX_SIZE, 120, 37])
@pytest.mark.parametrize(("height", "width"), [(200, 300), (300, 200)])
def test_a_utm_geotiff_lands_on_its_corners_in_web_mercator(
    tmp_path: Path, height: int, width: int, max_size: int
) -> None:
    path = write_utm(tmp_path / "scene.tif", noise((3, height, width)))
    image = web_image(path, max_size=max_size)
    # The grid is Web Mercator: its corner is where pyproj puts the raster's corner.
    to_web = Transformer.from_crs(UTM, "EPSG:3857", always_xy=True)
    west, north = to_web.transform(*MERIDIAN)
    assert image.transform.c == pytest.approx(west, abs=1.0)
    assert image.transform.f == pytest.approx(north, abs=1.0)
    # Its bounds, taken back to UTM, are the raster's corners within one source pixel.
    assert corners_back(image, UTM) == pytest.approx(source_bounds(path), abs=PIXEL)
    assert image.values.dtype == np.float32 and image.values.shape[0] == 3
    assert max(image.values.shape[1:]) <= max_size


def test_off_the_central_meridian_the_bounds_are_the_footprint_s_envelope(
    tmp_path: Path,
) -> None:
    """The conftest pair lies 120 km east of the meridian, where UTM's grid is turned by
    about 0.6° against Mercator's: the image is the envelope of the turned footprint."""
    pair = make_pair(tmp_path)
    for max_size in (MAX_SIZE, 64):
        image = web_image(pair.before, max_size=max_size)
        envelope = transform_bounds(UTM, WEB_MERCATOR, *source_bounds(pair.before), densify_pts=21)
        metres_per_pixel = PIXEL / math.cos(math.radians(30.27))  # Mercator's scale there
        assert web_box(image) == pytest.approx(envelope, abs=metres_per_pixel)
        (south, west), (north, east) = image.bounds
        degrees = transform_bounds(UTM, "EPSG:4326", *source_bounds(pair.before), densify_pts=21)
        assert (west, south, east, north) == pytest.approx(degrees, abs=1e-5)


@pytest.mark.parametrize("max_size", [16, 60, 101, 116, 224, 500])  # 116, 224: float edges
def test_the_long_side_is_max_size_and_the_footprint_stays(tmp_path: Path, max_size: int) -> None:
    path = write_utm(tmp_path / "big.tif", noise((3, 1000, 700)))
    image = web_image(path, max_size=max_size)
    height, width = image.values.shape[1:]
    assert height == max_size and width < height
    assert corners_back(image, UTM) == pytest.approx(source_bounds(path), abs=PIXEL)
    array = web_image(data_array(noise((3, 1000, 700)).astype(np.float32)), max_size=max_size)
    assert array.values.shape[1] == max_size
    assert corners_back(array, UTM) == pytest.approx(source_bounds(path), abs=PIXEL)


def test_max_size_below_16_is_refused(tmp_path: Path) -> None:
    path = write_utm(tmp_path / "scene.tif", noise((3, 40, 40)))
    with pytest.raises(ParameterError, match="at least 16 pixels"):
        web_image(path, max_size=8)


def _west_half_empty(image: WebImage) -> None:
    """The west half (no data in the source) is NaN in every band, the east half is not."""
    width = image.values.shape[2]
    inside = image.values[:, 2:-2]  # rows at the edges may be half outside
    assert np.isnan(inside[:, :, : width // 2 - 2]).all()
    assert np.isfinite(inside[:, :, width // 2 + 2 :]).all()


def test_nodata_valid_masks_and_nan_stay_nan(tmp_path: Path) -> None:
    data = noise((3, 80, 120))
    data[:, :, :60] = 0
    valid = np.ones((80, 120), dtype=bool)
    valid[:, :60] = False
    floats = data.astype(np.float32)
    floats[:, :, :60] = np.nan
    for raster in (
        write_utm(tmp_path / "nodata.tif", data, nodata=0),
        write_utm(tmp_path / "valid.tif", noise((3, 80, 120)), valid=valid),
        write_utm(tmp_path / "nan.tif", floats),
        data_array(floats),
        data_array(data).rio.write_nodata(0),
    ):
        _west_half_empty(web_image(raster))


def test_a_data_array_of_several_dates_says_to_pick_one(world: SampleWorld) -> None:
    pair = cdtools.load_pair(world.before, world.after)
    assert pair.dims == ("time", "band", "y", "x")
    with pytest.raises(ParameterError, match=r"select one date, e\.g\. pair\.sel\(time="):
        web_image(pair)
    before = web_image(pair.sel(time="before"), max_size=64)  # what the message suggests
    assert max(before.values.shape[1:]) == 64


def test_rasters_without_crs_or_grid_are_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"has no CRS.*\.rio\.write_crs"):
        web_image(data_array(noise((3, 20, 20)), crs=None))
    plain = write_geotiff(tmp_path / "plain.tif", noise((3, 20, 20)))
    with pytest.raises(ParameterError, match=r"plain\.tif has no CRS"):
        web_image(plain)
    with pytest.raises(ParameterError, match="GeoTIFF path or an xarray DataArray"):
        web_image(noise((3, 20, 20)))


def test_a_raster_in_degrees_lands_on_its_corners(tmp_path: Path) -> None:
    step = 1e-5  # about a metre
    path = write_utm(
        tmp_path / "lonlat.tif", noise((3, 120, 160)), origin=(-97.75, 30.27), pixel=step,
        crs="EPSG:4326",
    )  # fmt: skip
    for max_size in (MAX_SIZE, 50):
        image = web_image(path, max_size=max_size)
        (south, west), (north, east) = image.bounds
        assert (west, south, east, north) == pytest.approx(source_bounds(path), abs=step)
        assert max(image.values.shape[1:]) <= max_size and np.isfinite(image.values).all()


# --- data URLs --------------------------------------------------------------------------


def test_rgb_url_is_a_png_of_the_image_transparent_where_no_data(tmp_path: Path) -> None:
    data = noise((3, 80, 120))
    data[:, :, :60] = 0
    image = web_image(write_utm(tmp_path / "half.tif", data, nodata=0))
    rgba = pixels(rgb_url(image))
    height, width = image.values.shape[1:]
    assert rgba.shape == (height, width, 4)
    valid = np.isfinite(image.values).all(axis=0)
    assert 0 < valid.mean() < 1
    assert (rgba[..., 3] == np.where(valid, 255, 0)).all()
    assert rgba[valid][:, :3].std() > 20  # the noise shows, stretched


def test_change_url_is_opaque_colour_at_or_above_threshold_else_clear() -> None:
    prob = np.linspace(0, 1, 11, dtype=np.float32)[None].repeat(3, axis=0)
    prob[1, :] = np.nan
    rgba = pixels(change_url(prob, 0.5))
    assert rgba.shape == (3, 11, 4)
    changed = np.nan_to_num(prob, nan=-1) >= np.float32(0.5)
    assert changed[0].tolist() == [False] * 5 + [True] * 6  # 0.5 itself is change
    assert (rgba[..., 3] == np.where(changed, 255, 0)).all()
    assert (rgba[changed][:, :3] == CHANGE_RGB).all()
    assert (pixels(change_url(prob, 0.5, colour=(1, 2, 3)))[changed][:, :3] == (1, 2, 3)).all()
    assert (pixels(change_url(prob, 1.01))[..., 3] == 0).all()


def test_png_url_keeps_every_pixel() -> None:
    rgb = noise((5, 7, 3))
    assert (pixels(png_url(rgb))[..., :3] == rgb).all()
    rgba = noise((5, 7, 4))
    assert (pixels(png_url(rgba)) == rgba).all()


# --- view_of ----------------------------------------------------------------------------


def _pixels_at(image: WebImage, zoom: float) -> tuple[float, float]:
    metres_per_pixel = WEB_METRES_AT_ZOOM_0 / (256 * 2**zoom)
    left, bottom, right, top = web_box(image)
    return (right - left) / metres_per_pixel, (top - bottom) / metres_per_pixel


@pytest.mark.parametrize(
    ("height", "width", "pixel"), [(200, 300, 0.5), (300, 60, 0.5), (40, 40, 30)]
)
def test_view_of_is_the_largest_snapped_zoom_that_fits_800_by_480(
    tmp_path: Path, height: int, width: int, pixel: float
) -> None:
    image = web_image(write_utm(tmp_path / "scene.tif", noise((3, height, width)), pixel=pixel))
    (lat, lon), zoom = view_of(image)
    assert zoom / ZOOM_SNAP == int(zoom / ZOOM_SNAP)
    across, down = _pixels_at(image, zoom)
    assert across <= 800 and down <= 480
    across, down = _pixels_at(image, zoom + ZOOM_SNAP)  # so also at zoom + 1
    assert across > 800 or down > 480
    (south, west), (north, east) = image.bounds
    assert south < lat < north and west < lon < east
    _, small = view_of(image, width=400, height=240)
    assert small == zoom - 1  # half the pixels each way: one zoom level out


# --- SplitMap ---------------------------------------------------------------------------


def test_split_map_has_only_its_own_layers_in_their_panes(
    split_map: SplitMap, world: SampleWorld
) -> None:
    sm = split_map
    assert list(sm.map.layers) == list(sm.layers.values())  # no basemap
    assert set(sm.layers) == {"before", "after", "change", "regions", "markers"}
    assert not any(isinstance(layer, ipyleaflet.TileLayer) for layer in sm.map.layers)
    for name in ("before", "after", "change"):
        assert sm.layers[name].pane == name
        assert isinstance(sm.layers[name], ipyleaflet.ImageOverlay)
    z = {name: sm.map.panes[name]["zIndex"] for name in ("before", "after", "change")}
    assert z["before"] < z["after"] < z["change"] < 400  # vectors (400) stay on top
    (swipe,) = [c for c in sm.map.controls if isinstance(c, ipyleaflet.SplitMapControl)]
    assert swipe.left_layer is sm.layers["before"] and swipe.right_layer is sm.layers["after"]
    assert sm.layers["before"].url != sm.layers["after"].url
    assert flat(sm.layers["change"].bounds) == flat(sm.layers["before"].bounds)
    assert flat(sm.layers["before"].bounds) == flat(sm.before.bounds)
    assert flat(sm.layers["after"].bounds) == flat(sm.after.bounds)
    assert sm.map.zoom == view_of(sm.before)[1] and sm.map.zoom_snap == ZOOM_SNAP
    for name in ("before", "after"):
        assert pixels(sm.layers[name].url).shape[:2] == getattr(sm, name).values.shape[1:]
    with_osm = SplitMap(world.before, world.after, basemap=True, max_size=64)
    tiles = [layer for layer in with_osm.map.layers if isinstance(layer, ipyleaflet.TileLayer)]
    assert len(tiles) == 1 and "openstreetmap" in tiles[0].url
    assert list(with_osm.map.layers) == [tiles[0], *with_osm.layers.values()]


def test_split_map_threshold_changes_the_overlay_and_the_share(split_map: SplitMap) -> None:
    sm, shares, urls = split_map, [], set()
    for threshold in (0.1, 0.3, 0.5, 0.7, 0.9):
        sm.set_threshold(threshold)
        urls.add(sm.layers["change"].url)
        shares.append(percent(sm.summary.value))
        assert f"at threshold {threshold:.2f}" in sm.summary.value
        shown = pixels(sm.layers["change"].url)[..., 3] == 255
        assert (shown == (np.nan_to_num(sm.change, nan=-1) >= threshold)).all()
    assert len(urls) == 5 and shares == sorted(shares, reverse=True) and shares[0] > shares[-1]
    sm.set_threshold(0.5)
    valid = np.isfinite(sm.change)
    assert 0.8 < valid.mean() < 1  # the no-data rows are not part of the share
    by_hand = (sm.change[valid] >= 0.5).mean()
    assert f"changed: {by_hand:.1%} " in sm.summary.value
    assert percent(sm.summary.value) == pytest.approx(50, abs=5)  # about half of the ramp


def test_split_map_sliders_drive_threshold_and_opacity(split_map: SplitMap) -> None:
    sm = split_map
    assert sm.threshold.value == 0.5 and sm.layers["change"].opacity == 0.7  # the defaults
    assert sm.widget.children[1].children == (sm.threshold, sm.opacity, sm.summary)
    before = sm.layers["change"].url
    sm.threshold.value = 0.8  # as the user moves it
    assert sm.layers["change"].url != before
    assert sm.layers["change"].url == change_url(sm.change, 0.8)
    assert "at threshold 0.80" in sm.summary.value
    sm.opacity.value = 0.25
    assert sm.layers["change"].opacity == 0.25
    sm.set_opacity(1)
    assert sm.layers["change"].opacity == 1.0
    sm.threshold.value = 0.5


def test_split_map_first_threshold_comes_from_the_argument(world: SampleWorld, ramp: Path) -> None:
    sm = SplitMap(world.before, world.after, change=ramp, threshold=0.3, max_size=64)
    assert sm.threshold.value == 0.3 and "at threshold 0.30" in sm.summary.value
    assert sm.layers["change"].url == change_url(sm.change, 0.3)


def test_region_outlines_are_geojson_in_degrees_inside_the_map(
    split_map: SplitMap, polygons
) -> None:
    outlines = split_map.layers["regions"]
    assert isinstance(outlines, ipyleaflet.GeoJSON) and len(polygons) == 2
    features = outlines.data["features"]
    assert [f["properties"]["id"] for f in features] == list(polygons["id"])
    (south, west), (north, east) = split_map.before.bounds
    for feature in features:
        rings = feature["geometry"]["coordinates"]
        points = np.array([p for ring in rings for p in ring])  # (lon, lat) of each vertex
        assert (west <= points[:, 0]).all() and (points[:, 0] <= east).all()
        assert (south <= points[:, 1]).all() and (points[:, 1] <= north).all()
    expected = polygons.to_crs("EPSG:4326").total_bounds
    everything = np.array([p for f in features for r in f["geometry"]["coordinates"] for p in r])
    assert [*everything.min(axis=0), *everything.max(axis=0)] == pytest.approx(expected)


def test_one_marker_per_region_largest_first_with_its_area(split_map: SplitMap, polygons) -> None:
    markers = split_map.markers
    assert split_map.layers["markers"].layers == tuple(markers)
    assert len(markers) == len(polygons) == 2
    largest = polygons.sort_values("area_m2", ascending=False)
    for marker, (_, region) in zip(markers, largest.iterrows(), strict=True):
        assert isinstance(marker, ipyleaflet.CircleMarker)
        assert marker.location == pytest.approx((region["lat"], region["lon"]))
        assert f"region {region['id']}" in marker.popup.value
        assert f"{region['area_m2']:,.0f} m²" in marker.popup.value
    assert "→" not in markers[0].popup.value  # no classes given


def test_classes_join_on_id_and_name_what_became_what(world: SampleWorld, polygons) -> None:
    classes = pd.DataFrame(
        {
            "id": [2, 1],
            "class_before": ["AnnualCrop", "Forest"],
            "confidence_before": [0.6, 0.9],
            "class_after": ["Industrial", "Residential"],
            "confidence_after": [0.7, 0.8],
        }
    )
    sm = SplitMap(world.before, world.after, regions=polygons, classes=classes, max_size=64)
    popups = [m.popup.value for m in sm.markers]
    assert "Forest → Residential" in popups[0] and "region 1" in popups[0]
    assert "AnnualCrop → Industrial" in popups[1]
    assert "regions" in sm.layers  # still polygons after the join
    partial = SplitMap(
        world.before, world.after, regions=polygons, classes=classes[:1], max_size=64
    )
    assert "→" not in partial.markers[0].popup.value  # region 1 has no classes
    assert "AnnualCrop → Industrial" in partial.markers[1].popup.value


def test_a_regions_table_gives_markers_only(world: SampleWorld) -> None:
    table = cdtools.predictions_to_regions(world.change_mask)
    assert not hasattr(table, "geometry") and len(table) == 2
    sm = SplitMap(world.before, world.after, regions=table, max_size=64)
    assert "regions" not in sm.layers and len(sm.markers) == 2
    assert not any(isinstance(layer, ipyleaflet.GeoJSON) for layer in sm.map.layers)
    assert sm.markers[0].location == pytest.approx((table["lat"][0], table["lon"][0]))


def test_set_threshold_without_a_change_map_says_to_pass_one(world: SampleWorld) -> None:
    sm = SplitMap(world.before, world.after, max_size=64)
    assert sm.change is None and "change" not in sm.layers
    assert sm.widget.children[1].children == ()
    with pytest.raises(ParameterError, match=r"no change map; pass change=\.\.\."):
        sm.set_threshold(0.5)


def test_dates_in_different_crs_land_on_the_same_place(world: SampleWorld, tmp_path: Path) -> None:
    with rasterio.open(world.after) as src:
        grid, width, height = calculate_default_transform(
            src.crs, "EPSG:4326", src.width, src.height, *src.bounds
        )
        lonlat = np.zeros((src.count, height, width), dtype=np.uint8)
        reproject(
            src.read(), lonlat, src_transform=src.transform, src_crs=src.crs,
            dst_transform=grid, dst_crs="EPSG:4326",
        )  # fmt: skip
    after = write_geotiff(tmp_path / "after_4326.tif", lonlat, transform=grid, crs="EPSG:4326")
    sm = SplitMap(world.before, after, change=world.change_mask, max_size=128)
    (s1, w1), (n1, e1) = sm.before.bounds
    (s2, w2), (n2, e2) = sm.after.bounds
    overlap = max(0, min(e1, e2) - max(w1, w2)) * max(0, min(n1, n2) - max(s1, s2))
    union = (max(e1, e2) - min(w1, w2)) * (max(n1, n2) - min(s1, s2))
    assert overlap / union > 0.97
    assert flat(sm.layers["after"].bounds) == flat(sm.after.bounds)
    assert percent(sm.summary.value) == pytest.approx(2.0, abs=0.3)  # the mask's 1302 px of 65536


# --- TimeSlider -------------------------------------------------------------------------


def test_time_slider_takes_every_form_of_a_series(series: SampleSeries) -> None:
    dates = ("2018-07-01", "2019-07-01", "2020-07-01")
    assert series.dates == dates
    forms = {
        "series": series,
        "dict": dict(zip(series.dates, series.scenes, strict=True)),
        "pairs": list(zip(series.dates, series.scenes, strict=True)),
        "load_series": cdtools.load_series(series),
    }
    urls = {}
    for name, scenes in forms.items():
        ts = TimeSlider(scenes, max_size=64)
        assert ts.dates == dates, name
        assert ts.slider.options == dates and ts.index == 0
        assert len(set(ts.urls)) == 3 and ts.image.url == ts.urls[0]
        assert pixels(ts.urls[0]).shape[:2] == (64, 64)
        urls[name] = ts.urls
    assert urls["series"] == urls["dict"] == urls["pairs"]  # the same files, the same images
    dates_ = [np.datetime64(d) for d in dates]
    assert TimeSlider(dict(zip(dates_, series.scenes, strict=True)), max_size=32).dates == dates


def test_show_swaps_the_image_label_and_slider(series: SampleSeries) -> None:
    ts = TimeSlider(series, max_size=64)
    assert ts.label.value == "2018-07-01 (1 of 3)" and ts.change is None
    ts.show(2)
    assert ts.image.url == ts.urls[2] and ts.slider.index == 2 and ts.index == 2
    assert ts.slider.value == "2020-07-01" and ts.label.value == "2020-07-01 (3 of 3)"
    ts.slider.index = 1  # as the user moves it (or the play button does)
    assert ts.image.url == ts.urls[1] and ts.label.value == "2019-07-01 (2 of 3)"
    ts.slider.value = "2018-07-01"
    assert ts.image.url == ts.urls[0] and ts.index == 0
    assert isinstance(ts.play, widgets.Play) and (ts.play.min, ts.play.max) == (0, 2)


def test_change_since_the_previous_date_is_drawn_on_top(series: SampleSeries) -> None:
    ts = TimeSlider(series, changes=series.changes, max_size=64)
    assert ts.change in ts.map.layers and ts.map.layers.index(ts.change) > 0
    assert ts.change.url == _CLEAR and (pixels(ts.change.url, "gif")[..., 3] == 0).all()
    drawn = []
    for index in (1, 2):
        ts.show(index)
        rgba = pixels(ts.change.url)
        assert rgba.shape[:2] == (64, 64) and (rgba[..., 3] == 255).any()
        assert (rgba[rgba[..., 3] == 255][:, :3] == CHANGE_RGB).all()
        assert f"change since {series.dates[index - 1]}" in ts.label.value
        drawn.append(ts.change.url)
    assert drawn[0] != drawn[1]
    ts.show(0)
    assert ts.change.url == _CLEAR and "change since" not in ts.label.value


def test_time_slider_refuses_what_it_cannot_show(series: SampleSeries) -> None:
    with pytest.raises(ParameterError, match=r"changes has 1 maps for 3 dates.*\(2\), or None"):
        TimeSlider(series, changes=series.changes[:1])
    one = [(series.dates[0], series.scenes[0])]
    with pytest.raises(ParameterError, match="two or more distinct dates"):
        TimeSlider(one)
    twice = [("2019-07-01", series.scenes[0]), ("2019-07-01", series.scenes[1])]
    with pytest.raises(ParameterError, match=r"two or more distinct dates; got \['2019-07-01'"):
        TimeSlider(twice)
    for unsupported in (list(series.scenes), str(series.folder), 3, xr.DataArray(np.zeros((2, 2)))):
        with pytest.raises(ParameterError, match="mapping of date to raster or a list of"):
            TimeSlider(unsupported)
    ts = TimeSlider(series, max_size=32)
    for index in (3, -1):
        with pytest.raises(ParameterError, match=r"date index .* is outside 0\.\.2"):
            ts.show(index)
    assert ts.index == 0


def test_each_date_lands_on_its_own_footprint(tmp_path: Path) -> None:
    """Dates of a place need not share a grid: the later one here covers its east half."""
    whole = write_utm(tmp_path / "2018.tif", noise((3, 100, 200)))
    east = write_utm(
        tmp_path / "2019.tif", noise((3, 100, 100), seed=1),
        origin=(MERIDIAN[0] + 100 * PIXEL, MERIDIAN[1]),
    )  # fmt: skip
    ts = TimeSlider({"2018": whole, "2019": east}, max_size=64)
    for index, path in enumerate((whole, east)):
        ts.show(index)
        (south, west), (north, east_) = ts.image.bounds
        xs, ys = transform("EPSG:4326", UTM, [west, east_], [south, north])
        assert [xs[0], ys[0], xs[1], ys[1]] == pytest.approx(source_bounds(path), abs=PIXEL)


# --- Panel ------------------------------------------------------------------------------


def test_panels_display_their_vbox(world: SampleWorld, series: SampleSeries) -> None:
    for panel in (
        SplitMap(world.before, world.after, max_size=32),
        TimeSlider(series, max_size=32),
    ):
        assert isinstance(panel.widget, widgets.VBox) and panel.map in panel.widget.children
        with mock.patch("IPython.display.display") as display:
            panel._ipython_display_()
        display.assert_called_once_with(panel.widget)
