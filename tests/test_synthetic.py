"""Tests of the embedded synthetic sample world (cdtools.synthetic)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.features
from PIL import Image
from rasterio.transform import Affine

from cdtools.errors import OutputExistsError, ParameterError
from cdtools.io.raster import check_same_grid, describe
from cdtools.synthetic import (
    CHANGE_KINDS,
    EUROSAT_CLASSES,
    LANDCOVER_COLOURS,
    SampleWorld,
    make_landcover_patches,
    make_scene_pair,
)
from tests.conftest import read_bands

# Seed 3 at 512 px holds all six kinds of change (checked below, so a change of the
# generator that loses one shows up here).
SEED = 3
SIZE = 512
EXPECTED_CLASS = {
    "new_building": "Residential",
    "new_road": "Highway",
    "demolition": "HerbaceousVegetation",
    "forest_built": "Residential",
    "new_water": "SeaLake",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SampleWorld:
    return make_scene_pair(tmp_path_factory.mktemp("world"), size=SIZE, seed=SEED)


@pytest.fixture(scope="module")
def polygons(world: SampleWorld) -> gpd.GeoDataFrame:
    return gpd.read_file(world.change_polygons)


def test_files_exist_and_nothing_is_half_written(world: SampleWorld) -> None:
    for path in (
        world.before,
        world.after,
        world.change_polygons,
        world.change_mask,
        world.landcover_before,
        world.landcover_after,
    ):
        assert path.is_file() and path.parent == world.folder
    assert not list(world.folder.glob("*.part"))


def test_same_seed_gives_same_arrays_and_other_seed_differs(tmp_path: Path) -> None:
    first = make_scene_pair(tmp_path / "a", size=256, seed=7)
    second = make_scene_pair(tmp_path / "b", size=256, seed=7)
    other = make_scene_pair(tmp_path / "c", size=256, seed=8)
    for name in ("before", "after", "change_mask", "landcover_before", "landcover_after"):
        assert np.array_equal(
            read_bands(getattr(first, name)), read_bands(getattr(second, name))
        ), name
    assert not np.array_equal(read_bands(first.before), read_bands(other.before))
    assert not np.array_equal(
        read_bands(first.landcover_before), read_bands(other.landcover_before)
    )
    assert first.change_polygons.read_bytes() == second.change_polygons.read_bytes()


def test_blocks_leave_no_seams(
    world: SampleWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rendering in blocks of 192 (with partial blocks) matches one block but for noise."""
    monkeypatch.setattr("cdtools.synthetic.scene.BLOCK", 192)
    blocky = make_scene_pair(tmp_path, size=SIZE, seed=SEED)
    assert np.array_equal(read_bands(blocky.change_mask), read_bands(world.change_mask))
    difference = np.abs(read_bands(blocky.after).astype(float) - read_bands(world.after)).mean(
        axis=0
    )
    per_row, per_col = difference.mean(axis=1), difference.mean(axis=0)
    assert difference.mean() < 8  # grain and sensor noise are drawn per block
    for edge in (192, 384):
        assert per_row[edge - 2 : edge + 2].max() < 2 * np.median(per_row)
        assert per_col[edge - 2 : edge + 2].max() < 2 * np.median(per_col)


def test_grid_is_utm_14n_at_half_a_metre_and_shared(world: SampleWorld) -> None:
    expected = Affine(0.5, 0, 620000.0, 0, -0.5, 3350000.0)
    assert world.crs.to_epsg() == 32614
    assert world.transform == expected
    before, after = describe(world.before), describe(world.after)
    check_same_grid(before, after)
    for info in (before, after):
        assert info.crs.to_epsg() == 32614
        assert info.transform == expected
        assert (info.width, info.height, info.count, info.dtype) == (SIZE, SIZE, 3, "uint8")
    for path in (world.change_mask, world.landcover_before, world.landcover_after):
        info = describe(path)
        assert info.transform == expected and info.crs.to_epsg() == 32614
        assert (info.width, info.height, info.count, info.dtype) == (SIZE, SIZE, 1, "uint8")


def test_origin_is_a_keyword(tmp_path: Path) -> None:
    world = make_scene_pair(tmp_path, size=64, seed=0, origin=(600000.0, 3300000.0))
    assert describe(world.before).transform == Affine(0.5, 0, 600000.0, 0, -0.5, 3300000.0)


def test_mask_is_rasterised_from_the_polygons(world: SampleWorld, polygons) -> None:
    mask = read_bands(world.change_mask)[0]
    assert polygons.crs.to_epsg() == 32614
    burnt = rasterio.features.rasterize(
        [(g, 1) for g in polygons.geometry], out_shape=mask.shape, transform=world.transform
    )
    assert set(np.unique(mask)) == {0, 1}
    assert np.array_equal(burnt, mask)


def test_change_covers_a_few_percent(world: SampleWorld) -> None:
    assert 0.015 <= read_bands(world.change_mask).mean() <= 0.1


