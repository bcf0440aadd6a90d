from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from cdtools.cli import main, resolve_date
from cdtools.raster import write_geotiff
from cdtools.synthetic import SampleWorld, make_scene_pair, sample_detector
from tests.conftest import Pair

#: Scene inference options that keep the CLI tests quick: 4 chunks of 2 x 2 tiles each.
QUICK = ["--tile", "128", "--overlap", "32", "--chunk", "160", "--precision", "fp32"]


def test_export_train_predict_from_the_command_line(
    pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chips = tmp_path / "chips"
    args = [str(pair.before), str(pair.after), str(pair.polygons), str(chips)]
    assert main(["export", *args, "--tile-size", "64", "--stride", "64"]) == 0
    assert json.loads((chips / "export.json").read_text())["counts"]["chips"] == 5 * 4
    model = tmp_path / "model"
    assert (
        main(
            [
                "train",
                str(chips),
                "--pretrained",
                "false",
                "--epochs",
                "1",
                "--lr",
                "1e-3",
                "--chip-size",
                "64",
                "--batch-size",
                "4",
                "--out",
                str(model),
            ]
        )
        == 0
    )
    assert (model / "model.json").exists()
    out = tmp_path / "change.tif"
    assert (
        main(
            [
                "predict",
                str(pair.before),
                str(pair.after),
                "--model",
                str(model),
                "--out",
                str(out),
                "--mask",
                "--no-progress",
            ]
        )
        == 0
    )
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32614 and src.shape == (300, 200) and src.nodata == 255
        assert set(src.read(1).ravel().tolist()) <= {0, 1}  # no nodata in this pair


def test_user_errors_are_one_line_with_exit_status_2(
    pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(pair.before), str(pair.after), str(pair.polygons), str(tmp_path / "c")]
    assert main(["export", *args, "--stride", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cdtools: error: stride must be a positive") and "\n" not in err


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample detector as a model package, as a user would pass it to --model."""
    return sample_detector().save(tmp_path_factory.mktemp("cli") / "model")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SampleWorld:
    return make_scene_pair(tmp_path_factory.mktemp("cli") / "world", size=320, seed=21)


@pytest.fixture(scope="module")
def reference(
    model: Path, world: SampleWorld, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, np.ndarray]:
    """`cdtools predict before.tif after.tif` on dask's threaded scheduler, and its pixels."""
    out = tmp_path_factory.mktemp("cli") / "change.tif"
    args = [str(world.before), str(world.after), "--model", str(model), "--out", str(out)]
    assert main(["predict", *args, *QUICK, "--no-progress"]) == 0
    with rasterio.open(out) as src:
        return out, src.read(1)


def test_predict_files_writes_a_georeferenced_cog(
    reference: tuple[Path, np.ndarray], world: SampleWorld, model: Path
) -> None:
    out, change = reference
    with rasterio.open(out) as src, rasterio.open(world.before) as before:
        assert src.crs == before.crs and src.transform == before.transform
        assert src.shape == (320, 320) and src.dtypes == ("uint8",) and src.nodata == 255
        assert src.profile["tiled"] and "probability" in src.descriptions[0]
    assert change.max() < 255 and change.std() > 5  # every pixel valid, a map with structure
    truth = rasterio.open(world.change_mask).read(1) == 1
    found = change / 255 > json.loads((model / "model.json").read_text())["threshold"]
    assert 2 * (found & truth).sum() / (found.sum() + truth.sum()) > 0.4  # F1 of change


def test_predict_a_folder_of_tiles_and_a_pattern(
    reference: tuple[Path, np.ndarray], world: SampleWorld, model: Path, tmp_path: Path
) -> None:
    for name, path in (("before", world.before), ("after", world.after)):
        (tmp_path / name).mkdir()
        with rasterio.open(path) as src:
            for row in (0, 160):
                for col in (0, 160):
                    window = Window(col, row, 160, 160)
                    write_geotiff(
                        tmp_path / name / f"tile_{row}_{col}.tif", src.read(window=window),
                        transform=src.window_transform(window), crs=src.crs,
                    )  # fmt: skip
    out = tmp_path / "change.tif"
    after = str(tmp_path / "after" / "tile_*.tif")
    args = [str(tmp_path / "before"), after, "--model", str(model), "--out", str(out)]
    assert main(["predict", *args, *QUICK, "--no-progress"]) == 0
    with rasterio.open(out) as src, rasterio.open(reference[0]) as whole:
        assert src.crs == whole.crs and src.transform == whole.transform
        np.testing.assert_array_equal(src.read(1), reference[1])  # tiles = the whole scene


def test_predict_on_a_local_cluster_of_two_workers(
    reference: tuple[Path, np.ndarray], world: SampleWorld, model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mask.tif"
    args = [str(world.before), str(world.after), "--model", str(model), "--out", str(out)]
    assert main(["predict", *args, *QUICK, "--mask", "--workers", "2", "--no-progress"]) == 0
    threshold = json.loads((model / "model.json").read_text())["threshold"]
    with rasterio.open(out) as src:
        assert src.nodata == 255 and "mask" in src.descriptions[0]
        np.testing.assert_array_equal(src.read(1), reference[1] / 255 > threshold)


def test_a_pattern_that_matches_nothing_is_one_clear_line(
    model: Path, world: SampleWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pattern = str(tmp_path / "nowhere" / "*.tif")
    out = tmp_path / "change.tif"
    args = [pattern, str(world.after), "--model", str(model), "--out", str(out)]
    assert main(["predict", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cdtools: error: no file matches") and "\n" not in err
    assert pattern in err and not out.exists()


def test_an_existing_output_is_kept_without_overwrite(
    reference: tuple[Path, np.ndarray],
    world: SampleWorld,
    model: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = reference[0]
    before = out.read_bytes(), out.stat().st_mtime_ns
    args = [str(world.after), str(world.before), "--model", str(model), "--out", str(out)]
    assert main(["predict", *args, *QUICK]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"cdtools: error: {out} exists; pass --overwrite to replace it."
    assert (out.read_bytes(), out.stat().st_mtime_ns) == before


def test_resolve_date_takes_files_folders_lists_and_patterns(tmp_path: Path) -> None:
    for name in ("b.tif", "a.tif", "c.TIF"):
        (tmp_path / name).touch()
    assert resolve_date(str(tmp_path)) == tmp_path
    assert resolve_date(str(tmp_path / "b.tif")) == tmp_path / "b.tif"
    assert resolve_date(str(tmp_path / "*.tif")) == [tmp_path / "a.tif", tmp_path / "b.tif"]
    listed = resolve_date(f"{tmp_path / 'b.tif'}, {tmp_path / '*.T*'}")
    assert listed == [tmp_path / "b.tif", tmp_path / "c.TIF"]
