"""Tests of time series: the synthetic one (make_time_series) and load_series."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.features
from rasterio.transform import from_origin

from cdtools.errors import GridError, OutputExistsError, ParameterError, RasterError
from cdtools.io.raster import write_geotiff
from cdtools.io.series import load_series
from cdtools.synthetic import SampleSeries, SampleWorld, make_scene_pair, make_time_series
from cdtools.synthetic.series import world_dates
from tests.conftest import read_bands

# 256 px, seed 2: both steps hold real change (two events each), enough to see it in pixels.
SIZE, SEED = 256, 2


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> SampleSeries:
    return make_time_series(tmp_path_factory.mktemp("series"), dates=3, size=SIZE, seed=SEED)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SampleWorld:
    return make_scene_pair(tmp_path_factory.mktemp("world"), size=SIZE, seed=SEED)


# --- make_time_series -------------------------------------------------------------------


def test_series_writes_one_image_per_date_and_a_mask_per_step(series: SampleSeries) -> None:
    assert series.dates == ("2018-07-01", "2019-07-01", "2020-07-01")
    assert [p.name for p in series.scenes] == [f"{d}.tif" for d in series.dates]
    assert [p.name for p in series.changes] == ["change_0.tif", "change_1.tif"]
    assert series.folder == series.scenes[0].parent
    names = {p.name for p in series.folder.iterdir()}
    assert names == {
        *(p.name for p in (*series.scenes, *series.changes)),
        "change_polygons.geojson",
        "time_series.json",
    }  # and no temporary file left behind
    for path in series.scenes:
        with rasterio.open(path) as src:
            assert (src.count, src.dtypes[0], src.width, src.height) == (3, "uint8", SIZE, SIZE)
            assert src.crs.to_epsg() == 32614 and src.transform == series.transform
    assert series.transform == from_origin(620000.0, 3350000.0, 0.5, 0.5)
    for path in series.changes:
        mask = read_bands(path)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}


def test_masks_are_the_polygons_of_their_step(series: SampleSeries) -> None:
    polygons = gpd.read_file(series.change_polygons)
    assert polygons.crs.to_epsg() == 32614
    assert sorted(polygons["step"].unique()) == [0, 1]
    assert list(polygons["change_id"]) == list(range(1, len(polygons) + 1))
    for step, path in enumerate(series.changes):
        rows = polygons[polygons["step"] == step]
        # (GeoJSON readers may parse the dates: compare their first ten characters)
        assert {str(d)[:10] for d in rows["from_date"]} == {series.dates[step]}
        assert {str(d)[:10] for d in rows["to_date"]} == {series.dates[step + 1]}
        burnt = rasterio.features.rasterize(
            [(g, 1) for g in rows.geometry], out_shape=(SIZE, SIZE), transform=series.transform
        )
        np.testing.assert_array_equal(read_bands(path)[0], burnt)


def test_masks_hold_exactly_what_changed_on_the_ground(series: SampleSeries) -> None:
    layouts, steps = world_dates(SIZE, 3, SEED)
    assert [len(s) for s in steps] == [2, 2]
    for step, path in enumerate(series.changes):
        old, new = layouts[step], layouts[step + 1]
        changed = (old.material != new.material) | (old.roof != new.roof)
        mask = read_bands(path)[0].astype(bool)
        assert not (changed & ~mask).any()  # nothing changes outside the mask
        assert changed[mask].mean() > 0.98  # and nearly all of it changes (a cleared wood
        # may stay herbaceous where it already was)


def test_changes_accumulate(series: SampleSeries) -> None:
    layouts, _ = world_dates(SIZE, 3, SEED)
    first, second = (read_bands(p)[0].astype(bool) for p in series.changes)
    # What changed in step 0 stays changed at the last date, unless step 1 changed it again.
    kept = first & ~second
    assert (layouts[2].material[kept] == layouts[1].material[kept]).all()
    assert (layouts[2].material[kept] != layouts[0].material[kept]).mean() > 0.98


def test_image_differences_concentrate_in_the_change_masks(series: SampleSeries) -> None:
    images = [read_bands(p).astype(np.float32) for p in series.scenes]
    for step, path in enumerate(series.changes):
        mask = read_bands(path)[0].astype(bool)
        difference = np.abs(images[step + 1] - images[step]).mean(axis=0)
        assert 0 < mask.mean() < 0.2
        assert difference[mask].mean() > 2 * difference[~mask].mean()
        assert difference[~mask].mean() > 1  # pseudo-change: the dates do not look alike


def test_dates_look_different(series: SampleSeries) -> None:
    means = [read_bands(p).reshape(3, -1).mean(axis=1) for p in series.scenes]
    assert min(np.abs(a - b).max() for a, b in itertools.pairwise(means)) > 1


def test_first_step_is_the_sample_world_of_the_same_seed(
    series: SampleSeries, world: SampleWorld
) -> None:
    # make_scene_pair and the series share the layout and first step: same truth.
    np.testing.assert_array_equal(read_bands(series.changes[0]), read_bands(world.change_mask))
    steps = gpd.read_file(series.change_polygons)
    pair = gpd.read_file(world.change_polygons)
    first = steps[steps["step"] == 0].reset_index(drop=True)
    assert list(first["kind"]) == list(pair["kind"])
    assert first.geometry.geom_equals(pair.geometry).all()
    assert list(pair.columns) == ["change_id", "kind", "area_m2", "geometry"]  # pair unchanged


def test_same_arguments_give_same_arrays(series: SampleSeries, tmp_path: Path) -> None:
    again = make_time_series(tmp_path / "again", dates=3, size=SIZE, seed=SEED)
    for a, b in zip(
        (*series.scenes, *series.changes), (*again.scenes, *again.changes), strict=True
    ):
        np.testing.assert_array_equal(read_bands(a), read_bands(b))
    other = make_time_series(tmp_path / "other", dates=3, size=SIZE, seed=SEED + 1)
    assert not np.array_equal(read_bands(series.scenes[2]), read_bands(other.scenes[2]))


def test_existing_series_is_reused_overwritten_or_refused(tmp_path: Path) -> None:
    first = make_time_series(tmp_path, dates=4, size=128, nir=True, start_year=2000)
    assert first.dates[-1] == "2003-07-01" and read_bands(first.scenes[0]).shape[0] == 4
    stamp = first.scenes[0].stat().st_mtime_ns
    again = make_time_series(tmp_path, dates=4, size=128, nir=True, start_year=2000)
    assert again == first and first.scenes[0].stat().st_mtime_ns == stamp  # reused
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        make_time_series(tmp_path, dates=3, size=128)
    shorter = make_time_series(tmp_path, dates=2, size=128, start_year=2000, overwrite=True)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [
        "2000-07-01.tif",
        "2001-07-01.tif",
        "change_0.tif",
        "change_polygons.geojson",
        "time_series.json",
    ]  # fmt: skip  (the longer series' later dates are gone)
    assert read_bands(shorter.scenes[0]).shape[0] == 3
    record = json.loads((tmp_path / "time_series.json").read_text())
    assert record["dates"] == 2 and len(record["changes"]) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dates": 1}, r"dates must be a whole number of 2 or more \(got 1\); try dates=4"),
        ({"dates": 2.5}, "dates must be a whole number"),
        ({"size": 100}, r"size must be a positive multiple of 64 pixels \(got 100\); try 512"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"start_year": 9999}, r"start_year must be a year from 1 to 9996 .* try start_year=2018"),
    ],
)
def test_bad_arguments_say_what_works(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        make_time_series(tmp_path, **{"dates": 4, **options})
    assert not any(tmp_path.iterdir())


# --- load_series ------------------------------------------------------------------------

UTM = "EPSG:32614"
X0, Y0 = 500000.0, 4000000.0


def ramp(height: int, width: int, transform, bands: int = 2) -> np.ndarray:
    """float32 values that are a linear function of map coordinates (bilinear keeps them)."""
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    x, y = transform * (cols, rows)
    plane = ((x - X0) * 0.3 + (Y0 - y) * 0.1).astype(np.float32)
    return np.stack([plane + 100 * band for band in range(bands)])


def constant(path: Path, value: float, *, shape=(40, 50), origin=(X0, Y0), bands=2) -> Path:
    data = np.full((bands, *shape), value, dtype=np.float32)
    return write_geotiff(path, data, transform=from_origin(*origin, 5.0, 5.0), crs=UTM)


def test_the_three_date_styles_are_parsed_and_sorted(tmp_path: Path) -> None:
    constant(tmp_path / "m_4709963_se_14_1_20100629.tif", 2)
    constant(tmp_path / "2012-07-31.tif", 3)
    constant(tmp_path / "1985.tif", 1)
    series = load_series(tmp_path)
    assert series.dims == ("time", "band", "y", "x") and series.shape == (3, 2, 40, 50)
    assert series.dtype == np.float32 and series.chunks is not None  # lazy
    days = series["time"].values.astype("datetime64[D]")
    expected = np.array(["1985-01-01", "2010-06-29", "2012-07-31"], dtype="datetime64[D]")
    np.testing.assert_array_equal(days, expected)
    assert list(series.isel(x=0, y=0, band=0).values) == [1, 2, 3]  # data follow their dates
    assert series.rio.crs.to_epsg() == 32614
    assert series.rio.transform() == from_origin(X0, Y0, 5.0, 5.0)
    # The same files as a glob pattern and as a list (in any order) give the same.
    assert load_series(str(tmp_path / "*.tif")).identical(series)
    listed = load_series(sorted(tmp_path.iterdir(), reverse=True))
    np.testing.assert_array_equal(listed["time"].values, series["time"].values)


def test_given_dates_replace_the_names(tmp_path: Path) -> None:
    files = [constant(tmp_path / f"scene_{k}.tif", k) for k in range(3)]
    series = load_series(files, dates=["2021-05-01", 2019, np.datetime64("2020-02-03")])
    assert [str(d)[:10] for d in series["time"].values] == [
        "2019-01-01", "2020-02-03", "2021-05-01",
    ]  # fmt: skip
    assert list(series.isel(x=0, y=0, band=0).values) == [1, 2, 0]


def test_one_row_shorter_and_shifted_date_is_aligned_on_the_first(tmp_path: Path) -> None:
    first_transform = from_origin(X0, Y0, 5.0, 5.0)
    # The later date is one row shorter and its origin is 2 m east and 1.5 m south.
    later_transform = from_origin(X0 + 2.0, Y0 - 1.5, 5.0, 5.0)
    write_geotiff(
        tmp_path / "a_20150901.tif", ramp(60, 70, first_transform),
        transform=first_transform, crs=UTM,
    )  # fmt: skip
    write_geotiff(
        tmp_path / "b_20160901.tif", ramp(59, 70, later_transform),
        transform=later_transform, crs=UTM,
    )  # fmt: skip
    series = load_series(tmp_path, chunks={"y": 32, "x": 32})
    assert series.shape == (2, 2, 60, 70)
    assert series.rio.transform() == first_transform
    first, later = series.values
    np.testing.assert_array_equal(first, ramp(60, 70, first_transform))
    # Nothing of the later date below its footprint (its last row ends 6.5 m higher) ...
    assert np.isnan(later[:, -1]).all()
    # ... and elsewhere its values land on the same map coordinates as the first date's.
    np.testing.assert_allclose(later[:, 1:-2, 1:-1], first[:, 1:-2, 1:-1], atol=1e-3)
    assert np.isfinite(later[:, :-1, :-1]).all()


def test_intersection_and_union_of_footprints(tmp_path: Path) -> None:
    constant(tmp_path / "2010.tif", 1, shape=(40, 50))
    # A later date 100 m east and 50 m south (whole pixels: read without resampling).
    constant(tmp_path / "2011.tif", 2, shape=(40, 50), origin=(X0 + 100, Y0 - 50))
    first = load_series(tmp_path)
    assert first.shape == (2, 2, 40, 50)
    assert np.isnan(first.values[1, 0, :10]).all() and np.isnan(first.values[1, 0, :, :20]).all()
    inner = load_series(tmp_path, grid="intersection")
    assert inner.shape == (2, 2, 30, 30)
    assert inner.rio.transform() == from_origin(X0 + 100, Y0 - 50, 5.0, 5.0)
    assert np.isfinite(inner.values).all()
    union = load_series(tmp_path, grid="union", bands=[1])
    assert union.shape == (2, 1, 50, 70)
    assert union.rio.transform() == from_origin(X0, Y0, 5.0, 5.0)
    values = union.values[:, 0]
    assert np.isnan(values[0, -1, -1]) and np.isnan(values[1, 0, 0])  # outside each footprint
    assert np.nanmax(values[0]) == 1 and np.isfinite(values[0]).sum() == 40 * 50
    coarse = load_series(tmp_path, grid="union", resolution=10.0)
    assert coarse.shape == (2, 2, 25, 35) and coarse.rio.resolution() == (10.0, -10.0)


def test_the_earliest_date_sets_the_grid(tmp_path: Path) -> None:
    constant(tmp_path / "2015.tif", 2, shape=(30, 30), origin=(X0 + 50, Y0))
    constant(tmp_path / "2010.tif", 1, shape=(40, 50))
    series = load_series(tmp_path)
    assert series.shape == (2, 2, 40, 50) and series.rio.transform() == from_origin(X0, Y0, 5, 5)


def test_tiles_of_one_date_are_mosaicked(tmp_path: Path) -> None:
    constant(tmp_path / "west_2019-06-01.tif", 1, shape=(40, 25))
    constant(tmp_path / "east_2019-06-01.tif", 2, shape=(40, 25), origin=(X0 + 125, Y0))
    constant(tmp_path / "whole_2020-06-01.tif", 3, shape=(40, 50))
    series = load_series(tmp_path, grid="union")
    assert series.shape == (2, 2, 40, 50)
    mosaic = series.values[0, 0]
    assert (mosaic[:, :25] == 1).all() and (mosaic[:, 25:] == 2).all()


def test_a_sample_series_loads_directly(series: SampleSeries) -> None:
    loaded = load_series(series)
    assert loaded.shape == (3, 3, SIZE, SIZE)
    expected = np.array(series.dates, dtype="datetime64[D]")
    np.testing.assert_array_equal(loaded["time"].values.astype("datetime64[D]"), expected)
    assert loaded.rio.crs.to_epsg() == 32614 and loaded.rio.transform() == series.transform
    np.testing.assert_array_equal(loaded.isel(time=2).values, read_bands(series.scenes[2]))


def test_no_files_say_so(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RasterError, match="holds no raster tiles"):
        load_series(tmp_path / "empty")
    with pytest.raises(RasterError, match=r"no files match .*\*\.tif.*check the pattern"):
        load_series(str(tmp_path / "empty" / "*.tif"))
    with pytest.raises(RasterError, match="no files given; pass a folder"):
        load_series([])
    with pytest.raises(RasterError, match=r"nope\.tif does not exist"):
        load_series([tmp_path / "nope.tif"])


def test_an_undated_file_is_named(tmp_path: Path) -> None:
    constant(tmp_path / "2019.tif", 1)
    constant(tmp_path / "scene_final.tif", 2)
    with pytest.raises(
        ParameterError,
        match=r"cannot find a date in the file name 'scene_final\.tif'.*pass dates=\[\.\.\.\] "
        r"with one date per file in this order: 2019\.tif, scene_final\.tif",
    ):
        load_series(tmp_path)
    series = load_series(tmp_path, dates=["2019", "2020-03-01"])
    assert series.sizes["time"] == 2
    with pytest.raises(ParameterError, match="dates has 1 entries for 2 files"):
        load_series(tmp_path, dates=["2019"])
    with pytest.raises(ParameterError, match=r"the date 'last year' given for scene_final\.tif"):
        load_series(tmp_path, dates=["2019", "last year"])


def test_band_counts_must_agree(tmp_path: Path) -> None:
    constant(tmp_path / "2018.tif", 1, bands=4)
    constant(tmp_path / "2019.tif", 1, bands=3)
    constant(tmp_path / "2020.tif", 1, bands=4)
    with pytest.raises(
        GridError,
        match=r"different numbers of bands \(3 in 2019\.tif; 4 in 2018\.tif, 2020\.tif\)",
    ):
        load_series(tmp_path)


def test_bad_options_and_far_apart_dates(tmp_path: Path) -> None:
    constant(tmp_path / "2018.tif", 1)
    constant(tmp_path / "2019.tif", 2, origin=(X0 + 10000, Y0))
    with pytest.raises(ParameterError, match="grid must be first, intersection or union"):
        load_series(tmp_path, grid="before")
    with pytest.raises(ParameterError, match="unknown resampling 'fast'"):
        load_series(tmp_path, resampling="fast")
    with pytest.raises(
        GridError, match=r"2018\.tif and 2019\.tif do not overlap: in EPSG:32614 the 2018\.tif"
    ):
        load_series(tmp_path)
    (tmp_path / "2019.tif").unlink()
    with pytest.raises(ParameterError, match=r"bands \[2\] do not exist"):
        load_series(tmp_path, bands=[2])
