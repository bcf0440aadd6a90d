"""Tests of reproject_to_tiles: a date in another CRS and resolution, cut into tiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from cdtools.errors import OutputExistsError, ParameterError, RasterError
from cdtools.io.pair import load_pair
from cdtools.io.raster import describe, write_geotiff
from cdtools.synthetic import SampleWorld, make_scene_pair, reproject_to_tiles
from tests.conftest import bright_centre

UTM = "EPSG:32614"
ORIGIN = (620000.0, 3350000.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SampleWorld:
    return make_scene_pair(tmp_path_factory.mktemp("world"), size=256, seed=3)


def square_scene(path: Path) -> Path:
    """A 0.5 m UTM scene, dark with a bright 20-pixel square centred on pixel (99.5, 119.5)."""
    data = np.full((3, 200, 240), 40, dtype=np.uint8)
    data[:, 90:110, 110:130] = 220
    return write_geotiff(path, data, transform=from_origin(*ORIGIN, 0.5, 0.5), crs=UTM)


def test_tiles_are_in_the_new_crs_and_resolution_with_nodata_outside(
    world: SampleWorld, tmp_path: Path
) -> None:
    paths = reproject_to_tiles(world.after, tmp_path, crs="EPSG:32613", resolution=0.6)
    assert [p.name for p in paths] == [f"after_r{r}_c{c}.tif" for r in (0, 1) for c in (0, 1)]
    infos = [describe(p) for p in paths]
    for info in infos:
        assert info.crs.to_epsg() == 32613 and info.res == pytest.approx((0.6, 0.6))
        assert info.count == 3 and info.dtype == "uint8"
    # The tiles abut: each starts where its left or upper neighbour ends.
    assert infos[1].bounds[0] == pytest.approx(infos[0].bounds[2])
    assert infos[2].bounds[3] == pytest.approx(infos[0].bounds[1])
    # Zone 13 is rotated against zone 14, so each tile has corners without data, masked.
    for path in paths:
        with rasterio.open(path) as src:
            invalid = src.dataset_mask() == 0
        assert 0.01 < invalid.mean() < 0.3
    assert not list(tmp_path.glob("*.part"))


def test_a_known_pixel_lands_on_the_same_map_coordinate(tmp_path: Path) -> None:
    source = square_scene(tmp_path / "scene.tif")
    # Three columns of 0.8 m pixels in Web Mercator: a tile border cuts through the square.
    paths = reproject_to_tiles(
        source, tmp_path / "tiles", crs="EPSG:3857", resolution=0.8, tiles=(2, 3)
    )
    assert all(describe(p).crs.to_epsg() == 3857 for p in paths)
    assert describe(paths[0]).res == pytest.approx((0.8, 0.8))
    pair = load_pair(source, tmp_path / "tiles", grid="before")
    assert pair.shape == (2, 3, 200, 240) and pair.rio.crs.to_epsg() == 32614
    values = pair.values
    (rb, cb), (ra, ca) = bright_centre(values[0, 0]), bright_centre(values[1, 0])
    assert (rb, cb) == (99.5, 119.5)
    assert abs(ra - rb) < 1.0 and abs(ca - cb) < 1.0


def test_mosaic_back_on_the_source_grid_has_no_seams(world: SampleWorld, tmp_path: Path) -> None:
    paths = reproject_to_tiles(world.after, tmp_path, crs="EPSG:32613", resolution=0.6)
    pair = load_pair(world.after, paths, grid="before")
    original, warped = pair.values
    missing = np.isnan(warped).any(axis=0)
    assert not missing[2:-2, 2:-2].any()  # no data is missing but at the scene's edges
    difference = np.abs(warped - original)[:, ~missing]
    assert difference.mean() < 6  # only resampling twice (0.5 m -> 0.6 m -> 0.5 m) blurs


def test_same_arguments_reuse_other_arguments_refuse_overwrite_replaces(
    world: SampleWorld, tmp_path: Path
) -> None:
    first = reproject_to_tiles(world.after, tmp_path, crs="EPSG:3857", resolution=1.0)
    stamps = [p.stat().st_mtime_ns for p in first]
    again = reproject_to_tiles(world.after, tmp_path, crs="EPSG:3857", resolution=1.0)
    assert again == first and [p.stat().st_mtime_ns for p in again] == stamps
    with pytest.raises(OutputExistsError, match="other arguments"):
        reproject_to_tiles(world.after, tmp_path, crs="EPSG:3857", resolution=2.0)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        reproject_to_tiles(world.before, tmp_path, crs="EPSG:3857", resolution=1.0)
    replaced = reproject_to_tiles(
        world.after, tmp_path, crs="EPSG:3857", resolution=1.0, tiles=(1, 3), overwrite=True
    )
    assert sorted(tmp_path.glob("*.tif")) == sorted(replaced) and len(replaced) == 3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"crs": "EPSG:999999", "resolution": 1.0}, "not a CRS"),
        ({"crs": "EPSG:3857", "resolution": 0}, "resolution"),
        ({"crs": "EPSG:3857", "resolution": float("nan")}, "resolution"),
        ({"crs": "EPSG:3857", "resolution": 1.0, "tiles": (0, 2)}, "tiles"),
        ({"crs": "EPSG:3857", "resolution": 1.0, "tiles": 4}, "tiles"),
        ({"crs": "EPSG:3857", "resolution": 1.0, "resampling": "fancy"}, "resampling"),
        ({"crs": "EPSG:3857", "resolution": 100.0, "tiles": (4, 4)}, "too small"),
    ],
)
def test_arguments_that_cannot_work_are_refused(
    world: SampleWorld, tmp_path: Path, arguments: dict, message: str
) -> None:
    with pytest.raises(ParameterError, match=message):
        reproject_to_tiles(world.after, tmp_path, **arguments)
    assert not list(tmp_path.iterdir())


def test_a_raster_without_crs_is_refused(tmp_path: Path) -> None:
    plain = write_geotiff(tmp_path / "plain.tif", np.zeros((3, 64, 64), dtype=np.uint8))
    with pytest.raises(RasterError, match="no CRS"):
        reproject_to_tiles(plain, tmp_path / "tiles", crs="EPSG:3857", resolution=1.0)
    with pytest.raises(RasterError, match="does not exist"):
        reproject_to_tiles(tmp_path / "nope.tif", tmp_path / "tiles", crs="EPSG:3857", resolution=1)