def test_polygons_have_all_kinds(polygons) -> None:
    assert set(polygons["kind"]) == set(CHANGE_KINDS)
    assert (polygons.geometry.area > 20).all()  # m²: at least a small house
    assert polygons.geometry.is_valid.all()


def test_landcover_codes_and_changes_reflected(world: SampleWorld, polygons) -> None:
    before, after = read_bands(world.landcover_before)[0], read_bands(world.landcover_after)[0]
    mask = read_bands(world.change_mask)[0].astype(bool)
    assert before.max() <= 9 and after.max() <= 9
    # Land cover changes only where change is labelled.
    assert not np.any((before != after) & ~mask)
    for kind, geometry in zip(polygons["kind"], polygons.geometry, strict=True):
        inside = rasterio.features.rasterize(
            [(geometry, 1)], out_shape=mask.shape, transform=world.transform
        ).astype(bool)
        now = np.bincount(after[inside], minlength=10).argmax()
        if kind == "forest_cleared":
            assert np.bincount(before[inside], minlength=10).argmax() == 1  # Forest
            assert EUROSAT_CLASSES[now] in ("HerbaceousVegetation", "AnnualCrop")
        else:
            assert EUROSAT_CLASSES[now] == EXPECTED_CLASS[kind], kind


def test_real_change_is_visible(world: SampleWorld) -> None:
    before = read_bands(world.before).astype(float)
    after = read_bands(world.after).astype(float)
    mask = read_bands(world.change_mask)[0].astype(bool)
    difference = np.abs(after - before).sum(axis=0)
    assert difference[mask].mean() > 1.5 * difference[~mask].mean()


def test_nir_adds_a_fourth_band(tmp_path: Path) -> None:
    world = make_scene_pair(tmp_path, size=128, seed=1, nir=True)
    for path in (world.before, world.after):
        with rasterio.open(path) as src:
            assert src.count == 4
            assert src.descriptions == ("red", "green", "blue", "nir")


@pytest.mark.parametrize("size", [0, -64, 100, 1000, 64.0, True, "512"])
def test_bad_size_raises_parameter_error(tmp_path: Path, size: object) -> None:
    with pytest.raises(ParameterError, match="multiple of 64"):
        make_scene_pair(tmp_path, size=size)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("options", [{"seed": -1}, {"origin": (1.0,)}])
def test_bad_options_raise_parameter_error(tmp_path: Path, options: dict) -> None:
    with pytest.raises(ParameterError):
        make_scene_pair(tmp_path, size=64, **options)


def test_existing_world_is_reused_refused_or_overwritten(tmp_path: Path) -> None:
    world = make_scene_pair(tmp_path, size=64, seed=0)
    written = world.before.stat().st_mtime_ns
    assert make_scene_pair(tmp_path, size=64, seed=0) == world
    assert world.before.stat().st_mtime_ns == written
    with pytest.raises(OutputExistsError, match=r"other arguments.*overwrite=True"):
        make_scene_pair(tmp_path, size=64, seed=1)
    make_scene_pair(tmp_path, size=64, seed=0, overwrite=True)
    assert world.before.stat().st_mtime_ns != written  # made again, same arguments or not
    make_scene_pair(tmp_path, size=64, seed=1, overwrite=True)
    assert json.loads((tmp_path / "sample_world.json").read_text())["seed"] == 1


def test_classes_and_colours() -> None:
    assert EUROSAT_CLASSES[0] == "AnnualCrop" and EUROSAT_CLASSES[9] == "SeaLake"
    assert len(EUROSAT_CLASSES) == len(LANDCOVER_COLOURS) == 10
    assert all(c.startswith("#") and len(c) == 7 for c in LANDCOVER_COLOURS)


def test_landcover_patches_layout_count_and_determinism(tmp_path: Path) -> None:
    folder = make_landcover_patches(tmp_path / "a", n_per_class=3, size=32, seed=0)
    assert folder == tmp_path / "a"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(EUROSAT_CLASSES)
    for name in EUROSAT_CLASSES:
        files = sorted(p.name for p in (folder / name).iterdir())
        assert files == [f"{name}_{i}.png" for i in (1, 2, 3)]
        image = np.asarray(Image.open(folder / name / files[0]))
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    again = make_landcover_patches(tmp_path / "b", n_per_class=3, size=32, seed=0)
    other = make_landcover_patches(tmp_path / "c", n_per_class=3, size=32, seed=1)
    same = folder / "Forest" / "Forest_1.png"
    assert same.read_bytes() == (again / "Forest" / "Forest_1.png").read_bytes()
    assert same.read_bytes() != (other / "Forest" / "Forest_1.png").read_bytes()


def test_landcover_patches_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ParameterError):
        make_landcover_patches(tmp_path, n_per_class=0)
    with pytest.raises(ParameterError):
        make_landcover_patches(tmp_path, size=8)
